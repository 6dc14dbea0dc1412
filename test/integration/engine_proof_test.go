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

// Behaviours berth implements that no other test asserted: each is
// checked from inside the container, in its cgroup, or in what the CLI
// prints.

// TestEngineProofRunFlags: --cpuset-cpus, --stop-signal, --stop-timeout,
// --uts host and --cgroupns private/host.
func TestEngineProofRunFlags(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()

	t.Run("cpuset-cpus", func(t *testing.T) {
		id := strings.TrimSpace(e.docker("run", "-d", "--cpuset-cpus", "0", "busybox", "sleep", "1000"))
		defer e.docker("rm", "-f", id)
		pid := strings.TrimSpace(e.docker("inspect", "-f", "{{.State.Pid}}", id))
		dir := cgroupDir(t, pid, "cpuset")
		file := "cpuset.cpus"
		if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
			file = "cpuset.cpus.effective" // v2 without the controller delegated
		}
		if data, err := os.ReadFile(filepath.Join(dir, file)); err != nil || strings.TrimSpace(string(data)) != "0" {
			t.Errorf("%s/%s: %q %v, want 0", dir, file, data, err)
		}
		if out := e.docker("exec", id, "grep", "Cpus_allowed_list", "/proc/self/status"); out != "Cpus_allowed_list:\t0\n" {
			t.Errorf("inside: %q", out)
		}
	})

	t.Run("stop-signal", func(t *testing.T) {
		id := strings.TrimSpace(e.docker("run", "-d", "--stop-signal", "SIGUSR1", "busybox", "sh", "-c",
			`trap "echo got-usr1; exit 3" USR1; echo ready; while :; do sleep 0.1; done`))
		defer e.docker("rm", "-f", id)
		// The trap is set once the shell prints ready.
		waitFor(t, func() bool { return strings.Contains(e.docker("logs", id), "ready") })
		start := time.Now()
		e.docker("stop", id)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("stop took %s: the stop signal did not end the container", d)
		}
		if out := e.docker("inspect", "-f", "{{.State.ExitCode}}", id); out != "3\n" {
			t.Errorf("exit code %q, want 3 (the USR1 trap's)", out)
		}
		if out := e.docker("logs", id); !strings.Contains(out, "got-usr1\n") {
			t.Errorf("logs: %q, want got-usr1", out)
		}
	})

	t.Run("stop-timeout", func(t *testing.T) {
		// busybox sleep as PID 1 has no SIGTERM handler: the kernel
		// drops the signal, only SIGKILL after the timeout ends it.
		id := strings.TrimSpace(e.docker("run", "-d", "--stop-timeout", "1", "busybox", "sleep", "1000"))
		defer e.docker("rm", "-f", id)
		start := time.Now()
		e.docker("stop", id)
		d := time.Since(start)
		if d > 5*time.Second {
			t.Errorf("stop with --stop-timeout 1 took %s", d)
		}
		if d < 900*time.Millisecond {
			t.Errorf("stop took %s: SIGKILL came before the 1 s timeout", d)
		}
		if out := e.docker("inspect", "-f", "{{.State.ExitCode}}", id); out != "137\n" {
			t.Errorf("exit code %q, want 137 (SIGKILL)", out)
		}
	})

	t.Run("uts host", func(t *testing.T) {
		host, err := os.Hostname()
		if err != nil {
			t.Fatal(err)
		}
		if out := e.docker("run", "--rm", "--uts", "host", "busybox", "hostname"); out != host+"\n" {
			t.Errorf("--uts host: hostname %q, host's %q", out, host)
		}
		self, _ := os.Readlink("/proc/self/ns/uts")
		if out := e.docker("run", "--rm", "--uts", "host", "busybox", "readlink", "/proc/self/ns/uts"); out != self+"\n" {
			t.Errorf("--uts host: UTS namespace %q, host's %q", out, self)
		}
	})

	t.Run("cgroupns", func(t *testing.T) {
		// private: every hierarchy's path is the container's root.
		out := e.docker("run", "--rm", "--cgroupns", "private", "busybox", "cat", "/proc/self/cgroup")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for _, l := range lines {
			if !strings.HasSuffix(l, ":/") {
				t.Errorf("--cgroupns private: %q is not the namespace's root\n%s", l, out)
			}
		}
		if len(lines) < 2 {
			t.Errorf("--cgroupns private: %q", out)
		}
		// host: the full path, ending in the container's ID.
		name := randomName("berth-test-cgns-")
		out = e.docker("run", "--name", name, "--cgroupns", "host", "busybox", "cat", "/proc/self/cgroup")
		id := strings.TrimSpace(e.docker("inspect", "-f", "{{.Id}}", name))
		e.docker("rm", name)
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.SplitN(l, ":", 3); len(f) == 3 && f[1] == "pids" && f[2] != e.cgroupParent+"/"+id {
				t.Errorf("--cgroupns host: pids path %q, want %s/%s", f[2], e.cgroupParent, id)
			}
		}
		if !strings.Contains(out, ":"+e.cgroupParent+"/"+id+"\n") {
			t.Errorf("--cgroupns host: no path with the container's ID %s:\n%s", id, out)
		}
	})
}

