package main

// `berth inspect ns|caps|cgroup|isolation`: the talk's instruments.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/template"

	"github.com/berth-dev/berth/inspect"
	"github.com/berth-dev/berth/proc"
)

// inspectObjects, when set by the engine's CLI, handles `berth inspect
// CONTAINER|IMAGE…` (Docker's low-level inspect); the instruments below
// take the sub-verbs ns, caps, cgroup and isolation.
var inspectObjects func(args []string) int

func init() {
	register(&command{name: "inspect", summary: "Show what isolates a process: ns, caps, cgroup, isolation", run: runInspect})
}

const inspectUsage = `Usage:  berth inspect INSTRUMENT [OPTIONS] PID|CONTAINER...

Show what the kernel says isolates a process (a PID, or a container's
name or ID prefix, resolved to its init process).

Instruments:
  ns         the namespace tree: user namespaces and the namespaces they own
             (--pidns: the PID-namespace hierarchy; --all: every process)
  caps       the five capability sets, decoded like getpcaps, vs Docker's default
  cgroup     the process's cgroup in each hierarchy, its limits and usage
  isolation  everything above plus user mapping, no_new_privs, seccomp,
             masked/read-only paths and mounts, each vs Docker's default

Options (every instrument):
  --format string         text (default), json, or a Go template
  -H, --host string       daemon socket (default $DOCKER_HOST or ` + defaultHost + `)
      --runtime-root DIR  runtime state directory (default ` + defaultRuntimeRoot + `)
`

// instrumentFlags are the options every instrument takes.
type instrumentFlags struct {
	format      string
	host        string
	runtimeRoot string
	pidns, all  bool
}

func newInstrumentFlags(name string, f *instrumentFlags, ns bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.format, "format", "", "")
	fs.StringVar(&f.host, "H", "", "")
	fs.StringVar(&f.host, "host", "", "")
	fs.StringVar(&f.runtimeRoot, "runtime-root", "", "")
	if ns {
		fs.BoolVar(&f.pidns, "pidns", false, "")
		fs.BoolVar(&f.all, "all", false, "")
	}
	return fs
}

// parseInterleaved parses flags that may come before or after the
// positional arguments, as Docker's CLI allows.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func runInspect(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			fmt.Fprint(os.Stderr, inspectUsage)
			return 125
		}
		fmt.Print(inspectUsage)
		return 0
	}
	var f instrumentFlags
	instr := args[0]
	switch instr {
	case "ns", "caps", "cgroup", "isolation":
	default:
		if inspectObjects != nil {
			return inspectObjects(args)
		}
		fmt.Fprintf(os.Stderr, "berth inspect: unknown instrument %q (want ns, caps, cgroup or isolation)\nSee 'berth inspect --help'.\n", instr)
		return 125
	}
	fs := newInstrumentFlags("inspect "+instr, &f, instr == "ns")
	pos, err := parseInterleaved(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Print(inspectUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth inspect %s: %v\nSee 'berth inspect --help'.\n", instr, err)
		return 125
	}
	switch {
	case instr == "ns" && f.all && len(pos) > 0:
		return usageErr(instr, "--all takes no PID or CONTAINER arguments")
	case instr == "ns" && !f.all && len(pos) == 0:
		return usageErr(instr, "requires at least 1 PID or CONTAINER (or --all)")
	case instr != "ns" && len(pos) != 1:
		return usageErr(instr, "requires exactly 1 PID or CONTAINER")
	}
	if f.format != "" && f.format != "text" && f.format != "json" && !strings.Contains(f.format, "{{") {
		return usageErr(instr, fmt.Sprintf("--format %q: want text, json or a Go template", f.format))
	}
	r := newResolver(f.host, f.runtimeRoot)
	var targets []target
	for _, a := range pos {
		t, err := r.resolve(a)
		if err != nil {
			fmt.Fprintf(os.Stderr, "Error: %v\n", err)
			return 1
		}
		targets = append(targets, t)
	}
	var report any
	var text func(io.Writer) error
	switch instr {
	case "ns":
		var pids []int
		if f.all {
			if pids, err = proc.PIDs(); err != nil {
				break
			}
		}
		for _, t := range targets {
			pids = append(pids, t.PID)
		}
		var tree *inspect.Tree
		if f.pidns {
			tree, err = inspect.PIDNSTree(pids, f.all)
			text = func(w io.Writer) error { return inspect.WritePIDNSTree(w, tree) }
		} else {
			tree, err = inspect.NSTree(pids, f.all)
			text = func(w io.Writer) error { return inspect.WriteNSTree(w, tree) }
		}
		if err == nil && len(tree.Skipped) > 0 && f.format != "json" {
			text = skippedNote(text, tree.Skipped)
		}
		report = tree
	case "caps":
		var c *inspect.CapsReport
		c, err = inspect.Caps(targets[0].PID)
		report, text = c, func(w io.Writer) error { return inspect.WriteCaps(w, c) }
	case "cgroup":
		var c *inspect.CgroupReport
		c, err = inspect.Cgroups(targets[0].PID)
		report, text = c, func(w io.Writer) error { return inspect.WriteCgroups(w, c) }
	case "isolation":
		var c *inspect.IsolationReport
		c, err = inspect.Isolation(targets[0].PID)
		if c != nil {
			c.Container = targets[0].Container
		}
		report, text = c, func(w io.Writer) error { return inspect.WriteIsolation(w, c) }
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %s\n", explain(err))
		return 1
	}
	if err := output(os.Stdout, f.format, report, text); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return 1
	}
	return 0
}

func usageErr(instr, msg string) int {
	fmt.Fprintf(os.Stderr, "\"berth inspect %s\" %s.\nSee 'berth inspect --help'.\n", instr, msg)
	return 125
}

// explain adds what to do to the errors a user can act on.
func explain(err error) string {
	switch {
	case errors.Is(err, proc.ErrNoProcess):
		return err.Error() + " (the process has exited)"
	case errors.Is(err, fs.ErrPermission):
		return err.Error() + " (looking into another process needs ptrace read access to it: run berth as root or as the process's owner)"
	}
	return err.Error()
}

func skippedNote(text func(io.Writer) error, skipped []inspect.Skipped) func(io.Writer) error {
	return func(w io.Writer) error {
		if err := text(w); err != nil {
			return err
		}
		var denied []string
		for _, s := range skipped {
			if s.Reason != "exited" {
				denied = append(denied, fmt.Sprint(s.PID))
			}
		}
		if len(denied) > 0 {
			fmt.Fprintf(os.Stderr, "berth: left out %d processes that may not be inspected: %s\n", len(denied), strings.Join(denied, " "))
		}
		return nil
	}
}

// output writes a report as text, JSON or through a Go template.
func output(w io.Writer, format string, report any, text func(io.Writer) error) error {
	switch {
	case format == "" || format == "text":
		return text(w)
	case format == "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	tmpl, err := template.New("format").Funcs(template.FuncMap{
		"json": func(v any) (string, error) { b, err := json.Marshal(v); return string(b), err },
		"join": strings.Join,
	}).Parse(format)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	if err := tmpl.Execute(w, report); err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	_, err = io.WriteString(w, "\n")
	return err
}
