package main

// The Docker-style CLI verbs' shared frame: one pflag set per verb with
// docker's flag names and help layout, `berth container …`/`berth image
// …`/`berth system …` groupings, the daemon address (-H/--host,
// DOCKER_HOST), the daemon started on demand (daemon_autostart.go), and
// docker's exit codes: 125 for the CLI's and the daemon's own errors, 1
// for a failed operation on an object, the container's status otherwise.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/client"
)

// globalHost is -H/--host given before the verb (berth -H unix:///x ps).
var globalHost string

// verb is one Docker-style CLI verb.
type verb struct {
	name    string   // top-level name ("" when only under a group)
	group   string   // "container", "image" or "system"
	under   []string // names under the group (first is the main one)
	use     string   // "[OPTIONS] CONTAINER [CONTAINER...]"
	summary string
	minArgs int
	maxArgs int  // -1: unbounded
	exact   bool // "requires exactly N argument(s)"
	// noInterspersed stops flag parsing at the first argument (run, exec).
	noInterspersed bool
	// setup defines the flags and returns the action.
	setup func(fs *pflag.FlagSet) func(c *cli, args []string) int
}

// groups maps "container" → "ls" → verb.
var groups = map[string]map[string]*verb{}

var groupSummaries = map[string]string{
	"container": "Manage containers",
	"image":     "Manage images",
	"system":    "Manage berth",
}

func registerVerb(v *verb) {
	if v.name != "" {
		register(&command{name: v.name, summary: v.summary, run: func(args []string) int {
			return v.main("berth "+v.name, args)
		}})
	}
	if v.group != "" {
		g := groups[v.group]
		if g == nil {
			g = map[string]*verb{}
			groups[v.group] = g
			grp := v.group
			register(&command{name: grp, summary: groupSummaries[grp], run: func(args []string) int { return groupMain(grp, args) }})
		}
		for _, n := range v.under {
			g[n] = v
		}
	}
}

func groupMain(grp string, args []string) int {
	g := groups[grp]
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		w := os.Stdout
		code := 0
		if len(args) == 0 {
			w, code = os.Stderr, 0
		}
		fmt.Fprintf(w, "Usage:  berth %s COMMAND\n\n%s\n\nCommands:\n", grp, groupSummaries[grp])
		seen := map[*verb]bool{}
		var lines []string
		for _, v := range g {
			if !seen[v] {
				seen[v] = true
				lines = append(lines, fmt.Sprintf("  %-10s %s", v.under[0], v.summary))
			}
		}
		sort.Strings(lines)
		fmt.Fprintln(w, strings.Join(lines, "\n"))
		fmt.Fprintf(w, "\nRun 'berth %s COMMAND --help' for more information on a command.\n", grp)
		return code
	}
	v, ok := g[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "berth: unknown command: berth %s %s\n\nRun 'berth %s --help' for more information\n", grp, args[0], grp)
		return 125
	}
	return v.main("berth "+grp+" "+args[0], args[1:])
}

// usageLine is "Usage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]".
func (v *verb) usageLine(full string) string {
	return "Usage:  " + full + " " + v.use
}

func (v *verb) help(full string, fs *pflag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s\n\n%s\n", v.usageLine(full), v.summary)
	var aliases []string
	if v.group != "" {
		for _, n := range v.under {
			aliases = append(aliases, "berth "+v.group+" "+n)
		}
	}
	if v.name != "" && (len(aliases) > 0) {
		aliases = append(aliases, "berth "+v.name)
	}
	if len(aliases) > 1 {
		fmt.Fprintf(&b, "\nAliases:\n  %s\n", strings.Join(aliases, ", "))
	}
	if u := fs.FlagUsages(); u != "" {
		fmt.Fprintf(&b, "\nOptions:\n%s", u)
	}
	return b.String()
}

