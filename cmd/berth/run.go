package main

// berth run, create, start and attach: the docker CLI's call sequence
// (API-SUBSET.md): create (404 → pull, create again), attach (hijacked,
// stdcopy unless -t), wait with a condition, start; stdin forwarded with
// -i, a raw terminal and resizes with -t, signals proxied to the
// container, the container's status as the exit code.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/distribution/reference"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/berth-dev/berth/client"
)

func init() {
	registerVerb(&verb{name: "run", group: "container", under: []string{"run"}, use: "[OPTIONS] IMAGE [COMMAND] [ARG...]",
		summary: "Create and run a new container from an image", minArgs: 1, maxArgs: -1, noInterspersed: true,
		setup: func(fs *pflag.FlagSet) func(*cli, []string) int {
			o := addContainerFlags(fs, true)
			return func(c *cli, args []string) int { return runMain(c, o, args) }
		}})
	registerVerb(&verb{name: "create", group: "container", under: []string{"create"}, use: "[OPTIONS] IMAGE [COMMAND] [ARG...]",
		summary: "Create a new container", minArgs: 1, maxArgs: -1, noInterspersed: true,
		setup: func(fs *pflag.FlagSet) func(*cli, []string) int {
			o := addContainerFlags(fs, false)
			return func(c *cli, args []string) int {
				o.detach = true
				id, _, code := createContainer(c, o, args)
				if code != 0 {
					return code
				}
				fmt.Fprintln(c.stdout, id)
				return 0
			}
		}})
	registerVerb(&verb{name: "start", group: "container", under: []string{"start"}, use: "[OPTIONS] CONTAINER [CONTAINER...]",
		summary: "Start one or more stopped containers", minArgs: 1, maxArgs: -1, setup: startSetup})
	registerVerb(&verb{name: "attach", group: "container", under: []string{"attach"}, use: "[OPTIONS] CONTAINER",
		summary: "Attach local standard input, output, and error streams to a running container", minArgs: 1, maxArgs: 1, setup: attachSetup})
}

// runErr prints a run/create error as docker does and returns code.
func runErr(c *cli, code int, err error) int {
	if errors.Is(err, errReported) {
		return 125
	}
	fmt.Fprintf(c.stderr, "berth: %v\n\nRun '%s --help' for more information\n", err, c.verb)
	return code
}

// startExitCode is docker's reading of a start error: 127 for a command
// not found, 126 for one that cannot be executed, else 125.
func startExitCode(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, syscall.EACCES.Error()) || strings.Contains(msg, syscall.EISDIR.Error()):
		return 126
	}
	return 125
}

