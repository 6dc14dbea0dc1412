package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/docker/docker/api/types/container"
	"golang.org/x/term"
)

func init() {
	register(&command{name: "exec", summary: "Execute a command in a running container", run: execMain})
}

func execMain(args []string) int {
	v := newVerb("exec", "[OPTIONS] CONTAINER COMMAND [ARG...]", "Execute a command in a running container", false)
	detach := v.fs.BoolP("detach", "d", false, "Detached mode: run command in the background")
	interactive := v.fs.BoolP("interactive", "i", false, "Keep STDIN open even if not attached")
	tty := v.fs.BoolP("tty", "t", false, "Allocate a pseudo-TTY")
	user := v.fs.StringP("user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	workdir := v.fs.StringP("workdir", "w", "", "Working directory inside the container")
	privileged := v.fs.Bool("privileged", false, "Give extended privileges to the command")
	env := v.fs.StringArrayP("env", "e", nil, "Set environment variables")
	rest, code, done := v.parse(args, 2)
	if done {
		return code
	}
	stdinTerm := term.IsTerminal(int(os.Stdin.Fd()))
	if *tty && *interactive && !stdinTerm {
		fmt.Fprintln(os.Stderr, "the input device is not a TTY")
		return 1
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	ctx := context.Background()
	id := rest[0]
	var info container.InspectResponse
	if err := c.JSON(ctx, "GET", "/containers/"+id+"/json", nil, nil, &info); err != nil {
		return cliError(err, 1)
	}
	var envs []string
	for _, e := range *env {
		if !strings.Contains(e, "=") {
			if val, ok := os.LookupEnv(e); ok {
				e += "=" + val
			} else {
				continue
			}
		}
		envs = append(envs, e)
	}
	opts := container.ExecOptions{
		User: *user, Privileged: *privileged, Tty: *tty, AttachStdin: *interactive && !*detach,
		AttachStdout: !*detach, AttachStderr: !*detach, Detach: *detach, Env: envs, WorkingDir: *workdir, Cmd: rest[1:],
	}
	var created struct {
		ID string `json:"Id"`
	}
	if err := c.JSON(ctx, "POST", "/containers/"+id+"/exec", nil, opts, &created); err != nil {
		return cliError(err, 1)
	}
	start := container.ExecStartOptions{Detach: *detach, Tty: *tty}
	if *detach {
		return cliError(c.JSON(ctx, "POST", "/exec/"+created.ID+"/start", nil, start, nil), 1)
	}
	conn, err := c.Hijack("/exec/"+created.ID+"/start", nil, start)
	if err != nil {
		return cliError(err, 1)
	}
	defer conn.Close()
	if *tty && stdinTerm {
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			c.JSON(ctx, "POST", "/exec/"+created.ID+"/resize", url.Values{"h": {fmt.Sprint(h)}, "w": {fmt.Sprint(w)}}, nil, nil)
		}
		if *interactive {
			if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
				defer term.Restore(int(os.Stdin.Fd()), st)
			}
		}
	}
	streamAttach(conn, *tty, *interactive)
	var ins struct{ ExitCode *int }
	if err := c.JSON(ctx, "GET", "/exec/"+created.ID+"/json", nil, nil, &ins); err != nil {
		return cliError(err, 1)
	}
	if ins.ExitCode == nil {
		return 0
	}
	return *ins.ExitCode
}