// TestEngineProofInfoLoopback: docker info says containers get loopback
// networking only (api/system.go's warning and network plugin list).
func TestEngineProofInfoLoopback(t *testing.T) {
	e := newEngine(t)
	out, errs, code := e.dockerQuiet("info")
	if code != 0 {
		t.Fatalf("docker info: exit %d\n%s%s", code, out, errs)
	}
	all := out + errs
	if !strings.Contains(all, "WARNING: bridge networking is not available yet: containers on the default network get a private network namespace with loopback only (use --network host for the host's network)") {
		t.Errorf("docker info does not warn about loopback-only networking:\nstdout: %s\nstderr: %s", out, errs)
	}
	if !strings.Contains(out, "Network: none host loopback-only (default)") {
		t.Errorf("docker info's network plugins:\n%s", out)
	}
}

// TestEngineProofDefaultSeccompUnshare: the talk's `unshare -U echo hi`
// under berth's default profile fails with EPERM (Docker 20.10+'s profile
// allows unshare only with CAP_SYS_ADMIN); unconfined it prints hi.
func TestEngineProofDefaultSeccompUnshare(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	out, errs, code := e.dockerQuiet("run", "--rm", "busybox", "sh", "-c", "unshare -U echo hi")
	if code != 1 || out != "" || !strings.Contains(errs, "Operation not permitted") {
		t.Errorf("default profile: exit %d (want 1), stdout %q, stderr %q (want EPERM)", code, out, errs)
	}
	if out := e.docker("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "sh", "-c", "unshare -U echo hi"); out != "hi\n" {
		t.Errorf("unconfined: %q", out)
	}
}

