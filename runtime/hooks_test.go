package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// All six kinds of hooks run once each, in the lifecycle's order, with
// the container's state on stdin: prestart, createRuntime, createContainer
// during create; startContainer and poststart during start; poststop
// during delete. createContainer runs in the container's namespaces
// before pivot_root, startContainer inside the container (its /bin/sh).
func TestHooksAllKindsWithStateOnStdin(t *testing.T) {
	e := newEnv(t)
	var log, bundle string
	b := e.bundle([]string{"true"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.example/hooks": "yes"}
	})
	bundle = b
	log = filepath.Join(bundle, "rootfs", "hooks.log")
	hook := func(kind, sh, logPath string) specs.Hook {
		return specs.Hook{Path: sh, Args: []string{"sh", "-c", `echo "` + kind + ` $(cat)" >> ` + logPath}}
	}
	host := func(kind string) specs.Hook { return hook(kind, "/bin/sh", log) }
	spec := loadBundleSpec(t, bundle)
	spec.Hooks = &specs.Hooks{
		Prestart:        []specs.Hook{host("prestart")},
		CreateRuntime:   []specs.Hook{host("createRuntime")},
		CreateContainer: []specs.Hook{host("createContainer")},
		StartContainer:  []specs.Hook{hook("startContainer", "/bin/sh", "/hooks.log")},
		Poststart:       []specs.Hook{host("poststart")},
		Poststop:        []specs.Hook{host("poststop")},
	}
	saveBundleSpec(t, bundle, spec)
	id := newID("hooks")
	if r := e.rt("create", "--bundle", bundle, id); r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	pid := int(e.state(id)["pid"].(float64))
	if r := e.rt("start", id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	waitFor(t, "the container to stop", func() bool { return e.state(id)["status"] == "stopped" })
	if r := e.rt("delete", id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
	b2, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b2)), "\n")
	want := []struct{ kind, status string }{
		{"prestart", "created"}, {"createRuntime", "creating"}, {"createContainer", "creating"},
		{"startContainer", "created"}, {"poststart", "running"}, {"poststop", "stopped"},
	}
	if len(lines) != len(want) {
		t.Fatalf("hooks ran %d times, want %d:\n%s", len(lines), len(want), b2)
	}
	for i, w := range want {
		kind, js, _ := strings.Cut(lines[i], " ")
		if kind != w.kind {
			t.Errorf("hook #%d is %s, want %s", i, kind, w.kind)
			continue
		}
		var st specs.State
		if err := json.Unmarshal([]byte(js), &st); err != nil {
			t.Errorf("%s: stdin is not the state JSON: %q", kind, js)
			continue
		}
		if st.ID != id || st.Bundle != bundle || st.Status != specs.ContainerState(w.status) || st.Annotations["org.example/hooks"] != "yes" {
			t.Errorf("%s: state %+v, want id %s, bundle %s, status %s, the annotation", kind, st, id, bundle, w.status)
		}
		if kind != "poststop" && st.Pid != pid {
			t.Errorf("%s: pid %d, want the init's %d", kind, st.Pid, pid)
		}
	}
}

// A hook that outlives its timeout fails create, quickly, and leaves
// nothing; a failing createRuntime hook fails create; a failing poststop
// hook is only a warning.
func TestHookTimeoutsAndFailures(t *testing.T) {
	e := newEnv(t)
	one := 1
	cases := map[string]struct {
		hooks *specs.Hooks
		want  string
	}{
		"timeout": {&specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "30"}, Timeout: &one}}}, "timed out after 1s"},
		"failure": {&specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo no way >&2; exit 3"}}}}, "no way"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := e.bundle([]string{"true"}, func(s *specs.Spec) { s.Hooks = c.hooks })
			id := newID("hookfail")
			start := time.Now()
			r := e.rt("create", "--bundle", b, id)
			if r.code == 0 || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("create: exit %d, %q; want failure mentioning %q", r.code, r.stderr, c.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("create took %v", d)
			}
			if _, err := os.Stat(filepath.Join(e.root, id)); !os.IsNotExist(err) {
				t.Errorf("state left behind")
			}
		})
	}
	b := e.bundle([]string{"true"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/false"}, {Path: "/bin/sh", Args: []string{"sh", "-c", "touch " + filepath.Join(e.root, "second-ran")}}}}
	})
	r := e.rt("run", "--bundle", b, newID("poststop"))
	if r.code != 0 || !strings.Contains(r.stderr, "warning") {
		t.Errorf("run with a failing poststop hook: exit %d, %q; want success with a warning", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(e.root, "second-ran")); err != nil {
		t.Errorf("the poststop hook after the failing one did not run")
	}
}

func loadBundleSpec(t *testing.T, bundle string) *specs.Spec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func saveBundleSpec(t *testing.T, bundle string, s *specs.Spec) {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
