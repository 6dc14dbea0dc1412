package main

// Resolving the PID|CONTAINER arguments of the instruments: a number is a
// PID; anything else is a container name or ID (prefix), asked first of
// the berth daemon's Docker API (GET /containers/{id}/json → .State.Pid),
// then of the runtime's state directory (`berth-runtime --root DIR state
// ID`, falling back to `list` for a prefix).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/proc"
)

const (
	defaultHost        = "unix:///run/berth/berth.sock"
	defaultRuntimeRoot = "/run/berth/runtime"
	dockerAPIVersion   = "v1.41"
)

// target is where an instrument looks: a PID, and the container it was
// named by (empty for a plain PID).
type target struct {
	PID       int    `json:"pid"`
	Container string `json:"container,omitempty"`
	Via       string `json:"via,omitempty"` // "daemon" or "runtime"
}

type resolver struct {
	host        string // -H / DOCKER_HOST
	runtimeRoot string
}

func newResolver(host, runtimeRoot string) *resolver {
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	if host == "" {
		host = defaultHost
	}
	if runtimeRoot == "" {
		runtimeRoot = defaultRuntimeRoot
	}
	return &resolver{host: host, runtimeRoot: runtimeRoot}
}

// containerRef is what Docker accepts as a container name or ID.
var containerRef = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func (r *resolver) resolve(arg string) (target, error) {
	if n, err := strconv.Atoi(arg); err == nil {
		if n <= 0 {
			return target{}, fmt.Errorf("invalid PID %d: a PID is a positive number", n)
		}
		if !proc.Exists(n) {
			return target{}, fmt.Errorf("no such process: %d", n)
		}
		return target{PID: n}, nil
	}
	if !containerRef.MatchString(arg) || len(arg) > 255 {
		return target{}, fmt.Errorf("invalid PID or container name %q: a PID is a number, a container name or ID matches [a-zA-Z0-9][a-zA-Z0-9_.-]*", arg)
	}
	pid, err := r.fromDaemon(arg)
	if err == nil {
		return target{PID: pid, Container: arg, Via: "daemon"}, nil
	}
	if !errors.Is(err, errNotFound) && !errors.Is(err, errNoDaemon) {
		return target{}, err
	}
	daemonErr := err
	pid, err = r.fromRuntime(arg)
	if err == nil {
		return target{PID: pid, Container: arg, Via: "runtime"}, nil
	}
	if errors.Is(err, errNotFound) {
		return target{}, fmt.Errorf("no such container or process: %s (%v; %v)", arg, daemonErr, err)
	}
	return target{}, err
}

var (
	errNotFound = errors.New("not found")
	errNoDaemon = errors.New("no daemon")
)

// lookupError is a failed lookup whose message is for the user and whose
// kind (errNotFound, errNoDaemon) is for errors.Is.
type lookupError struct {
	msg  string
	kind error
}

func (e *lookupError) Error() string { return e.msg }
func (e *lookupError) Unwrap() error { return e.kind }

func notFound(format string, a ...any) error {
	return &lookupError{fmt.Sprintf(format, a...), errNotFound}
}

func noDaemon(format string, a ...any) error {
	return &lookupError{fmt.Sprintf(format, a...), errNoDaemon}
}

// fromDaemon asks the Docker API for the container's init PID.
func (r *resolver) fromDaemon(id string) (int, error) {
	u, err := url.Parse(r.host)
	if err != nil || u.Scheme != "unix" || u.Path == "" {
		return 0, noDaemon("daemon host %q is not unix:///path (the only kind berth inspect reaches)", r.host)
	}
	sock := u.Path
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
	resp, err := client.Get("http://berth/" + dockerAPIVersion + "/containers/" + url.PathEscape(id) + "/json")
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return 0, noDaemon("no berth daemon answers at %s", r.host)
		}
		return 0, fmt.Errorf("ask daemon at %s about container %s: %w", r.host, id, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return 0, notFound("the daemon at %s has no container %s", r.host, id)
	default:
		return 0, fmt.Errorf("daemon at %s: container %s: %s: %s", r.host, id, resp.Status, bytes.TrimSpace(body))
	}
	var c struct {
		ID    string `json:"Id"`
		State struct {
			Running bool
			Pid     int
			Status  string
		}
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return 0, fmt.Errorf("daemon at %s: container %s: bad answer: %w", r.host, id, err)
	}
	if !c.State.Running || c.State.Pid <= 0 {
		return 0, fmt.Errorf("container %s is not running (state %q)", id, c.State.Status)
	}
	return c.State.Pid, nil
}

// fromRuntime asks berth-runtime (this binary's runtime personality).
func (r *resolver) fromRuntime(id string) (int, error) {
	if _, err := os.Stat(r.runtimeRoot); err != nil {
		return 0, notFound("no runtime state in %s", r.runtimeRoot)
	}
	var st struct {
		ID     string `json:"id"`
		Pid    int    `json:"pid"`
		Status string `json:"status"`
	}
	out, err := r.runtime("state", id)
	if err == nil {
		if err := json.Unmarshal(out, &st); err != nil {
			return 0, fmt.Errorf("runtime state of %s: %w", id, err)
		}
	} else {
		// Not an exact ID: look for a unique prefix among the containers.
		out, lerr := r.runtime("list", "--format", "json")
		if lerr != nil {
			return 0, notFound("the runtime root %s has no container %s", r.runtimeRoot, id)
		}
		var all []struct {
			ID     string `json:"id"`
			Pid    int    `json:"pid"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(out, &all); err != nil {
			return 0, fmt.Errorf("runtime list: %w", err)
		}
		n := 0
		for _, c := range all {
			if strings.HasPrefix(c.ID, id) {
				st.ID, st.Pid, st.Status = c.ID, c.Pid, c.Status
				n++
			}
		}
		switch {
		case n == 0:
			return 0, notFound("the runtime root %s has no container %s", r.runtimeRoot, id)
		case n > 1:
			return 0, fmt.Errorf("runtime (root %s): %q matches %d containers; give more of the ID", r.runtimeRoot, id, n)
		}
	}
	if st.Pid <= 0 || st.Status == "stopped" {
		return 0, fmt.Errorf("container %s is not running (status %q)", id, st.Status)
	}
	return st.Pid, nil
}

func (r *resolver) runtime(args ...string) ([]byte, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, append([]string{"runtime", "--root", r.runtimeRoot}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}
