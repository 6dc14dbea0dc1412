package monitor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/specopts"
	"github.com/docker/docker/pkg/stdcopy"
)

func TestMain(m *testing.M) {
	if os.Getenv("BERTH_TEST_MONITOR") == "1" {
		os.Exit(Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// bundle makes an OCI bundle with a busybox rootfs running args; the
// runtime is runc (the runc-compatible CLI contract berth-runtime meets).
func bundle(t *testing.T, tty bool, args ...string) (Config, func()) {
	t.Helper()
	testutil.RequiresRoot(t)
	rt, err := exec.LookPath("runc")
	if p := os.Getenv("BERTH_TEST_RUNTIME"); p != "" {
		rt, err = p, nil
	}
	if err != nil {
		t.Skip("runc not installed")
	}
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	os.Mkdir(rootfs, 0o755)
	if err := copyTree(testutil.BusyboxRootfs(t), rootfs); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("berth-test-%d", rand.Int63())
	s := specopts.Default()
	if err := specopts.Apply(s, specopts.WithArgs(args), specopts.WithTTY(tty, 24, 80), specopts.WithCgroupsPath("/"+id)); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(s)
	os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600)
	state := filepath.Join(dir, "state")
	cfg := Config{ID: id, Bundle: dir, Runtime: rt, RuntimeArgs: []string{"--root", state},
		LogPath: filepath.Join(dir, "log.json"), ExitFile: filepath.Join(dir, "exit"),
		Socket: filepath.Join(dir, "m.sock"), Tty: tty}
	return cfg, func() { exec.Command(rt, "--root", state, "delete", "--force", id).Run() }
}

func copyTree(src, dst string) error {
	return exec.Command("cp", "-a", src+"/.", dst).Run()
}

func spawn(t *testing.T, cfg Config) (*os.Process, int) {
	t.Helper()
	os.Setenv("BERTH_TEST_MONITOR", "1")
	defer os.Unsetenv("BERTH_TEST_MONITOR")
	exe, _ := os.Executable()
	p, pid, err := spawnEnv([]string{exe}, filepath.Join(cfg.Bundle, "monitor.json"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, pid
}

// spawnEnv is Spawn with the test's marker variable passed through.
func spawnEnv(argv []string, cfgPath string, cfg Config) (*os.Process, int, error) {
	old := spawnEnvHook
	spawnEnvHook = []string{"BERTH_TEST_MONITOR=1"}
	defer func() { spawnEnvHook = old }()
	return Spawn(argv, cfgPath, cfg)
}

func TestMonitorRunsAttachesLogsAndRecordsExit(t *testing.T) {
	cfg, cleanup := bundle(t, false, "sh", "-c", "echo hello world; echo oops >&2; exit 3")
	defer cleanup()
	proc, pid := spawn(t, cfg)
	defer proc.Wait()
	if pid <= 0 {
		t.Fatalf("init pid %d", pid)
	}
	conn, err := Attach(cfg.Socket, false, true, true)
	if err != nil {
		t.Fatal(err)
	}
	conn.CloseWrite() // like the docker CLI: no stdin is not a detach
	waitCh, err := Wait(cfg.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if err := Start(cfg.Socket); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errb, conn); err != nil {
		t.Fatal(err)
	}
	if out.String() != "hello world\n" || errb.String() != "oops\n" {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
	select {
	case r := <-waitCh:
		if r.Err != nil || r.Exit.ExitCode != 3 {
			t.Fatalf("wait: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit")
	}
	e, err := ReadExit(cfg.ExitFile)
	if err != nil || e.ExitCode != 3 {
		t.Fatalf("exit file: %+v %v", e, err)
	}
	log, _ := os.ReadFile(cfg.LogPath)
	if !strings.Contains(string(log), `{"log":"hello world\n","stream":"stdout","time":"`) || !strings.Contains(string(log), `"stream":"stderr"`) {
		t.Fatalf("log: %s", log)
	}
	// The monitor is gone: requests say so.
	proc.Wait()
	if _, err := Wait(cfg.Socket); !IsGone(err) {
		t.Fatalf("wait after exit: %v", err)
	}
}

func TestMonitorStdinAndSignalExit(t *testing.T) {
	cfg, cleanup := bundle(t, false, "sh", "-c", "read x; echo got $x; exec sleep 100")
	cfg.OpenStdin, cfg.StdinOnce = true, true
	defer cleanup()
	proc, _ := spawn(t, cfg)
	defer proc.Wait()
	conn, err := Attach(cfg.Socket, true, true, true)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("berth\n"))
	conn.CloseWrite()
	waitCh, _ := Wait(cfg.Socket)
	if err := Start(cfg.Socket); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 8+len("got berth\n"))
	if _, err := io.ReadFull(conn, hdr); err != nil || string(hdr[8:]) != "got berth\n" {
		t.Fatalf("stdout %q %v", hdr, err)
	}
	if out, err := exec.Command(cfg.Runtime, append(cfg.RuntimeArgs, "kill", cfg.ID, "KILL")...).CombinedOutput(); err != nil {
		t.Fatalf("kill: %v %s", err, out)
	}
	r := <-waitCh
	if r.Exit.ExitCode != 137 {
		t.Fatalf("exit %+v, want 137", r)
	}
}

func TestMonitorTTY(t *testing.T) {
	cfg, cleanup := bundle(t, true, "sh", "-c", "stty size; tty")
	defer cleanup()
	proc, _ := spawn(t, cfg)
	defer proc.Wait()
	conn, err := Attach(cfg.Socket, false, true, true)
	if err != nil {
		t.Fatal(err)
	}
	waitCh, _ := Wait(cfg.Socket)
	if err := Start(cfg.Socket); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	stdcopy.StdCopy(&out, &out, conn)
	if !strings.Contains(out.String(), "24 80\r\n") || !strings.Contains(out.String(), "/dev/pts/0") {
		t.Fatalf("tty output %q", out.String())
	}
	if r := <-waitCh; r.Exit.ExitCode != 0 {
		t.Fatalf("exit %+v", r)
	}
}

func TestMonitorCreateFailureIsReported(t *testing.T) {
	cfg, cleanup := bundle(t, false, "/no/such/binary")
	defer cleanup()
	os.Remove(filepath.Join(cfg.Bundle, "config.json"))
	os.Setenv("BERTH_TEST_MONITOR", "1")
	defer os.Unsetenv("BERTH_TEST_MONITOR")
	exe, _ := os.Executable()
	_, _, err := spawnEnv([]string{exe}, filepath.Join(cfg.Bundle, "monitor.json"), cfg)
	if err == nil {
		t.Fatal("create without config.json succeeded")
	}
}