// TestEngineProofDaemonJSON: daemon.json keys at the daemon's level.
func TestEngineProofDaemonJSON(t *testing.T) {
	t.Run("misspelt key", func(t *testing.T) {
		testutil.RequiresRoot(t)
		dir := t.TempDir()
		cfg := filepath.Join(dir, "daemon.json")
		os.WriteFile(cfg, []byte(`{"users-remap":"mtk"}`), 0o644)
		cmd := exec.Command(testutil.BerthBinary(t), "daemon", "--config", cfg,
			"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "x"), "-H", "unix://"+filepath.Join(dir, "s.sock"))
		code, stderr := runBounded(t, cmd, 10*time.Second)
		if code == 0 || !strings.Contains(stderr, `did you mean "userns-remap" for "users-remap"?`) {
			t.Errorf("exit %d, stderr %q: want non-zero and a hint for userns-remap", code, stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
			t.Errorf("the refused daemon created its data root")
		}
	})
	t.Run("default-ulimits and seccomp-profile", func(t *testing.T) {
		e := newEngine(t)
		e.stop(syscall.SIGTERM)
		profile := filepath.Join(e.dir, "deny_unshare.json")
		os.WriteFile(profile, []byte(`{ "defaultAction" : "SCMP_ACT_ALLOW",
  "syscalls": [ { "name" : "unshare", "action" : "SCMP_ACT_KILL" } ] }`), 0o644)
		os.WriteFile(filepath.Join(e.dir, "daemon.json"), []byte(`{
  "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1234, "Hard": 1234}},
  "seccomp-profile": "`+profile+`"
}`), 0o644)
		e.start()
		e.importBusybox()
		if out := e.docker("run", "--rm", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn"); out != "1234\n1234\n" {
			t.Errorf("default-ulimits nofile 1234: ulimit -n -Hn says %q", out)
		}
		// --ulimit still wins over the default.
		if out := e.docker("run", "--rm", "--ulimit", "nofile=100:200", "busybox", "sh", "-c", "ulimit -n"); out != "100\n" {
			t.Errorf("--ulimit over default-ulimits: %q", out)
		}
		out, errs, code := e.dockerQuiet("run", "--rm", "busybox", "sh", "-c", "unshare -U echo hi")
		if code != 159 || out != "" {
			t.Errorf("seccomp-profile deny_unshare: exit %d (want 159, SIGSYS), stdout %q stderr %q", code, out, errs)
		}
		if out := e.docker("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "sh", "-c", "unshare -U echo hi"); out != "hi\n" {
			t.Errorf("unconfined over the daemon's profile: %q", out)
		}
	})
}

// TestEngineProofSecondDaemon: a second daemon on the same data root is
// refused, says why, and leaves the first serving with its state intact.
func TestEngineProofSecondDaemon(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	id := strings.TrimSpace(e.docker("run", "-d", "busybox", "sleep", "1000"))
	// The daemon makes a spare root filesystem ahead after a run.
	spares := filepath.Join(e.dir, "data", "snapshots", "spares")
	var before []os.DirEntry
	for i := 0; i < 100 && len(before) == 0; i++ {
		before, _ = os.ReadDir(spares)
		time.Sleep(20 * time.Millisecond)
	}
	if len(before) == 0 {
		t.Errorf("no spare root filesystem in %s after a run: the check below proves nothing", spares)
	}
	// Same flags: same data root, exec root and socket.
	code, stderr := runBounded(t, exec.Command(testutil.BerthBinary(t), e.args...), 20*time.Second)
	if code == 0 || !strings.Contains(stderr, "another berth daemon is using the data root "+filepath.Join(e.dir, "data")) {
		t.Errorf("second daemon: exit %d, stderr %q", code, stderr)
	}
	after, _ := os.ReadDir(spares)
	if names(before) != names(after) {
		t.Errorf("the refused daemon changed the first's spare root filesystems: %s → %s", names(before), names(after))
	}
	// The first still serves, on the same socket, its container and new ones.
	if out := e.docker("inspect", "-f", "{{.State.Status}}", id); out != "running\n" {
		t.Errorf("container: %q", out)
	}
	if out := e.docker("run", "--rm", "busybox", "echo", "still"); out != "still\n" {
		t.Errorf("run after the refused daemon: %q", out)
	}
	e.docker("rm", "-f", id)
}

// TestEngineProofTTYSize: run -t and exec -t give the process the CLI's
// terminal size, and follow a change of it. The docker CLI runs under
// script(1), on a pty set to 30 rows and 100 columns. The CLI sends the
// size with the container's create (HostConfig.ConsoleSize, even at API
// 1.41), with an exec's create only from API 1.42, and with a resize call
// after an attached start and whenever its terminal changes (SIGWINCH).
// Detached (-d) starts get no resize call: they see only the create's.
func TestEngineProofTTYSize(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script (util-linux) is not installed")
	}
	e := newEngine(t)
	e.importBusybox()
	id := strings.TrimSpace(e.docker("run", "-d", "busybox", "sleep", "1000"))
	defer e.docker("rm", "-f", id)
	// underTerminal runs a shell script under a 30x100 terminal.
	underTerminal := func(api, script string) string {
		t.Helper()
		cmd := exec.Command("script", "-qec", "stty cols 100 rows 30; "+script, "/dev/null")
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.host(), "DOCKER_CONFIG="+e.dockerC)
		if api != "" {
			cmd.Env = append(cmd.Env, "DOCKER_API_VERSION="+api)
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := runWithin(cmd, 30*time.Second); err != nil {
			t.Errorf("under a terminal: %s: %v\n%s", script, err, out.String())
		}
		return out.String()
	}
	// Polls (bounded) in the container: until COND; do sleep; done.
	until := func(cond string) string {
		return `i=0; until ` + cond + `; do i=$((i+1)); [ $i -gt 100 ] && break; sleep 0.05; done`
	}

	// run -d -t: the create's ConsoleSize alone.
	ctr := strings.TrimSpace(underTerminal("", "docker run -d -t busybox stty size"))
	e.docker("wait", ctr)
	if out := e.docker("logs", ctr); out != "30 100\r\n" {
		t.Errorf("run -d -t under a 30x100 terminal: stty size %q", out)
	}
	e.docker("rm", ctr)

	// exec -d -t at API 1.42: the exec create's ConsoleSize alone.
	underTerminal("1.42", "docker exec -d -t "+id+" sh -c 'stty size >/tmp/size 2>&1'")
	if out := e.docker("exec", id, "sh", "-c", until("[ -s /tmp/size ]")+"; cat /tmp/size"); out != "30 100\n" {
		t.Errorf("exec -d -t (API 1.42) under a 30x100 terminal: stty size %q", out)
	}

	// exec -t at API 1.41: the resize call after the start. Until it
	// comes the size is 0 0, which busybox's stty size refuses (printing
	// nothing on stdout, exit 0).
	out := underTerminal("", "docker exec -t "+id+` sh -c '`+until(`s=$(stty size 2>/dev/null); [ -n "$s" ]`)+`; echo "size=$s"'`)
	// The container's pty writes \r\n, script's adds a \r.
	if !strings.Contains(out, "size=30 100\r") {
		t.Errorf("exec -t under a 30x100 terminal: %q", out)
	}

	// run -t, and the terminal changes to 40x120 once the container has
	// read its first size (/tmp/first): the CLI, in the terminal's
	// foreground process group, gets SIGWINCH and resizes the container's
	// terminal.
	name := randomName("berth-test-tty-")
	out = underTerminal("", "docker run --rm -t --name "+name+` busybox sh -c 'echo first=$(stty size); touch /tmp/first; `+until(`s=$(stty size); [ "$s" = "40 120" ]`)+`; echo last=$s' &
`+until(`docker exec `+name+` test -e /tmp/first 2>/dev/null`)+`
stty cols 120 rows 40; wait`)
	if !strings.Contains(out, "first=30 100\r\r\nlast=40 120\r") {
		t.Errorf("run -t, terminal 30x100 then 40x120: %q", out)
	}
}

func names(ents []os.DirEntry) string {
	var s []string
	for _, e := range ents {
		s = append(s, e.Name())
	}
	return strings.Join(s, " ")
}

// runBounded runs cmd, killing it (by its PID) after limit, and returns
// its exit code and stderr.
func runBounded(t *testing.T, cmd *exec.Cmd, limit time.Duration) (int, string) {
	t.Helper()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := runWithin(cmd, limit)
	if cmd.ProcessState == nil {
		t.Fatalf("%s: %v", cmd.Path, err)
	}
	return cmd.ProcessState.ExitCode(), errb.String()
}

// runWithin runs cmd and kills it if it has not ended after limit.
func runWithin(cmd *exec.Cmd, limit time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		return os.ErrDeadlineExceeded
	}
}
