// Package proc owns parsing what the kernel says about a process under
// /proc/PID: status (credentials, NStgid/NSpid, capability sets, seccomp,
// no_new_privs), cgroup membership, mountinfo, and uid_map/gid_map.
//
// Every parser takes bytes and returns data or an error, never panics, and
// has a fuzz target: a process inside a container controls its own name and
// mount points, so these files are untrusted input. The Read* helpers add
// the path and PID to errors and keep fs.ErrNotExist (a process that has
// gone) and fs.ErrPermission visible to errors.Is.
//
// proc reads; it never writes to /proc, joins namespaces or signals
// processes. Interpreting the data (trees, reports) belongs to package
// inspect.
package proc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
)

// Root is where procfs is mounted; tests never change it, but keeping it in
// one place makes every path in an error message obvious.
const Root = "/proc"

// Path is /proc/PID/name.
func Path(pid int, name string) string {
	return filepath.Join(Root, strconv.Itoa(pid), name)
}

// ErrNoProcess is returned (wrapped) when the process does not exist or
// has exited.
var ErrNoProcess = errors.New("no such process")

// readFile reads /proc/PID/name, turning "not found" and ESRCH (a process
// that exits while its file is read) into ErrNoProcess.
func readFile(pid int, name string) ([]byte, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("invalid PID %d", pid)
	}
	p := Path(pid, name)
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return nil, fmt.Errorf("read %s: process %d: %w", p, pid, ErrNoProcess)
		}
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return b, nil
}

// Exists reports whether process pid exists (its /proc directory is there).
func Exists(pid int) bool {
	if pid <= 0 {
		return false
	}
	_, err := os.Stat(filepath.Join(Root, strconv.Itoa(pid)))
	return err == nil
}

// PIDs lists the processes (thread-group leaders) visible in /proc, sorted.
func PIDs() ([]int, error) {
	ents, err := os.ReadDir(Root)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []int
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(e.Name())
		if err != nil || n <= 0 {
			continue
		}
		out = append(out, n)
	}
	sort.Ints(out)
	return out, nil
}
