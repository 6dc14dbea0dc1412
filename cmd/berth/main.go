// Command berth is the one binary of berth: the Docker-compatible CLI verbs,
// the daemon, the runc-compatible OCI runtime (`berth runtime …`, or this
// binary invoked as `berth-runtime`) and the instruments. Each verb family
// registers itself from its own file; this file only dispatches.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// command is one top-level verb of the berth binary.
type command struct {
	name    string
	summary string
	hidden  bool // internal stages (the container init) are not listed
	run     func(args []string) int
}

var commands = map[string]*command{}

// register adds a verb; each verb's file calls it from init().
func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("berth: verb registered twice: " + c.name)
	}
	commands[c.name] = c
}

// personalities maps the name the binary is invoked by to the verb it acts
// as, so a link named berth-runtime is a runc-compatible runtime.
var personalities = map[string]string{
	"berth-runtime": "runtime",
}

func main() {
	os.Exit(dispatch(filepath.Base(os.Args[0]), os.Args[1:]))
}

func dispatch(argv0 string, args []string) int {
	if verb, ok := personalities[argv0]; ok {
		if c, ok := commands[verb]; ok {
			return c.run(args)
		}
	}
	args, code, done := globalOptions(args)
	if done {
		return code
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(os.Stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "berth: '%s' is not a berth command.\nSee 'berth --help'.\n", args[0])
		return 125
	}
	return c.run(args[1:])
}

func usage(w *os.File) {
	fmt.Fprintln(w, "Usage:  berth COMMAND [OPTIONS]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "A container engine that shows what isolates a process.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	var names []string
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'berth COMMAND --help' for more information on a command.")
}
