// Package cgfs reads and writes cgroup filesystem files with errors that
// name the file and the value, and parses the small formats those files
// use (flat keyed, nested keyed, single values). It owns no policy: which
// file to write and when is decided by the v1 and v2 packages. It never
// touches anything outside the directory it is given.
package cgfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Write writes value to dir/file. cgroup files take one value per write(2),
// so the value is written in a single call; the file must already exist
// (cgroupfs files cannot be created).
func Write(dir, file, value string) error {
	p := filepath.Join(dir, file)
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, []byte(value))
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	return nil
}

// Read returns the content of dir/file.
func Read(dir, file string) (string, error) {
	p := filepath.Join(dir, file)
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return string(b), nil
}

// Exists reports whether dir/file exists.
func Exists(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

// ReadUint reads a single unsigned value; "max" reads as math.MaxUint64.
func ReadUint(dir, file string) (uint64, error) {
	s, err := Read(dir, file)
	if err != nil {
		return 0, err
	}
	v, err := ParseUint(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", filepath.Join(dir, file), err)
	}
	return v, nil
}

// ParseUint parses a cgroup number: "max" is math.MaxUint64, negative
// values (v1 writes -1 as unlimited in some files) read as 0.
func ParseUint(s string) (uint64, error) {
	if s == "max" {
		return math.MaxUint64, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if iv, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && iv < 0 {
			return 0, nil
		}
		return 0, err
	}
	return v, nil
}

// ReadKeyed parses a flat keyed file ("key value" per line) such as
// memory.stat, cpu.stat or memory.events.
func ReadKeyed(dir, file string) (map[string]uint64, error) {
	s, err := Read(dir, file)
	if err != nil {
		return nil, err
	}
	return ParseKeyed(s), nil
}

// ParseKeyed parses "key value" lines; lines that do not parse are skipped.
func ParseKeyed(s string) map[string]uint64 {
	m := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		if v, err := ParseUint(f[1]); err == nil {
			m[f[0]] = v
		}
	}
	return m
}

// ReadPids reads cgroup.procs of dir.
func ReadPids(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range bytes.Fields(b) {
		if pid, err := strconv.Atoi(string(f)); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// ReadPidsRecursive reads cgroup.procs of dir and of every cgroup below it.
// Cgroups that vanish while walking are skipped.
func ReadPidsRecursive(dir string) ([]int, error) {
	var all []int
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && p != dir {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		pids, err := ReadPids(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && p != dir {
				return nil
			}
			return err
		}
		all = append(all, pids...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list processes of cgroup %s: %w", dir, err)
	}
	return all, nil
}

// FmtInt formats v for a cgroup file, with -1 as "max" when max is set.
func FmtInt(v int64, max bool) string {
	if v == -1 && max {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}
