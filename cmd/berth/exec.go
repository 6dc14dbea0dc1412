package main

// berth exec and berth logs.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/berth-dev/berth/client"
)

func init() {
	registerVerb(&verb{name: "exec", group: "container", under: []string{"exec"}, use: "[OPTIONS] CONTAINER COMMAND [ARG...]",
		summary: "Execute a command in a running container", minArgs: 2, maxArgs: -1, noInterspersed: true, setup: execSetup})
	registerVerb(&verb{name: "logs", group: "container", under: []string{"logs"}, use: "[OPTIONS] CONTAINER",
		summary: "Fetch the logs of a container", minArgs: 1, maxArgs: 1, setup: logsSetup})
}

func execSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	detach := fs.BoolP("detach", "d", false, "Detached mode: run command in the background")
	fs.String("detach-keys", "", "Override the key sequence for detaching a container")
	var env, envFile listOpt
	fs.VarP(&env, "env", "e", "Set environment variables")
	fs.Var(&envFile, "env-file", "Read in a file of environment variables")
	interactive := fs.BoolP("interactive", "i", false, "Keep STDIN open even if not attached")
	privileged := fs.Bool("privileged", false, "Give extended privileges to the command")
	tty := fs.BoolP("tty", "t", false, "Allocate a pseudo-TTY")
	user := fs.StringP("user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	workdir := fs.StringP("workdir", "w", "", "Working directory inside the container")
	return func(c *cli, args []string) int {
		opts := container.ExecOptions{User: *user, Privileged: *privileged, Tty: *tty, WorkingDir: *workdir,
			Cmd: args[1:], Detach: *detach}
		for _, f := range envFile.vals {
			lines, err := readKVFile(f, true)
			if err != nil {
				return c.errorf(125, "%v", err)
			}
			opts.Env = append(opts.Env, lines...)
		}
		for _, e := range env.vals {
			if v, ok := envValue(e); ok {
				opts.Env = append(opts.Env, v)
			}
		}
		if !*detach {
			opts.AttachStdin, opts.AttachStdout, opts.AttachStderr = *interactive, true, true
		}
		if *tty && *interactive && !term.IsTerminal(int(os.Stdin.Fd())) {
			return c.errorf(1, "the input device is not a TTY")
		}
		api := c.client()
		if api == nil {
			return 1
		}
		ctx := c.ctxt()
		if _, err := api.ContainerInspect(ctx, args[0]); err != nil {
			return c.fail(err, 1)
		}
		id, err := api.ExecCreate(ctx, args[0], opts)
		if err != nil {
			return c.fail(err, 1)
		}
		start := container.ExecStartOptions{Detach: *detach, Tty: *tty}
		if *detach {
			if err := api.Call(ctx, client.Request{Method: http.MethodPost, Path: "/exec/" + url.PathEscape(id) + "/start", JSON: start}, nil); err != nil {
				return c.fail(err, 1)
			}
			return 0
		}
		conn, err := api.Hijack(ctx, client.Request{Method: http.MethodPost, Path: "/exec/" + url.PathEscape(id) + "/start", JSON: start})
		if err != nil {
			return c.fail(err, 1)
		}
		defer conn.Close()
		s := &session{c: c, id: id, tty: *tty}
		if *tty {
			stop := s.resizeLoop(ctx, func(h, w uint) error { return api.ExecResize(ctx, id, h, w) })
			defer stop()
		}
		if *tty && *interactive && term.IsTerminal(int(os.Stdin.Fd())) {
			if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
				defer term.Restore(int(os.Stdin.Fd()), st)
			}
		}
		if *interactive {
			go func() {
				io.Copy(conn, os.Stdin)
				conn.CloseWrite()
			}()
		} else {
			conn.CloseWrite()
		}
		if *tty {
			io.Copy(c.stdout, conn)
		} else {
			stdcopy.StdCopy(c.stdout, c.stderr, conn)
		}
		// The stream ends when the process does; its exit code may take
		// a moment to be recorded.
		for i := 0; ; i++ {
			ins, err := api.ExecInspect(ctx, id)
			if err != nil {
				return c.fail(err, 1)
			}
			if !ins.Running || i == 200 {
				return ins.ExitCode
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func logsSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	details := fs.Bool("details", false, "Show extra details provided to logs")
	follow := fs.BoolP("follow", "f", false, "Follow log output")
	since := fs.String("since", "", "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")
	tail := fs.StringP("tail", "n", "all", "Number of lines to show from the end of the logs")
	timestamps := fs.BoolP("timestamps", "t", false, "Show timestamps")
	until := fs.String("until", "", "Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")
	return func(c *cli, args []string) int {
		q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "tail": {*tail}}
		now := time.Now()
		for name, v := range map[string]string{"since": *since, "until": *until} {
			if v == "" {
				continue
			}
			ts, err := apiTimestamp(v, now)
			if err != nil {
				return c.errorf(125, "invalid value for \"%s\": %v", name, err)
			}
			q.Set(name, ts)
		}
		if *follow {
			q.Set("follow", "1")
		}
		if *timestamps {
			q.Set("timestamps", "1")
		}
		if *details {
			q.Set("details", "1")
		}
		api := c.client()
		if api == nil {
			return 1
		}
		ctx, stop := c.interruptible()
		defer stop()
		info, err := api.ContainerInspect(ctx, args[0])
		if err != nil {
			return c.fail(err, 1)
		}
		body, _, err := api.Stream(ctx, client.Request{Method: http.MethodGet, Path: containerPath(args[0], "logs"), Query: q})
		if err != nil {
			return c.fail(err, 1)
		}
		defer body.Close()
		if info.Config != nil && info.Config.Tty {
			_, err = io.Copy(c.stdout, body)
		} else {
			_, err = stdcopy.StdCopy(c.stdout, c.stderr, body)
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return c.errorf(1, "%v", err)
		}
		return 0
	}
}

// apiTimestamp turns --since/--until values into the API's form:
// seconds[.nanoseconds] since the epoch. It takes what the docker CLI
// takes: a duration relative to now ("10m", "1h30m"), a Unix timestamp,
// RFC 3339 with or without nanoseconds and zone, or a date.
func apiTimestamp(v string, now time.Time) (string, error) {
	if d, err := time.ParseDuration(v); err == nil {
		t := now.Add(-d)
		return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()), nil
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil && !strings.Contains(v, "-") {
		return v, nil
	}
	layouts := []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05",
		"2006-01-02T15:04", "2006-01-02T15", "2006-01-02Z07:00", "2006-01-02"}
	for _, l := range layouts {
		var t time.Time
		var err error
		if strings.Contains(l, "Z07") {
			t, err = time.Parse(l, v)
		} else {
			t, err = time.ParseInLocation(l, v, time.Local)
		}
		if err == nil {
			return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()), nil
		}
	}
	return "", fmt.Errorf("failed to parse value as time or duration: %q", v)
}
