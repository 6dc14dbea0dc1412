// Command oci runs the OCI runtime validation suite (runtime-tools'
// validation/*/*.t programs) against one or more runtimes and prints a
// table of results per test file, side by side.
//
// The suite is fetched and built at run time from the Go module (never
// committed here), cached in -suite. Each test file runs with a timeout,
// in a private mount namespace of its own (`unshare -m --propagation
// private`: linux_ns_itype starts a container that shares it), with the
// runtime behind a small wrapper that gives it a private state root, so
// whatever a failed test leaves behind can be found and deleted. crun
// refuses hybrid cgroup hosts; with ",hide-cgroup2" the cgroup2 mount at
// /sys/fs/cgroup/unified is unmounted inside that namespace.
//
// With -require NAME, the command fails when NAME fails a file that
// another runtime passed in the same run: berth's CI target.
//
// It owns nothing but its build directory and the temporary directories
// it makes; containers left behind are deleted through the runtime that
// made them, from its private root, and the parent cgroups the suite's
// containers leave are removed unless they were there before.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/cgroups"
)

type runtimeSpec struct {
	name, path  string
	hideCgroup2 bool
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, " ") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	os.Exit(run())
}

func run() int {
	suite := flag.String("suite", "build/oci-runtime-tools", "directory to build the suite in (reused when built)")
	version := flag.String("version", "debian", "suite version: debian, newest, or a module version")
	timeout := flag.Duration("timeout", 120*time.Second, "time limit for one test file")
	filter := flag.String("run", "", "only test files whose name matches this regexp")
	require := flag.String("require", "", "fail unless this runtime passes every file another runtime passes")
	markdown := flag.Bool("markdown", false, "print the table as Markdown")
	verbose := flag.Bool("v", false, "print the TAP output of files that do not pass")
	var rts multi
	flag.Var(&rts, "runtime", "NAME=PATH[,hide-cgroup2] (repeatable)")
	flag.Parse()
	if len(rts) == 0 {
		fmt.Fprintln(os.Stderr, "oci: give at least one -runtime NAME=PATH")
		return 2
	}
	var runtimes []runtimeSpec
	for _, r := range rts {
		name, rest, ok := strings.Cut(r, "=")
		if !ok || name == "" || rest == "" {
			fmt.Fprintf(os.Stderr, "oci: -runtime %q: want NAME=PATH[,hide-cgroup2]\n", r)
			return 2
		}
		path, opt, _ := strings.Cut(rest, ",")
		if opt != "" && opt != "hide-cgroup2" {
			fmt.Fprintf(os.Stderr, "oci: -runtime %q: unknown option %q\n", r, opt)
			return 2
		}
		abs, err := exec.LookPath(path)
		if err == nil {
			abs, err = filepath.Abs(abs)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "oci: runtime %s: %v\n", name, err)
			return 2
		}
		runtimes = append(runtimes, runtimeSpec{name: name, path: abs, hideCgroup2: opt != ""})
	}
	if v, ok := versions[*version]; ok {
		*version = v
	}
	dir, err := filepath.Abs(*suite)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oci:", err)
		return 2
	}
	t0 := time.Now()
	if err := ensureSuite(dir, *version); err != nil {
		fmt.Fprintln(os.Stderr, "oci:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "oci: suite %s@%s ready in %s (%s)\n", module, *version, dir, time.Since(t0).Round(time.Second))
	files, err := filepath.Glob(filepath.Join(dir, "validation", "*", "*.t"))
	if err != nil || len(files) == 0 {
		fmt.Fprintf(os.Stderr, "oci: no validation/*/*.t in %s\n", dir)
		return 1
	}
	sort.Strings(files)
	if *filter != "" {
		re, err := regexp.Compile(*filter)
		if err != nil {
			fmt.Fprintln(os.Stderr, "oci: -run:", err)
			return 2
		}
		kept := files[:0]
		for _, f := range files {
			if re.MatchString(testName(f)) {
				kept = append(kept, f)
			}
		}
		files = kept
	}
	defer removeSuiteCgroups()()
	results := map[string]map[string]outcome{}
	for _, f := range files {
		name := testName(f)
		results[name] = map[string]outcome{}
		// Runtimes take turns file by file, so a slow period of this
		// shared machine hurts them alike.
		for _, rt := range runtimes {
			o := runFile(dir, f, rt, *timeout)
			results[name][rt.name] = o
			fmt.Fprintf(os.Stderr, "oci: %-36s %-6s %-14s %5.1fs\n", name, rt.name, o.cell(), o.elapsed.Seconds())
			if *verbose && o.status != statusPass && o.status != statusSkip {
				fmt.Fprintf(os.Stderr, "----- %s with %s -----\n%s\n", name, rt.name, o.output)
			}
		}
	}
	printTable(os.Stdout, files, runtimes, results, *markdown)
	if *require == "" {
		return 0
	}
	var missed []string
	for _, f := range files {
		name := testName(f)
		mine, ok := results[name][*require]
		if !ok {
			fmt.Fprintf(os.Stderr, "oci: -require %s: no such runtime\n", *require)
			return 2
		}
		if mine.status == statusPass {
			continue
		}
		for _, rt := range runtimes {
			if rt.name != *require && results[name][rt.name].status == statusPass {
				missed = append(missed, fmt.Sprintf("%s (passes with %s)", name, rt.name))
				break
			}
		}
	}
	if len(missed) > 0 {
		fmt.Fprintf(os.Stderr, "oci: %s fails %d file(s) another runtime passes: %s\n", *require, len(missed), strings.Join(missed, ", "))
		return 1
	}
	fmt.Fprintf(os.Stderr, "oci: %s passes every file another runtime passes\n", *require)
	return 0
}

// The suite's containers use the cgroups /cgrouptest/... and (relative to
// the runtime's own) testdir/cgrouptest/...; deleting a container removes
// its leaf, not the parents, and runtimes differ on what "relative" means
// on v1 (crun takes the root of every hierarchy). removeSuiteCgroups notes
// which of those directories exist already and returns a function that
// removes the others, deepest first.
func removeSuiteCgroups() func() {
	var made []string
	seen := map[string]bool{}
	for _, p := range []string{"/cgrouptest", "/testdir", "testdir"} {
		m, err := cgroups.New(cgroups.Config{Path: p})
		if err != nil {
			continue
		}
		for _, dir := range m.Paths() {
			if seen[dir] {
				continue
			}
			seen[dir] = true
			if _, err := os.Stat(dir); os.IsNotExist(err) {
				made = append(made, dir)
			}
		}
	}
	return func() {
		for _, top := range made {
			var dirs []string
			filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- {
				if err := os.Remove(dirs[i]); err != nil {
					fmt.Fprintf(os.Stderr, "oci: remove the suite's cgroup: %v\n", err)
				}
			}
		}
	}
}

func testName(path string) string { return strings.TrimSuffix(filepath.Base(path), ".t") }

type status string

const (
	statusPass    status = "pass"
	statusFail    status = "FAIL"
	statusSkip    status = "skip"
	statusTimeout status = "TIMEOUT"
	statusError   status = "ERROR"
)

type outcome struct {
	status  status
	res     Result
	exit    int
	elapsed time.Duration
	output  string
}

func (o outcome) cell() string {
	switch o.status {
	case statusTimeout:
		return "TIMEOUT"
	case statusError:
		return fmt.Sprintf("ERROR (exit %d)", o.exit)
	}
	total := o.res.Plan
	if total < 0 {
		total = o.res.Count()
	}
	return fmt.Sprintf("%s %d/%d", o.status, o.res.Ok+o.res.Skipped+o.res.Todo, total)
}

// classify decides a file's status from its TAP and exit status.
func classify(res Result, exit int, timedOut bool) status {
	switch {
	case timedOut:
		return statusTimeout
	case res.Count() == 0 && res.Plan < 0:
		return statusError
	case res.NotOk > 0, res.Errors > 0:
		return statusFail
	case exit != 0, res.Plan >= 0 && res.Plan != res.Count():
		return statusFail
	case res.Ok == 0 && res.Skipped > 0:
		return statusSkip
	}
	return statusPass
}

// wrapper writes a script that runs the runtime with a private state root.
func wrapper(dir string, rt runtimeSpec) (string, error) {
	root := filepath.Join(dir, "state")
	if err := os.Mkdir(root, 0o700); err != nil {
		return "", err
	}
	p := filepath.Join(dir, rt.name)
	script := fmt.Sprintf("#!/bin/sh\nexec %q --root %q \"$@\"\n", rt.path, root)
	return p, os.WriteFile(p, []byte(script), 0o755)
}

// inPrivateNS wraps argv to run in a private mount namespace, with the
// cgroup2 mount hidden when asked.
func inPrivateNS(rt runtimeSpec, argv ...string) []string {
	cmd := []string{"unshare", "-m", "--propagation", "private"}
	if rt.hideCgroup2 {
		return append(append(cmd, "sh", "-c",
			`if mountpoint -q /sys/fs/cgroup/unified; then umount -l /sys/fs/cgroup/unified || exit 125; fi; exec "$@"`, "sh"), argv...)
	}
	return append(cmd, argv...)
}

func runFile(suite, file string, rt runtimeSpec, timeout time.Duration) outcome {
	start := time.Now()
	tmp, err := os.MkdirTemp("", "berth-oci-")
	if err != nil {
		return outcome{status: statusError, exit: -1, output: err.Error()}
	}
	defer os.RemoveAll(tmp)
	os.Chmod(tmp, 0o755)
	wrap, err := wrapper(tmp, rt)
	if err != nil {
		return outcome{status: statusError, exit: -1, output: err.Error()}
	}
	work := filepath.Join(tmp, "tmp")
	os.Mkdir(work, 0o755)
	argv := inPrivateNS(rt, file)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = suite
	cmd.Env = append(os.Environ(), "RUNTIME="+wrap, "TMPDIR="+work)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	timedOut := false
	exit := 0
	if err := cmd.Start(); err != nil {
		return outcome{status: statusError, exit: -1, output: err.Error()}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(timeout):
		timedOut = true
		// The process group this command started, and nothing else.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = <-done
	}
	if err != nil {
		exit = -1
		if ee, ok := err.(*exec.ExitError); ok {
			exit = ee.ExitCode()
		}
	}
	cleanup(rt, wrap)
	res := ParseTAP(bytes.NewReader(out.Bytes()))
	return outcome{
		status: classify(res, exit, timedOut), res: res, exit: exit,
		elapsed: time.Since(start), output: out.String(),
	}
}

// cleanup force-deletes every container left in the runtime's private
// state root.
func cleanup(rt runtimeSpec, wrap string) {
	list := exec.Command(wrap, "list", "-q")
	b, err := list.Output()
	if err != nil {
		return
	}
	for _, id := range strings.Fields(string(b)) {
		argv := inPrivateNS(rt, wrap, "delete", "--force", id)
		c := exec.Command(argv[0], argv[1:]...)
		c.Stdout, c.Stderr = io.Discard, io.Discard
		c.Run()
	}
}

func printTable(w io.Writer, files []string, runtimes []runtimeSpec, results map[string]map[string]outcome, md bool) {
	passed := map[string]int{}
	for _, f := range files {
		for _, rt := range runtimes {
			if results[testName(f)][rt.name].status == statusPass {
				passed[rt.name]++
			}
		}
	}
	if md {
		fmt.Fprint(w, "| test file |")
		for _, rt := range runtimes {
			fmt.Fprintf(w, " %s |", rt.name)
		}
		fmt.Fprint(w, "\n|---|")
		for range runtimes {
			fmt.Fprint(w, "---|")
		}
		fmt.Fprintln(w)
		for _, f := range files {
			fmt.Fprintf(w, "| %s |", testName(f))
			for _, rt := range runtimes {
				fmt.Fprintf(w, " %s |", results[testName(f)][rt.name].cell())
			}
			fmt.Fprintln(w)
		}
		fmt.Fprint(w, "| **files passed** |")
		for _, rt := range runtimes {
			fmt.Fprintf(w, " **%d of %d** |", passed[rt.name], len(files))
		}
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, "%-36s", "TEST FILE")
	for _, rt := range runtimes {
		fmt.Fprintf(w, " %-16s", strings.ToUpper(rt.name))
	}
	fmt.Fprintln(w)
	for _, f := range files {
		fmt.Fprintf(w, "%-36s", testName(f))
		for _, rt := range runtimes {
			fmt.Fprintf(w, " %-16s", results[testName(f)][rt.name].cell())
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%-36s", "files passed")
	for _, rt := range runtimes {
		fmt.Fprintf(w, " %-16s", fmt.Sprintf("%d of %d", passed[rt.name], len(files)))
	}
	fmt.Fprintln(w)
}
