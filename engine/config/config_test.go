package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRejectsUnknownKeys(t *testing.T) {
	var c Config
	err := Parse([]byte(`{"users-remap": "mtk"}`), &c)
	if err == nil || !strings.Contains(err.Error(), "users-remap") || !strings.Contains(err.Error(), `"userns-remap"`) {
		t.Fatalf("want unknown-key error with a hint, got %v", err)
	}
}

func TestParseKnownKeys(t *testing.T) {
	var c Config
	err := Parse([]byte(`{"userns-remap":"mtk","data-root":"/d","live-restore":true,
		"default-ulimits":{"nofile":{"Name":"nofile","Soft":1024,"Hard":2048}},"log-level":"debug","cgroup-parent":"/ci/berth"}`), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.UsernsRemap != "mtk" || c.DataRoot != "/d" || !c.LiveRestore || c.DefaultUlimits["nofile"].Hard != 2048 || c.CgroupParent != "/ci/berth" {
		t.Fatalf("parsed %+v", c)
	}
	for _, bad := range []string{`{"log-level":"loud"}`, `{"live-restore":"yes"}`, `[1]`, `{"hosts":["tcp://0.0.0.0:1"]}`,
		`{"default-ulimits":{"nofile":{"Name":"nproc","Soft":1,"Hard":1}}}`, `{"userns-remap":":g"}`,
		`{"cgroup-parent":"../../escape"}`, `{"cgroup-parent":"/a/../.."}`, `{"cgroup-parent":"system.slice"}`} {
		if err := Parse([]byte(bad), &Config{}); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(filepath.Join(t.TempDir(), "none.json"), false)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataRoot != DefaultDataRoot || c.SocketPath() != DefaultSocket || c.Group != "docker" {
		t.Fatalf("defaults: %+v", c)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.json"), true); err == nil {
		t.Fatal("explicit missing file accepted")
	}
}

func TestResolveRemapFromSubIDFiles(t *testing.T) {
	d := t.TempDir()
	f := Files{filepath.Join(d, "subuid"), filepath.Join(d, "subgid")}
	os.WriteFile(f.SubUID, []byte("other:200000:65536\nmtk:100000:65536\nmtk:300000:10\n"), 0o644)
	os.WriteFile(f.SubGID, []byte("mtk:100000:65536\n"), 0o644)
	r, err := ResolveRemap("mtk", f)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.UIDs) != 2 || r.UIDs[0].HostID != 100000 || r.UIDs[0].Size != 65536 || r.UIDs[1].ContainerID != 65536 || r.UIDs[1].HostID != 300000 {
		t.Fatalf("uids %+v", r.UIDs)
	}
	if u, g := r.RootPair(); u != 100000 || g != 100000 {
		t.Fatalf("root pair %d %d", u, g)
	}
	if _, err := ResolveRemap("nobody-here", f); err == nil || !strings.Contains(err.Error(), "nobody-here:100000:65536") {
		t.Fatalf("missing range: %v", err)
	}
	os.WriteFile(f.SubGID, []byte("mtk:x:1\n"), 0o644)
	if _, err := ResolveRemap("mtk", f); err == nil {
		t.Fatal("bad subgid accepted")
	}
}

func TestEnsureRangeAppendsAfterExisting(t *testing.T) {
	p := filepath.Join(t.TempDir(), "subuid")
	os.WriteFile(p, []byte("mtk:100000:65536"), 0o644)
	if err := ensureRange(p, "berth-remap"); err != nil {
		t.Fatal(err)
	}
	if err := ensureRange(p, "berth-remap"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	if string(data) != "mtk:100000:65536\nberth-remap:165536:65536\n" {
		t.Fatalf("got %q", data)
	}
}