// createContainer creates the container (pulling its image when missing,
// per --pull) and returns its ID.
func createContainer(c *cli, o *containerOpts, args []string) (string, client.CreateBody, int) {
	body, err := o.body(args[0], args[1:])
	if err != nil {
		return "", body, runErr(c, 125, err)
	}
	if o.cidfile != "" {
		if _, err := os.Stat(o.cidfile); err == nil {
			return "", body, runErr(c, 125, fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", o.cidfile))
		}
	}
	api, err := c.connect()
	if err != nil {
		return "", body, runErr(c, 125, err)
	}
	named, refErr := reference.ParseNormalizedNamed(args[0])
	if refErr == nil {
		named = reference.TagNameOnly(named)
	}
	pull := func() error {
		if refErr != nil {
			return fmt.Errorf("invalid reference format: %w", refErr)
		}
		return pullImage(c, named, o.platform, c.stderr, o.quiet)
	}
	switch o.pull {
	case "always":
		if err := pull(); err != nil {
			return "", body, runErr(c, 125, err)
		}
	case "missing", "never", "":
	default:
		return "", body, runErr(c, 125, fmt.Errorf("invalid pull option: '%s': must be one of \"always\", \"missing\" or \"never\"", o.pull))
	}
	resp, err := api.ContainerCreate(c.ctxt(), body, o.name, o.platform)
	if client.IsNotFound(err) && strings.Contains(err.Error(), "No such image") && o.pull != "never" && o.pull != "always" {
		if refErr == nil {
			fmt.Fprintf(c.stderr, "Unable to find image '%s' locally\n", reference.FamiliarString(named))
		}
		if err := pull(); err != nil {
			return "", body, runErr(c, 125, err)
		}
		resp, err = api.ContainerCreate(c.ctxt(), body, o.name, o.platform)
	}
	if err != nil {
		return "", body, runErr(c, 125, err)
	}
	for _, w := range resp.Warnings {
		fmt.Fprintf(c.stderr, "WARNING: %s\n", w)
	}
	if o.cidfile != "" {
		if err := os.WriteFile(o.cidfile, []byte(resp.ID), 0o644); err != nil {
			return resp.ID, body, runErr(c, 125, fmt.Errorf("failed to write the container ID to the file: %w", err))
		}
	}
	return resp.ID, body, 0
}

func runMain(c *cli, o *containerOpts, args []string) int {
	if o.tty && o.interactive && !term.IsTerminal(int(os.Stdin.Fd())) {
		return runErr(c, 1, errors.New("the input device is not a TTY"))
	}
	id, body, code := createContainer(c, o, args)
	if code != 0 {
		return code
	}
	api := c.api
	ctx := c.ctxt()
	if o.detach {
		if err := api.ContainerStart(ctx, id); err != nil {
			if o.rm {
				removeQuietly(c, id)
			}
			return runErr(c, startExitCode(err), err)
		}
		fmt.Fprintln(c.stdout, id)
		return 0
	}
	s := &session{c: c, id: id, rm: o.rm, tty: o.tty, stdin: body.Config.AttachStdin,
		stdout: body.Config.AttachStdout, stderr: body.Config.AttachStderr, sigProxy: o.sigProxy && !o.tty}
	condition := "next-exit"
	if o.rm {
		condition = "removed"
	}
	return s.run(condition, true)
}

// session is an attached container: the hijacked stream, its status.
type session struct {
	c                     *cli
	id                    string
	rm                    bool // --rm: removed when start fails
	tty                   bool
	stdin, stdout, stderr bool
	sigProxy              bool
}

// run attaches, waits with the condition and (start) starts the
// container, forwarding streams until it ends; it returns the exit code.
func (s *session) run(condition string, start bool) int {
	api, ctx := s.c.api, s.c.ctxt()
	var conn *client.Conn
	if s.stdin || s.stdout || s.stderr {
		q := url.Values{"stream": {"1"}}
		for k, on := range map[string]bool{"stdin": s.stdin, "stdout": s.stdout, "stderr": s.stderr} {
			if on {
				q.Set(k, "1")
			}
		}
		var err error
		conn, err = api.Hijack(ctx, client.Request{Method: "POST", Path: "/containers/" + url.PathEscape(s.id) + "/attach", Query: q})
		if err != nil {
			return runErr(s.c, 125, err)
		}
		defer conn.Close()
	}
	waiter, err := api.ContainerWait(ctx, s.id, condition)
	if err != nil {
		return runErr(s.c, 125, err)
	}
	var restore func()
	if s.tty && s.stdin && term.IsTerminal(int(os.Stdin.Fd())) {
		if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			restore = func() { term.Restore(int(os.Stdin.Fd()), st) }
			defer restore()
		}
	}
	outDone := make(chan struct{})
	if conn != nil {
		go func() {
			defer close(outDone)
			if s.tty {
				io.Copy(s.c.stdout, conn)
			} else {
				stdcopy.StdCopy(s.c.stdout, s.c.stderr, conn)
			}
		}()
		if s.stdin {
			go func() {
				io.Copy(conn, os.Stdin)
				conn.CloseWrite()
			}()
		} else {
			conn.CloseWrite()
		}
	} else {
		close(outDone)
	}
	if start {
		if err := api.ContainerStart(ctx, s.id); err != nil {
			if restore != nil {
				restore()
			}
			if conn != nil {
				conn.Close()
			}
			if s.rm {
				removeQuietly(s.c, s.id)
			}
			return runErr(s.c, startExitCode(err), err)
		}
	}
	if s.tty {
		stop := s.resizeLoop(ctx, func(h, w uint) error { return api.ContainerResize(ctx, s.id, h, w) })
		defer stop()
	}
	if s.sigProxy {
		stop := s.proxySignals(ctx)
		defer stop()
	}
	res := <-waiter.C
	<-outDone
	if res.Err != nil {
		if restore != nil {
			restore()
		}
		fmt.Fprintf(s.c.stderr, "Error response from daemon: %v\n", res.Err)
		return 125
	}
	return int(res.StatusCode)
}

