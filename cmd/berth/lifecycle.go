package main

// start, stop, kill, restart, rm, pause, unpause, wait, rename: verbs
// that act on containers by name or id.

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"

	"github.com/docker/docker/api/types/container"
	"golang.org/x/term"
)

func init() {
	register(&command{name: "start", summary: "Start one or more stopped containers", run: startMain})
	register(&command{name: "stop", summary: "Stop one or more running containers", run: stopMain})
	register(&command{name: "restart", summary: "Restart one or more containers", run: restartMain})
	register(&command{name: "kill", summary: "Kill one or more running containers", run: killMain})
	register(&command{name: "rm", summary: "Remove one or more containers", run: rmMain})
	register(&command{name: "pause", summary: "Pause all processes within one or more containers", run: pauseMain("pause")})
	register(&command{name: "unpause", summary: "Unpause all processes within one or more containers", run: pauseMain("unpause")})
	register(&command{name: "wait", summary: "Block until one or more containers stop, then print their exit codes", run: waitMain})
	register(&command{name: "rename", summary: "Rename a container", run: renameMain})
}

func startMain(args []string) int {
	v := newVerb("start", "[OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers", true)
	attach := v.fs.BoolP("attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	interactive := v.fs.BoolP("interactive", "i", false, "Attach container's STDIN")
	ids, code, done := v.parse(args, 1)
	if done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	if *attach || *interactive {
		id := ids[0]
		var info container.InspectResponse
		if err := c.JSON(context.Background(), "GET", "/containers/"+id+"/json", nil, nil, &info); err != nil {
			return cliError(err, 1)
		}
		q := url.Values{"stream": {"1"}, "stdout": {"1"}, "stderr": {"1"}}
		if *interactive {
			q.Set("stdin", "1")
		}
		conn, err := c.Hijack("/containers/"+id+"/attach", q, nil)
		if err != nil {
			return cliError(err, 1)
		}
		defer conn.Close()
		waitResp, err := c.Do(context.Background(), "POST", "/containers/"+id+"/wait", url.Values{"condition": {"next-exit"}}, nil, nil)
		if err != nil {
			return cliError(err, 1)
		}
		defer waitResp.Body.Close()
		if err := c.JSON(context.Background(), "POST", "/containers/"+id+"/start", nil, nil, nil); err != nil {
			return cliError(err, 1)
		}
		tty := info.Config != nil && info.Config.Tty
		if tty && *interactive && term.IsTerminal(int(os.Stdin.Fd())) {
			if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
				defer term.Restore(int(os.Stdin.Fd()), st)
			}
		}
		streamAttach(conn, tty, *interactive)
		var st container.WaitResponse
		if err := jsonDecode(waitResp.Body, &st); err != nil {
			return 1
		}
		return int(st.StatusCode)
	}
	return eachID(ids, false, func(id string) error {
		return c.JSON(context.Background(), "POST", "/containers/"+id+"/start", nil, nil, nil)
	})
}

func timeoutQuery(v *verb, t int, sig string) url.Values {
	q := url.Values{}
	if v.fs.Changed("time") || v.fs.Changed("timeout") {
		q.Set("t", strconv.Itoa(t))
	}
	if sig != "" {
		q.Set("signal", sig)
	}
	return q
}

func stopMain(args []string) int {
	v := newVerb("stop", "[OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers", true)
	t := v.fs.IntP("time", "t", 10, "Seconds to wait before killing the container")
	sig := v.fs.StringP("signal", "s", "", "Signal to send to the container")
	ids, code, done := v.parse(args, 1)
	if done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	q := timeoutQuery(v, *t, *sig)
	return eachID(ids, false, func(id string) error {
		return c.JSON(context.Background(), "POST", "/containers/"+id+"/stop", q, nil, nil)
	})
}

func restartMain(args []string) int {
	v := newVerb("restart", "[OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers", true)
	t := v.fs.IntP("time", "t", 10, "Seconds to wait before killing the container")
	sig := v.fs.StringP("signal", "s", "", "Signal to send to the container")
	ids, code, done := v.parse(args, 1)
	if done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	q := timeoutQuery(v, *t, *sig)
	return eachID(ids, false, func(id string) error {
		return c.JSON(context.Background(), "POST", "/containers/"+id+"/restart", q, nil, nil)
	})
}

func killMain(args []string) int {
	v := newVerb("kill", "[OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers", true)
	sig := v.fs.StringP("signal", "s", "", "Signal to send to the container")
	ids, code, done := v.parse(args, 1)
	if done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	q := url.Values{}
	if *sig != "" {
		q.Set("signal", *sig)
	}
	return eachID(ids, false, func(id string) error {
		return c.JSON(context.Background(), "POST", "/containers/"+id+"/kill", q, nil, nil)
	})
}

func rmMain(args []string) int {
	v := newVerb("rm", "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers", true)
	force := v.fs.BoolP("force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	vols := v.fs.BoolP("volumes", "v", false, "Remove anonymous volumes associated with the container")
	ids, code, done := v.parse(args, 1)
	if done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	q := url.Values{}
	if *force {
		q.Set("force", "1")
	}
	if *vols {
		q.Set("v", "1")
	}
	return eachID(ids, false, func(id string) error {
		return c.JSON(context.Background(), "DELETE", "/containers/"+id, q, nil, nil)
	})
}

func pauseMain(verbName string) func([]string) int {
	return func(args []string) int {
		summary := "Pause all processes within one or more containers"
		if verbName == "unpause" {
			summary = "Unpause all processes within one or more containers"
		}
		v := newVerb(verbName, "CONTAINER [CONTAINER...]", summary, true)
		ids, code, done := v.parse(args, 1)
		if done {
			return code
		}
		c, err := v.client()
		if err != nil {
			return cliError(err, 1)
		}
		return eachID(ids, false, func(id string) error {
			return c.JSON(context.Background(), "POST", "/containers/"+id+"/"+verbName, nil, nil, nil)
		})
	}
}

func waitMain(args []string) int {
	v := newVerb("wait", "CONTAINER [CONTAINER...]", "Block until one or more containers stop, then print their exit codes", true)
	ids, code, done := v.parse(args, 1)
	if done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	rc := 0
	for _, id := range ids {
		var st container.WaitResponse
		if err := c.JSON(context.Background(), "POST", "/containers/"+id+"/wait", nil, nil, &st); err != nil {
			cliError(err, 1)
			rc = 1
			continue
		}
		fmt.Println(st.StatusCode)
	}
	return rc
}

func renameMain(args []string) int {
	v := newVerb("rename", "CONTAINER NEW_NAME", "Rename a container", true)
	rest, code, done := v.parse(args, 2)
	if done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	return cliError(c.JSON(context.Background(), "POST", "/containers/"+rest[0]+"/rename", url.Values{"name": {rest[1]}}, nil, nil), 1)
}
