package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/registry"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
	"golang.org/x/term"
)

func init() {
	register(&command{name: "run", summary: "Create and run a new container from an image", run: runMain})
	register(&command{name: "create", summary: "Create a new container", run: createMain})
}

type createBody struct {
	*container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
}

// createContainer creates, pulling the image first when it is missing
// (as docker run does), and returns the new id.
func createContainer(c *client.Client, f *containerFlags, body createBody) (string, error) {
	q := url.Values{}
	if f.name != "" {
		q.Set("name", f.name)
	}
	var resp container.CreateResponse
	err := c.JSON(context.Background(), "POST", "/containers/create", q, body, &resp)
	if client.StatusOf(err) == 404 && strings.Contains(err.Error(), "No such image") && f.pull != "never" {
		ref := body.Image
		if !strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") && !strings.Contains(ref, "@") {
			ref += ":latest"
		}
		fmt.Fprintf(os.Stderr, "Unable to find image '%s' locally\n", ref)
		if perr := pullImage(c, body.Image, f.platform, os.Stderr); perr != nil {
			return "", perr
		}
		err = c.JSON(context.Background(), "POST", "/containers/create", q, body, &resp)
	}
	if err != nil {
		return "", err
	}
	for _, w := range resp.Warnings {
		fmt.Fprintln(os.Stderr, "WARNING:", w)
	}
	return resp.ID, nil
}

// pullImage pulls through the daemon and draws its progress.
func pullImage(c *client.Client, ref, platform string, w io.Writer) error {
	q := url.Values{"fromImage": {ref}}
	if platform != "" {
		q.Set("platform", platform)
	}
	resp, err := c.Do(context.Background(), "POST", "/images/create", q, nil, map[string][]string{"X-Registry-Auth": {"e30="}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	isTerm := false
	if f, ok := w.(*os.File); ok {
		isTerm = term.IsTerminal(int(f.Fd()))
	}
	return registry.Display(resp.Body, w, isTerm, 80, nil)
}

func createMain(args []string) int {
	v := newVerb("create", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container", false)
	var f containerFlags
	addContainerFlags(v.fs, &f, false)
	rest, code, done := v.parse(args, 1)
	if done {
		return code
	}
	cfg, hc, nc, err := f.build(v.fs, rest[0], rest[1:])
	if err != nil {
		return cliError(err, 125)
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 125)
	}
	id, err := createContainer(c, &f, createBody{cfg, hc, nc})
	if err != nil {
		return cliError(err, 125)
	}
	fmt.Println(id)
	return 0
}

// runMain is docker run's flow: create, attach, wait (headers first),
// start; the exit code is the container's.
func runMain(args []string) int {
	v := newVerb("run", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create and run a new container from an image", false)
	var f containerFlags
	addContainerFlags(v.fs, &f, true)
	rest, code, done := v.parse(args, 1)
	if done {
		return code
	}
	if f.detach && f.rm && false {
		return 125
	}
	stdinTerm := term.IsTerminal(int(os.Stdin.Fd()))
	if f.tty && f.interactive && !stdinTerm {
		fmt.Fprintln(os.Stderr, "the input device is not a TTY")
		return 1
	}
	cfg, hc, nc, err := f.build(v.fs, rest[0], rest[1:])
	if err != nil {
		return cliError(err, 125)
	}
	if f.tty && stdinTerm {
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			hc.ConsoleSize = [2]uint{uint(h), uint(w)}
		}
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 125)
	}
	id, err := createContainer(c, &f, createBody{cfg, hc, nc})
	if err != nil {
		return cliError(err, 125)
	}
	var conn *client.Conn
	if !f.detach {
		q := url.Values{"stream": {"1"}, "stdout": {"1"}, "stderr": {"1"}}
		if f.interactive {
			q.Set("stdin", "1")
		}
		if conn, err = c.Hijack("/containers/"+id+"/attach", q, nil); err != nil {
			return cliError(err, 125)
		}
		defer conn.Close()
	}
	cond := "next-exit"
	if f.rm {
		cond = "removed"
	}
	waitCtx, cancelWait := context.WithCancel(context.Background())
	defer cancelWait()
	waitResp, err := c.Do(waitCtx, "POST", "/containers/"+id+"/wait", url.Values{"condition": {cond}}, nil, nil)
	if err != nil {
		return cliError(err, 125)
	}
	defer waitResp.Body.Close()
	if err := c.JSON(context.Background(), "POST", "/containers/"+id+"/start", nil, nil, nil); err != nil {
		if conn != nil {
			conn.Close()
		}
		code := 125
		msg := err.Error()
		switch {
		case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
			code = 127
		case strings.Contains(msg, "permission denied"):
			code = 126
		}
		cliError(err, code)
		if f.rm {
			io.Copy(io.Discard, waitResp.Body)
		}
		return code
	}
	if f.detach {
		fmt.Println(id)
		return 0
	}
	var restore func()
	if f.tty && stdinTerm && f.interactive {
		if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			restore = func() { term.Restore(int(os.Stdin.Fd()), st) }
			defer restore()
		}
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			c.JSON(context.Background(), "POST", "/containers/"+id+"/resize", url.Values{"h": {fmt.Sprint(h)}, "w": {fmt.Sprint(w)}}, nil, nil)
		}
	}
	if f.sigProxy && !f.tty {
		sigs := make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
		defer signal.Stop(sigs)
		go func() {
			for s := range sigs {
				c.JSON(context.Background(), "POST", "/containers/"+id+"/kill", url.Values{"signal": {fmt.Sprint(int(s.(syscall.Signal)))}}, nil, nil)
			}
		}()
	}
	streamAttach(conn, f.tty, f.interactive)
	var st container.WaitResponse
	if err := jsonDecode(waitResp.Body, &st); err != nil {
		return cliError(fmt.Errorf("waiting for the container: %w", err), 125)
	}
	if st.Error != nil && st.Error.Message != "" {
		fmt.Fprintln(os.Stderr, st.Error.Message)
	}
	return int(st.StatusCode)
}

// streamAttach copies the container's output to ours (demultiplexed
// unless tty) and our stdin to it, until the output ends.
func streamAttach(conn *client.Conn, tty, stdin bool) {
	var wg sync.WaitGroup
	if stdin {
		go func() {
			io.Copy(conn, os.Stdin)
			conn.CloseWrite()
		}()
	} else {
		conn.CloseWrite()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if tty {
			io.Copy(os.Stdout, conn)
		} else {
			stdcopy.StdCopy(os.Stdout, os.Stderr, conn)
		}
	}()
	wg.Wait()
}
