// Package runtimecli is the runc-compatible command line of berth's OCI
// runtime (`berth-runtime …` / `berth runtime …`). Flags, output formats and
// exit codes follow runc's, because containerd's shim and dockerd parse
// them. One verb per file; the work is done by package runtime.
package runtimecli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/runtime"
)

// Version is set by the berth binary.
var Version = "dev"

type globals struct {
	root          string
	log           string
	logFormat     string
	debug         bool
	systemdCgroup bool
	rootless      string
}

type verb struct {
	name    string
	summary string
	run     func(g *globals, args []string) error
}

var verbs = map[string]*verb{}

func register(v *verb) { verbs[v.name] = v }

// Main runs the runtime CLI with args (without the program name) and
// returns the process exit status.
func Main(args []string) int {
	g := &globals{}
	fs := flag.NewFlagSet("berth-runtime", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.root, "root", runtime.DefaultRoot, "root directory for container state")
	fs.StringVar(&g.log, "log", "", "log file (default: stderr only)")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&g.debug, "debug", false, "log each command and how it ended, at level debug")
	fs.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "use systemd to manage cgroups")
	fs.StringVar(&g.rootless, "rootless", "auto", "ignore cgroup permission errors (true, false, auto)")
	var criu string
	fs.StringVar(&criu, "criu", "", "ignored: checkpoint/restore is not supported")
	showVersion := fs.Bool("version", false, "print the version")
	fs.BoolVar(showVersion, "v", false, "print the version")
	help := fs.Bool("help", false, "show help")
	fs.BoolVar(help, "h", false, "show help")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "berth-runtime: %v\n", err)
		return 1
	}
	if *showVersion {
		fmt.Printf("berth-runtime version %s\nspec: %s\n", Version, specVersion)
		return 0
	}
	rest := fs.Args()
	if *help || len(rest) == 0 || rest[0] == "help" {
		usage(os.Stdout)
		return 0
	}
	v, ok := verbs[rest[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "berth-runtime: no such command %q\n", rest[0])
		return 1
	}
	g.logDebug(fmt.Sprintf("%s %s", rest[0], strings.Join(rest[1:], " ")))
	start := time.Now()
	err := v.run(g, rest[1:])
	g.logDebug(fmt.Sprintf("%s done in %v (error: %v)", rest[0], time.Since(start).Round(time.Microsecond), err))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		g.logError(err)
		return 1
	}
	return 0
}

// exitError carries a container's exit status out of `run` and `exec`.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func (g *globals) runtime() *runtime.Runtime {
	r := runtime.New(g.root)
	r.SystemdCgroup = g.systemdCgroup
	r.Warn = func(err error) { g.logAt("warning", err) }
	return r
}

// logError reports err on stderr and, with --log, in the log file in the
// requested format: containerd reads the last error from a json log.
func (g *globals) logError(err error) { g.logAt("error", err) }

// logDebug records what --debug asks for: each command with its
// arguments and how it ended, in the log file (on stderr without one).
func (g *globals) logDebug(msg string) {
	if !g.debug {
		return
	}
	if g.log == "" {
		fmt.Fprintf(os.Stderr, "berth-runtime: debug: %s\n", msg)
		return
	}
	g.writeLog("debug", msg)
}

func (g *globals) logAt(level string, err error) {
	if level == "error" {
		fmt.Fprintf(os.Stderr, "berth-runtime: %v\n", err)
	} else {
		fmt.Fprintf(os.Stderr, "berth-runtime: %s: %v\n", level, err)
	}
	if g.log != "" {
		g.writeLog(level, err.Error())
	}
}

// writeLog appends one line to the --log file in --log-format.
func (g *globals) writeLog(level, msg string) {
	f, ferr := os.OpenFile(g.log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if g.logFormat == "json" {
		b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
		fmt.Fprintf(f, "%s\n", b)
		return
	}
	fmt.Fprintf(f, "time=%q level=%s msg=%q\n", now, level, msg)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: berth-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup] COMMAND [OPTIONS]")
	fmt.Fprintln(w, "\nberth's OCI runtime, with runc's command line.\n\nCommands:")
	var names []string
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, verbs[n].summary)
	}
}

// flags makes a verb's flag set; Go's flag package takes -x and --x.
func flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

// parse parses a verb's flags, allowing them before and after the
// container ID (runc's urfave/cli accepts both).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func needID(name string, pos []string, extra int) (string, error) {
	if len(pos) < 1 {
		return "", fmt.Errorf("%s: a container id is required", name)
	}
	if len(pos) > 1+extra {
		return "", fmt.Errorf("%s: unexpected arguments %s", name, strings.Join(pos[1+extra:], " "))
	}
	return pos[0], nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
