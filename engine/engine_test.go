package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestStatusText(t *testing.T) {
	now := time.Now()
	cases := []struct {
		st   State
		want string
	}{
		{State{Status: "created"}, "Created"},
		{State{Status: "running", StartedAt: now.Add(-5 * time.Second)}, "Up 5 seconds"},
		{State{Status: "paused", StartedAt: now.Add(-3 * time.Minute)}, "Up 3 minutes (Paused)"},
		{State{Status: "exited", ExitCode: 137, FinishedAt: now.Add(-2 * time.Minute)}, "Exited (137) 2 minutes ago"},
		{State{Status: "exited"}, "Created"},
	}
	for _, c := range cases {
		if got := statusText(&c.st); got != c.want {
			t.Errorf("%+v: %q, want %q", c.st, got, c.want)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]unix.Signal{"": unix.SIGKILL, "HUP": unix.SIGHUP, "SIGUSR1": unix.SIGUSR1, "term": unix.SIGTERM, "9": unix.SIGKILL} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"NOPE", "0", "65", "-1"} {
		if _, err := ParseSignal(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMergeImageConfig(t *testing.T) {
	img := &Image{Config: ocispec.ImageConfig{Env: []string{"PATH=/bin", "A=1"}, Cmd: []string{"sh"}, WorkingDir: "/w", User: "daemon",
		Labels: map[string]string{"from": "image"}, Entrypoint: []string{"/entry"}}}
	m := mergeImageConfig(&container.Config{Env: []string{"A=2", "B=3"}, Labels: map[string]string{"mine": "1"}}, img)
	if strings.Join(m.Env, ",") != "PATH=/bin,A=2,B=3" || m.Cmd[0] != "sh" || m.Entrypoint[0] != "/entry" || m.WorkingDir != "/w" ||
		m.User != "daemon" || m.Labels["from"] != "image" || m.Labels["mine"] != "1" {
		t.Fatalf("merged %+v", m)
	}
	// A user command replaces the image's; an empty --entrypoint clears it.
	m = mergeImageConfig(&container.Config{Cmd: []string{"echo"}, Entrypoint: []string{}}, img)
	if len(m.Entrypoint) != 0 || m.Cmd[0] != "echo" {
		t.Fatalf("cmd/entrypoint override: %+v", m)
	}
}

func TestMatchFilters(t *testing.T) {
	c := &Container{ID: "abcdef0123", Name: "/web-1", ImageName: "busybox", Image: "sha256:feed",
		Config: &container.Config{Labels: map[string]string{"team": "berth"}}, State: State{Status: "exited", ExitCode: 3}}
	yes := []filters.Args{filters.NewArgs(filters.Arg("id", "abc")), filters.NewArgs(filters.Arg("name", "web")),
		filters.NewArgs(filters.Arg("status", "exited")), filters.NewArgs(filters.Arg("exited", "3")),
		filters.NewArgs(filters.Arg("label", "team=berth")), filters.NewArgs(filters.Arg("ancestor", "busybox"))}
	no := []filters.Args{filters.NewArgs(filters.Arg("id", "xyz")), filters.NewArgs(filters.Arg("status", "running")),
		filters.NewArgs(filters.Arg("exited", "0")), filters.NewArgs(filters.Arg("label", "team=other"))}
	for _, f := range yes {
		if !matchFilters(c, f) {
			t.Errorf("%v should match", f)
		}
	}
	for _, f := range no {
		if matchFilters(c, f) {
			t.Errorf("%v should not match", f)
		}
	}
}

func TestCheckExecutable(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.WriteFile(filepath.Join(root, "bin", "sh"), []byte("x"), 0o755)
	os.WriteFile(filepath.Join(root, "data"), []byte("x"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(root, "bin", "escape"))
	p := func(args ...string) *specs.Process {
		return &specs.Process{Args: args, Cwd: "/", Env: []string{"PATH=/bin"}}
	}
	if err := checkExecutable(root, p("sh")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"nosuch"}, "executable file not found"},
		{[]string{"/data"}, "permission denied"},
		{[]string{"/nosuch"}, "no such file or directory"},
		{[]string{"escape"}, "executable file not found"}, // the host's /etc/passwd is not reached
	} {
		err := checkExecutable(root, p(c.args...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	if exitCodeFor(checkExecutable(root, p("nosuch"))) != 127 || exitCodeFor(checkExecutable(root, p("/data"))) != 126 {
		t.Fatal("exit codes")
	}
}

func TestShouldRestart(t *testing.T) {
	hc := func(name string, max int) *container.HostConfig {
		return &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(name), MaximumRetryCount: max}}
	}
	if !shouldRestart(hc("always", 0), 0, 5) || shouldRestart(hc("no", 0), 1, 0) || shouldRestart(hc("on-failure", 0), 0, 0) ||
		!shouldRestart(hc("on-failure", 2), 1, 1) || shouldRestart(hc("on-failure", 2), 1, 2) {
		t.Fatal("restart policy")
	}
}
