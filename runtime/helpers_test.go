package runtime_test

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// env is one test's runtime: its own state root and bundles.
type env struct {
	t    *testing.T
	bin  string
	root string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequiresRoot(t)
	e := &env{t: t, bin: testutil.RuntimeBinary(t), root: t.TempDir()}
	t.Cleanup(func() {
		// Remove whatever the test left, by ID, from this test's root only.
		entries, _ := os.ReadDir(e.root)
		for _, en := range entries {
			if en.IsDir() {
				exec.Command(e.bin, "--root", e.root, "delete", "--force", en.Name()).Run()
			}
		}
	})
	return e
}

func newID(prefix string) string {
	return fmt.Sprintf("%s-%d-%04x", prefix, os.Getpid(), rand.Intn(1<<16))
}

// bundle writes a busybox bundle whose process runs args; mutate edits
// the default spec (runc spec's, without a terminal).
func (e *env) bundle(args []string, mutate func(*specs.Spec)) string {
	e.t.Helper()
	dir := e.t.TempDir()
	// t.TempDir makes 0700 directories; a container whose root is mapped
	// to an unprivileged host ID must be able to reach its rootfs.
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	rootfs := testutil.BusyboxRootfs(e.t)
	if err := os.Rename(rootfs, filepath.Join(dir, "rootfs")); err != nil {
		e.t.Fatal(err)
	}
	spec := runtime.DefaultSpec(false, 0, 0)
	spec.Process.Terminal = false
	spec.Process.Args = args
	spec.Root.Readonly = false
	if mutate != nil {
		mutate(spec)
	}
	b, err := json.MarshalIndent(spec, "", " ")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

type result struct {
	stdout, stderr string
	code           int
}

// rt runs berth-runtime with this env's root.
func (e *env) rt(args ...string) result {
	e.t.Helper()
	return e.rtIn("", args...)
}

func (e *env) rtIn(dir string, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(e.bin, append([]string{"--root", e.root}, args...)...)
	cmd.Dir = dir
	// Files, not pipes: a detached container keeps its stdio open, and
	// a pipe would make Wait wait for the container.
	out, err := os.CreateTemp(e.t.TempDir(), "stdout")
	if err != nil {
		e.t.Fatal(err)
	}
	errb, err := os.CreateTemp(e.t.TempDir(), "stderr")
	if err != nil {
		e.t.Fatal(err)
	}
	defer out.Close()
	defer errb.Close()
	cmd.Stdout, cmd.Stderr = out, errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		e.t.Fatalf("berth-runtime %s: timed out", strings.Join(args, " "))
	}
	o, _ := os.ReadFile(out.Name())
	eb, _ := os.ReadFile(errb.Name())
	return result{string(o), string(eb), cmd.ProcessState.ExitCode()}
}

// run runs a container to completion and returns its output.
func (e *env) run(args []string, mutate func(*specs.Spec)) result {
	e.t.Helper()
	b := e.bundle(args, mutate)
	return e.rt("run", "--bundle", b, newID("run"))
}

func (e *env) mustRun(args []string, mutate func(*specs.Spec)) string {
	e.t.Helper()
	r := e.run(args, mutate)
	if r.code != 0 {
		e.t.Fatalf("run %q: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func (e *env) state(id string) map[string]any {
	e.t.Helper()
	r := e.rt("state", id)
	if r.code != 0 {
		e.t.Fatalf("state %s: exit %d: %s", id, r.code, r.stderr)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		e.t.Fatalf("state output is not JSON: %v\n%s", err, r.stdout)
	}
	return st
}

func userns(s *specs.Spec) {
	s.Linux.Namespaces = append([]specs.LinuxNamespace{{Type: specs.UserNamespace}}, s.Linux.Namespaces...)
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
}

func dockerCaps(s *specs.Spec) {
	c := runtime.DockerDefaultCaps()
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
