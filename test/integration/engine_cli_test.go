package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// berth runs the berth CLI against the env's daemon.
func (e *engineEnv) berth(args ...string) (string, string, int) {
	cmd := exec.Command(testutil.BerthBinary(e.t), args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.host())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Run()
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

func (e *engineEnv) berthOK(args ...string) string {
	e.t.Helper()
	out, errs, code := e.berth(args...)
	if code != 0 {
		e.t.Fatalf("berth %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// TestBerthCLI: the talk and the common workflows through berth's own CLI
// (no docker installed needed), with docker's outputs and exit codes.
func TestBerthCLI(t *testing.T) {
	e := newEngine(t)
	tarPath := filepath.Join(e.dir, "bb.tar")
	e.importBusybox()
	e.docker("save", "-o", tarPath, "busybox")
	e.docker("rmi", "busybox")
	if out := e.berthOK("load", "-i", tarPath); out != "Loaded image: busybox:latest\n" {
		t.Fatalf("berth load: %q", out)
	}
	if out := e.berthOK("run", "busybox", "sh", "-c", `echo "hello world"`); out != "hello world\n" {
		t.Fatalf("berth run: %q", out)
	}
	if out := e.berthOK("run", "--rm", "busybox", "sh", "-c", `echo "$$"; id`); out != "1\nuid=0(root) gid=0(root) groups=10(wheel)\n" {
		t.Fatalf("berth run id: %q", out)
	}
	if out := e.berthOK("run", "--rm", "busybox", "grep", "CapEff", "/proc/self/status"); out != "CapEff:\t00000000a80425fb\n" {
		t.Fatalf("caps: %q", out)
	}
	profile := filepath.Join(e.dir, "deny.json")
	os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"unshare","action":"SCMP_ACT_KILL"}]}`), 0o644)
	if out, _, code := e.berth("run", "--rm", "--security-opt=seccomp="+profile, "busybox", "sh", "-c", "unshare -U echo hi"); code != 159 || out != "" {
		t.Fatalf("deny unshare: exit %d %q", code, out)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"run", "--rm", "busybox", "sh", "-c", "exit 3"}, 3},
		{[]string{"run", "--rm", "busybox", "nosuchcmd"}, 127},
		{[]string{"run", "--rm", "busybox", "/etc/passwd"}, 126},
		{[]string{"run", "--rm", "--cpu-period=10", "busybox", "true"}, 125},
		{[]string{"run", "--nosuchflag", "busybox"}, 125},
		{[]string{"nosuchverb"}, 125},
		{[]string{"logs", "nosuch"}, 1},
	} {
		if _, errs, code := e.berth(c.args...); code != c.code {
			t.Errorf("berth %s: exit %d, want %d (%s)", strings.Join(c.args, " "), code, c.code, errs)
		}
	}
	if out, _, code := e.berth("run", "--help"); code != 0 || !strings.Contains(out, "Usage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]") || !strings.Contains(out, "--cpu-quota") {
		t.Fatalf("run --help: %d %q", code, out)
	}

	id := strings.TrimSpace(e.berthOK("run", "-d", "--cpu-period=2000", "--cpu-quota=1000", "busybox", "sh", "-c", "echo up; sleep 1000"))
	if len(id) != 64 {
		t.Fatalf("run -d: %q", id)
	}
	if out := e.berthOK("ps"); !strings.Contains(out, id[:12]) || !strings.Contains(out, "Up ") {
		t.Fatalf("ps:\n%s", out)
	}
	if out := e.berthOK("exec", id[:12], "sh", "-c", "grep Name /proc/[1-9]*/status"); !strings.HasPrefix(out, "/proc/1/status:Name:\tsleep\n") {
		t.Fatalf("exec: %q", out)
	}
	if out := e.berthOK("inspect", "-f", "{{.HostConfig.CpuQuota}} {{.HostConfig.CpuPeriod}}", id); out != "1000 2000\n" {
		t.Fatalf("inspect -f: %q", out)
	}
	src := filepath.Join(e.dir, "file")
	os.WriteFile(src, []byte("copied\n"), 0o644)
	e.berthOK("cp", src, id+":/copied")
	if out := e.berthOK("exec", id, "cat", "/copied"); out != "copied\n" {
		t.Fatalf("cp in: %q", out)
	}
	e.berthOK("cp", id+":/copied", filepath.Join(e.dir, "back"))
	if data, _ := os.ReadFile(filepath.Join(e.dir, "back")); string(data) != "copied\n" {
		t.Fatalf("cp out: %q", data)
	}
	waitFor(t, func() bool { out, _, _ := e.berth("logs", id); return out == "up\n" })
	if out := e.berthOK("top", id); !strings.Contains(out, "sleep 1000") {
		t.Fatalf("top:\n%s", out)
	}
	if out := e.berthOK("stats", "--no-stream", id); !strings.Contains(out, id[:12]) {
		t.Fatalf("stats:\n%s", out)
	}
	e.berthOK("pause", id)
	e.berthOK("unpause", id)
	start := time.Now()
	e.berthOK("stop", "-t", "1", id)
	if time.Since(start) > 5*time.Second {
		t.Fatal("stop -t 1 took too long")
	}
	if out := e.berthOK("wait", id); out != "137\n" {
		t.Fatalf("wait: %q", out)
	}
	if out := e.berthOK("ps", "-a", "--format", "{{.ID}} {{.Status}}"); !strings.Contains(out, id[:12]+" Exited (137)") {
		t.Fatalf("ps -a --format: %q", out)
	}
	e.berthOK("rm", id)
	e.berthOK("tag", "busybox", "mine:v2")
	if out := e.berthOK("images"); !strings.Contains(out, "mine") || !strings.Contains(out, "v2") {
		t.Fatalf("images:\n%s", out)
	}
	if out := e.berthOK("rmi", "mine:v2"); out != "Untagged: mine:v2\n" {
		t.Fatalf("rmi: %q", out)
	}
	if out := e.berthOK("events", "--since", "1h", "--until", "0s", "--filter", "event=die"); !strings.Contains(out, "container die") {
		t.Fatalf("events:\n%s", out)
	}
	if out := e.berthOK("info"); !strings.Contains(out, "Storage Driver: overlayfs") {
		t.Fatalf("info:\n%s", out)
	}
}

// TestBerthCLIStartsDaemon: with no daemon answering, a berth verb starts
// one (the socket and config it is given) and goes on.
func TestBerthCLIStartsDaemon(t *testing.T) {
	testutil.RequiresRoot(t)
	dir, err := os.MkdirTemp("", "berth-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "daemon.json")
	os.WriteFile(cfg, []byte(`{"data-root":"`+dir+`/data","exec-root":"`+dir+`/x","cgroup-parent":"`+testutil.OwnCgroup(t, "cli")+`"}`), 0o644)
	sock := "unix://" + dir + "/berth.sock"
	cmd := exec.Command(testutil.BerthBinary(t), "info")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+sock, "BERTH_DAEMON_CONFIG="+cfg)
	out, err := cmd.CombinedOutput()
	// Stop the daemon it started (its pid from the socket's peer).
	defer func() {
		if pid := socketPeer(dir + "/berth.sock"); pid > 0 {
			if p, err := os.FindProcess(pid); err == nil {
				p.Signal(os.Interrupt)
				for i := 0; i < 100; i++ {
					if p.Signal(syscall.Signal(0)) != nil {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}
	}()
	if err != nil || !strings.Contains(string(out), "Docker Root Dir: "+dir+"/data") {
		t.Fatalf("berth info without a daemon: %v\n%s", err, out)
	}
}