// resizeLoop sends the terminal's size now and on every SIGWINCH.
func (s *session) resizeLoop(ctx context.Context, resize func(h, w uint) error) func() {
	fd := int(os.Stdout.Fd())
	if !term.IsTerminal(fd) {
		return func() {}
	}
	send := func() {
		if w, h, err := term.GetSize(fd); err == nil && h > 0 && w > 0 {
			resize(uint(h), uint(w))
		}
	}
	send()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				send()
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { signal.Stop(ch); close(done) }) }
}

// proxySignals forwards the signals a terminal user sends to the
// container (docker's --sig-proxy).
func (s *session) proxySignals(ctx context.Context) func() {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-ch:
				n := int(sig.(syscall.Signal))
				s.c.api.ContainerPost(ctx, s.id, "kill", url.Values{"signal": {fmt.Sprint(n)}})
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { signal.Stop(ch); close(done) }) }
}

func startSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	attach := fs.BoolP("attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	interactive := fs.BoolP("interactive", "i", false, "Attach container's STDIN")
	fs.String("detach-keys", "", "Override the key sequence for detaching a container")
	return func(c *cli, args []string) int {
		api := c.client()
		if api == nil {
			return 1
		}
		if *attach || *interactive {
			if len(args) > 1 {
				return c.errorf(1, "you cannot start and attach multiple containers at once")
			}
			info, err := api.ContainerInspect(c.ctxt(), args[0])
			if err != nil {
				return c.fail(err, 1)
			}
			s := &session{c: c, id: info.ID, tty: info.Config.Tty, stdin: *interactive && info.Config.OpenStdin,
				stdout: true, stderr: true, sigProxy: !info.Config.Tty}
			return s.run("next-exit", true)
		}
		return c.eachArg(args, func(a string) error {
			if err := api.ContainerStart(c.ctxt(), a); err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, a)
			return nil
		})
	}
}

func attachSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	noStdin := fs.Bool("no-stdin", false, "Do not attach STDIN")
	sigProxy := fs.Bool("sig-proxy", true, "Proxy all received signals to the process")
	fs.String("detach-keys", "", "Override the key sequence for detaching a container")
	return func(c *cli, args []string) int {
		api := c.client()
		if api == nil {
			return 1
		}
		info, err := api.ContainerInspect(c.ctxt(), args[0])
		if err != nil {
			return c.fail(err, 1)
		}
		if !info.State.Running {
			return c.errorf(1, "You cannot attach to a stopped container, start it first")
		}
		if info.State.Paused {
			return c.errorf(1, "You cannot attach to a paused container, unpause it first")
		}
		s := &session{c: c, id: info.ID, tty: info.Config.Tty, stdin: !*noStdin && info.Config.OpenStdin,
			stdout: true, stderr: true, sigProxy: *sigProxy && !info.Config.Tty}
		return s.run("", false)
	}
}

// removeQuietly removes a --rm container whose start failed (the daemon
// may have removed it already).
func removeQuietly(c *cli, id string) {
	c.api.Call(c.ctxt(), client.Request{Method: "DELETE", Path: "/containers/" + url.PathEscape(id), Query: url.Values{"force": {"1"}, "v": {"1"}}}, nil)
}