// main parses the verb's flags and runs it.
func (v *verb) main(full string, args []string) int {
	fs := pflag.NewFlagSet(full, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(!v.noInterspersed)
	fs.SortFlags = true
	run := v.setup(fs)
	if fs.ShorthandLookup("h") == nil {
		fs.BoolP("help", "h", false, "Print usage")
	} else {
		fs.Bool("help", false, "Print usage")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Print(v.help(full, fs))
			return 0
		}
		fmt.Fprintf(os.Stderr, "%s\n\n%s\n\nRun '%s --help' for more information\n", err, v.usageLine(full), full)
		return 125
	}
	if h, _ := fs.GetBool("help"); h {
		fmt.Print(v.help(full, fs))
		return 0
	}
	n := fs.NArg()
	if n < v.minArgs || (v.maxArgs >= 0 && n > v.maxArgs) {
		var what string
		switch {
		case v.exact || v.minArgs == v.maxArgs:
			what = fmt.Sprintf("exactly %d %s", v.minArgs, plural(v.minArgs, "argument"))
		case n < v.minArgs:
			what = fmt.Sprintf("at least %d %s", v.minArgs, plural(v.minArgs, "argument"))
		default:
			what = fmt.Sprintf("at most %d %s", v.maxArgs, plural(v.maxArgs, "argument"))
		}
		if v.maxArgs == 0 {
			what = "no arguments"
			fmt.Fprintf(os.Stderr, "berth: '%s' accepts %s\n\n%s\n\nSee '%s --help' for more information\n", full, what, v.usageLine(full), full)
			return 1
		}
		fmt.Fprintf(os.Stderr, "berth: '%s' requires %s\n\n%s\n\nSee '%s --help' for more information\n", full, what, v.usageLine(full), full)
		return 1
	}
	c := &cli{verb: full, host: client.ResolveHost(globalHost), stdout: os.Stdout, stderr: os.Stderr}
	return run(c, fs.Args())
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

// cli is what a verb's action uses: the daemon (connected on first use)
// and the output streams.
type cli struct {
	verb   string
	host   string
	api    *client.Client
	stdout io.Writer
	stderr io.Writer
	ctx    context.Context
}

// client connects to the daemon, starting it when none answers (see
// daemon_autostart.go). Errors are printed; the result is nil then.
func (c *cli) client() *client.Client {
	if c.api != nil {
		return c.api
	}
	if c.ctx == nil {
		c.ctx = context.Background()
	}
	api, err := c.connect()
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return nil
	}
	return api
}

// connect is client without printing the error.
func (c *cli) connect() (*client.Client, error) {
	if c.api != nil {
		return c.api, nil
	}
	api, err := connectDaemon(c.ctxt(), c.host, c.stderr)
	if err != nil {
		return nil, err
	}
	c.api = api
	return api, nil
}

// context returns a context cancelled by SIGINT/SIGTERM (for streams
// that run until interrupted: logs -f, events, stats).
func (c *cli) interruptible() (context.Context, func()) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// errorf prints a daemon or CLI error as docker does and returns code.
func (c *cli) errorf(code int, format string, a ...any) int {
	fmt.Fprintf(c.stderr, format+"\n", a...)
	return code
}

// errReported says the error was printed already (no daemon).
var errReported = errors.New("error already reported")

// ctxt is the verb's context.
func (c *cli) ctxt() context.Context {
	if c.ctx == nil {
		c.ctx = context.Background()
	}
	return c.ctx
}

// fail prints err (unless printed already) and returns code.
func (c *cli) fail(err error, code int) int {
	if !errors.Is(err, errReported) {
		fmt.Fprintln(c.stderr, err)
	}
	return code
}

// eachArg runs f on every argument, printing each error, docker style:
// exit 1 when any failed.
func (c *cli) eachArg(args []string, f func(arg string) error) int {
	if c.client() == nil {
		return 1
	}
	code := 0
	for _, a := range args {
		if err := f(a); err != nil {
			fmt.Fprintln(c.stderr, err)
			code = 1
			if client.IsConnectError(err) {
				return 125
			}
		}
	}
	return code
}

// globalOptions consumes the options given before the verb (berth -H X
// ps): -H/--host, -D/--debug, -v/--version. It returns the remaining
// arguments, or an exit code when it handled them itself.
func globalOptions(args []string) ([]string, int, bool) {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" && args[0] != "-h" && args[0] != "--help" {
		a := args[0]
		switch {
		case a == "-H" || a == "--host":
			if len(args) < 2 {
				fmt.Fprintf(os.Stderr, "flag needs an argument: %s\nSee 'berth --help'.\n", a)
				return nil, 125, true
			}
			globalHost, args = args[1], args[2:]
		case strings.HasPrefix(a, "--host="):
			globalHost, args = strings.TrimPrefix(a, "--host="), args[1:]
		case strings.HasPrefix(a, "-H") && len(a) > 2:
			globalHost, args = strings.TrimPrefix(strings.TrimPrefix(a, "-H"), "="), args[1:]
		case a == "-D" || a == "--debug":
			args = args[1:]
		case a == "-v" || a == "--version":
			fmt.Printf("berth version %s, build %s\n", version, gitCommit)
			return nil, 0, true
		default:
			fmt.Fprintf(os.Stderr, "unknown flag: %s\nSee 'berth --help'.\n", a)
			return nil, 125, true
		}
	}
	return args, 0, false
}
