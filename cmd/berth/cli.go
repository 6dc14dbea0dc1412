package main

// Shared plumbing of the Docker-style verbs (run, ps, logs, …): flag sets
// with Docker's parsing (GNU style, --help), the API client from -H or
// DOCKER_HOST (starting a daemon on demand), and Docker's error output
// and exit codes.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/template"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/pflag"
)

// verb describes a Docker-style verb for its --help text.
type verb struct {
	name, usage, summary string
	fs                   *pflag.FlagSet
	host                 *string
}

// newVerb makes a flag set with -H/--host; interspersed false stops at
// the first argument (run, exec: the rest is the container's command).
func newVerb(name, usage, summary string, interspersed bool) *verb {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(interspersed)
	v := &verb{name: name, usage: usage, summary: summary, fs: fs}
	v.host = fs.StringP("host", "H", "", "Daemon socket to connect to (default $DOCKER_HOST or "+client.DefaultHost+")")
	fs.BoolP("help", "", false, "Print usage")
	return v
}

func (v *verb) help(w io.Writer) {
	fmt.Fprintf(w, "\nUsage:  berth %s %s\n\n%s\n\nOptions:\n%s", v.name, v.usage, v.summary, v.fs.FlagUsages())
}

// parse parses args; it returns done=true with the exit code when the
// verb must stop (help printed, or a usage error: 125 like docker).
func (v *verb) parse(args []string, minArgs int) (rest []string, code int, done bool) {
	err := v.fs.Parse(args)
	if help, _ := v.fs.GetBool("help"); help || errors.Is(err, pflag.ErrHelp) {
		v.help(os.Stdout)
		return nil, 0, true
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%v\nSee 'berth %s --help'.\n", err, v.name)
		return nil, 125, true
	}
	rest = v.fs.Args()
	if len(rest) < minArgs {
		s := "s"
		if minArgs == 1 {
			s = ""
		}
		fmt.Fprintf(os.Stderr, "\"berth %s\" requires at least %d argument%s.\nSee 'berth %s --help'.\n\nUsage:  berth %s %s\n\n%s\n",
			v.name, minArgs, s, v.name, v.name, v.usage, v.summary)
		return nil, 1, true
	}
	return rest, 0, false
}

// client connects to the daemon, starting one when none runs.
func (v *verb) client() (*client.Client, error) {
	c, err := client.New(*v.host)
	if err != nil {
		return nil, err
	}
	if err := c.EnsureDaemon(); err != nil {
		return nil, err
	}
	return c, nil
}

// cliError prints err as docker does and returns its exit code.
func cliError(err error, code int) int {
	if err == nil {
		return 0
	}
	var api *client.Error
	if errors.As(err, &api) {
		fmt.Fprintln(os.Stderr, "Error response from daemon:", api.Message)
	} else {
		fmt.Fprintln(os.Stderr, err)
	}
	return code
}

// formatTemplate compiles a --format value with Docker's helpers.
func formatTemplate(s string) (*template.Template, error) {
	s = strings.ReplaceAll(s, `\t`, "\t")
	s = strings.ReplaceAll(s, `\n`, "\n")
	return template.New("format").Funcs(template.FuncMap{
		"json":  func(v any) string { return jsonString(v) },
		"join":  strings.Join,
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"title": func(s string) string {
			if s == "" {
				return s
			}
			return strings.ToUpper(s[:1]) + s[1:]
		},
		"truncate": func(s string, n int) string {
			if len(s) > n {
				return s[:n]
			}
			return s
		},
	}).Parse(s)
}

// eachID runs f on every argument, printing the argument on success and
// errors as docker does; the exit code is 1 if any failed.
func eachID(ids []string, quiet bool, f func(id string) error) int {
	code := 0
	for _, id := range ids {
		if err := f(id); err != nil {
			cliError(err, 1)
			code = 1
			continue
		}
		if !quiet {
			fmt.Println(id)
		}
	}
	return code
}
