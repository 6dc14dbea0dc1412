package integration

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestEngineLifecycle drives a container through the docker CLI workflows
// of API-SUBSET.md and checks what each prints.
func TestEngineLifecycle(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	name := randomName("berth-test-")
	id := strings.TrimSpace(e.docker("run", "-d", "--name", name, "-e", "GREETING=hi", "-w", "/tmp", "--label", "team=berth",
		"busybox", "sh", "-c", `echo "$GREETING from $(pwd)"; echo err >&2; trap "echo bye; exit 3" TERM; while true; do sleep 0.1; done`))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}

	ps := e.docker("ps")
	if !regexp.MustCompile(id[:12] + `\s+busybox\s+"sh -c .*"\s+.*\s+Up .*\s+` + name).MatchString(ps) {
		t.Fatalf("ps:\n%s", ps)
	}
	if out := e.docker("ps", "-q", "--filter", "label=team=berth"); strings.TrimSpace(out) != id[:12] {
		t.Fatalf("ps --filter label: %q", out)
	}
	waitFor(t, func() bool {
		out, _, _ := e.dockerQuiet("logs", name)
		return out == "hi from /tmp\n"
	})
	stdout, stderr, _ := e.dockerQuiet("logs", name)
	if stdout != "hi from /tmp\n" || stderr != "err\n" {
		t.Fatalf("logs: %q %q", stdout, stderr)
	}
	// The last entry is on stdout or stderr, whichever the container's
	// two pipes delivered last: the CLI prints it on the same stream.
	tailOut, tailErr, _ := e.dockerQuiet("logs", "-t", "--tail", "1", name)
	if out := tailOut + tailErr; !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (hi from /tmp|err)\n$`).MatchString(out) {
		t.Fatalf("logs -t --tail 1: %q", out)
	}

	var inspect []struct {
		ID    string `json:"Id"`
		Name  string
		State struct {
			Status  string
			Running bool
			Pid     int
		}
		Config struct {
			Env        []string
			WorkingDir string
			Labels     map[string]string
		}
		HostConfig struct{ NetworkMode string }
	}
	if err := json.Unmarshal([]byte(e.docker("inspect", name)), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	in := inspect[0]
	if in.ID != id || in.Name != "/"+name || in.State.Status != "running" || !in.State.Running || in.State.Pid <= 0 ||
		in.Config.WorkingDir != "/tmp" || in.Config.Labels["team"] != "berth" || !contains(in.Config.Env, "GREETING=hi") {
		t.Fatalf("inspect: %+v", in)
	}

	top := e.docker("top", name)
	if !strings.Contains(top, "PID") || !strings.Contains(top, "sh -c") {
		t.Fatalf("top:\n%s", top)
	}
	stats := e.docker("stats", "--no-stream", name)
	if !strings.Contains(stats, name) || !strings.Contains(stats, "MEM USAGE") {
		t.Fatalf("stats:\n%s", stats)
	}

	// cp both ways.
	src := filepath.Join(e.dir, "burner")
	os.WriteFile(src, []byte("#!/bin/sh\necho burning\n"), 0o755)
	e.docker("cp", src, name+":/cpu_burner")
	if out := e.docker("exec", name, "/cpu_burner"); out != "burning\n" {
		t.Fatalf("exec copied file: %q", out)
	}
	e.docker("exec", name, "sh", "-c", "mkdir -p /d/e && echo deep > /d/e/f")
	dst := filepath.Join(e.dir, "out")
	e.docker("cp", name+":/d", dst)
	if data, err := os.ReadFile(filepath.Join(dst, "e", "f")); err != nil || string(data) != "deep\n" {
		t.Fatalf("cp dir out: %q %v", data, err)
	}
	e.docker("cp", name+":/etc/hostname", filepath.Join(e.dir, "hostname"))
	if data, _ := os.ReadFile(filepath.Join(e.dir, "hostname")); string(data) != id[:12]+"\n" {
		t.Fatalf("cp /etc/hostname: %q", data)
	}

	// exec: exit codes, stdin, user, env, workdir.
	if _, _, code := e.dockerQuiet("exec", name, "sh", "-c", "exit 7"); code != 7 {
		t.Fatalf("exec exit code %d", code)
	}
	cmd := e.dockerCmd("exec", "-i", name, "sh", "-c", "read x; echo got $x")
	cmd.Stdin = strings.NewReader("berth\n")
	if out, err := cmd.Output(); err != nil || string(out) != "got berth\n" {
		t.Fatalf("exec -i: %q %v", out, err)
	}
	if out := e.docker("exec", "-u", "daemon", "-e", "X=1", "-w", "/", name, "sh", "-c", "id -u; echo $X; pwd"); out != "1\n1\n/\n" {
		t.Fatalf("exec -u -e -w: %q", out)
	}
	if _, errs, code := e.dockerQuiet("exec", name, "nosuchcmd"); code != 127 || !strings.Contains(errs+"", "executable file not found") {
		t.Fatalf("exec nosuchcmd: exit %d %q", code, errs)
	}

	// pause / unpause.
	e.docker("pause", name)
	if out := e.docker("inspect", "-f", "{{.State.Status}}", name); out != "paused\n" {
		t.Fatalf("after pause: %q", out)
	}
	if _, errs, code := e.dockerQuiet("exec", name, "true"); code == 0 || !strings.Contains(errs, "paused") {
		t.Fatalf("exec into a paused container: %d %s", code, errs)
	}
	e.docker("unpause", name)

	// kill: PID 1 of a PID namespace ignores signals it has no handler
	// for (HUP), as under dockerd; KILL ends it with 137.
	e.docker("kill", "-s", "HUP", name)
	time.Sleep(200 * time.Millisecond)
	if out := e.docker("inspect", "-f", "{{.State.Running}}", name); out != "true\n" {
		t.Fatalf("after SIGHUP: running=%q", out)
	}
	e.docker("kill", name)
	waitFor(t, func() bool { return e.docker("inspect", "-f", "{{.State.Status}}", name) == "exited\n" })
	if out := e.docker("inspect", "-f", "{{.State.ExitCode}}", name); out != "137\n" {
		t.Fatalf("exit code after SIGKILL: %q", out)
	}
	if _, errs, code := e.dockerQuiet("kill", name); code == 0 || !strings.Contains(errs, "is not running") {
		t.Fatalf("kill a stopped container: %d %s", code, errs)
	}
	e.docker("start", name)
	waitFor(t, func() bool { return strings.Count(e.docker("logs", name), "hi from /tmp") == 2 })
	start := time.Now()
	e.docker("stop", name)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stop took %s: TERM was not delivered", d)
	}
	if out := e.docker("inspect", "-f", "{{.State.ExitCode}} {{.State.Status}}", name); out != "3 exited\n" {
		t.Fatalf("after stop: %q", out)
	}
	if !strings.Contains(e.docker("logs", name), "bye") {
		t.Fatal("the TERM trap did not run")
	}
	ps = e.docker("ps", "-a")
	if !regexp.MustCompile(id[:12] + `.*Exited \(3\) .* ago`).MatchString(ps) {
		t.Fatalf("ps -a:\n%s", ps)
	}
	if out := e.docker("ps", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("ps lists a stopped container: %q", out)
	}

	// restart, rename, wait, export, rm.
	e.docker("restart", "-t", "1", name)
	if out := e.docker("inspect", "-f", "{{.State.Running}}", name); out != "true\n" {
		t.Fatalf("after restart: %q", out)
	}
	e.docker("rename", name, name+"-2")
	name += "-2"
	if _, errs, code := e.dockerQuiet("rm", name); code == 0 || !strings.Contains(errs, "cannot remove a running container") {
		t.Fatalf("rm running: %d %s", code, errs)
	}
	go e.dockerQuiet("kill", "-s", "TERM", name)
	if out := e.docker("wait", name); out != "3\n" {
		t.Fatalf("wait: %q", out)
	}
	exp := e.dockerCmd("export", name)
	var tarOut bytes.Buffer
	exp.Stdout = &tarOut
	if err := exp.Run(); err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, &tarOut)
	if !names["bin/busybox"] || !names["cpu_burner"] || !names["d/e/f"] {
		t.Fatalf("export lacks files: %d entries", len(names))
	}
	e.docker("rm", name)
	if _, errs, code := e.dockerQuiet("inspect", name); code != 1 || !strings.Contains(errs, "No such object") {
		t.Fatalf("inspect after rm: %d %s", code, errs)
	}

	// run's exit codes: the command's, 125, 126, 127.
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"run", "--rm", "busybox", "sh", "-c", "exit 42"}, 42, ""},
		{[]string{"run", "--rm", "busybox", "nosuchcmd"}, 127, "executable file not found"},
		{[]string{"run", "--rm", "busybox", "/etc/passwd"}, 126, "permission denied"},
		{[]string{"run", "--rm", "nosuchimage"}, 125, ""},
		{[]string{"run", "--rm", "--cpu-period=10", "busybox", "true"}, 125, "CPU cfs period"},
		{[]string{"run", "--rm", "--memory=1k", "busybox", "true"}, 125, "Minimum memory limit"},
		{[]string{"run", "--rm", "--cap-add=CAP_FLY", "busybox", "true"}, 125, "invalid capability"},
		{[]string{"run", "--rm", "--ulimit", "nofile=99999999:99999999", "busybox", "true"}, 125, ""},
	} {
		_, errs, code := e.dockerQuiet(c.args...)
		if code != c.code || !strings.Contains(strings.ToLower(errs), strings.ToLower(c.msg)) {
			t.Errorf("docker %s: exit %d (want %d), stderr %q", strings.Join(c.args, " "), code, c.code, errs)
		}
	}
	if out := e.docker("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("--rm left containers: %q", out)
	}

	// stdin and tty.
	run := e.dockerCmd("run", "-i", "--rm", "busybox", "sh", "-c", "tr a-z A-Z")
	run.Stdin = strings.NewReader("shout\n")
	if out, err := run.Output(); err != nil || string(out) != "SHOUT\n" {
		t.Fatalf("run -i: %q %v", out, err)
	}
}

// TestEngineTTY is docker run -t: the monitor holds the pty master the
// runtime sends over the console socket.
func TestEngineTTY(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	if out := e.docker("run", "--rm", "-t", "busybox", "sh", "-c", "tty; stty size"); !strings.HasPrefix(out, "/dev/pts/0\r\n") {
		t.Fatalf("run -t: %q", out)
	}
	id := strings.TrimSpace(e.docker("run", "-d", "busybox", "sleep", "100"))
	if out := e.docker("exec", "-t", id, "sh", "-c", "tty; echo in-tty"); !regexp.MustCompile(`^/dev/pts/\d+\r\nin-tty\r\n$`).MatchString(out) {
		t.Fatalf("exec -t: %q", out)
	}
	e.docker("rm", "-f", id)
}

func tarNames(t *testing.T, r io.Reader) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names[strings.TrimPrefix(strings.TrimSuffix(h.Name, "/"), "./")] = true
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if ok() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatal("condition not reached in 5 s")
}
