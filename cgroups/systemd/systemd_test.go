package systemd

import (
	"errors"
	"testing"
)

func TestParsePath(t *testing.T) {
	for _, c := range []struct {
		in, id string
		want   Unit
		scope  string
		err    bool
	}{
		{"", "abc", Unit{"system.slice", "berth", "abc"}, "berth-abc.scope", false},
		{"system.slice:docker:abc", "x", Unit{"system.slice", "docker", "abc"}, "docker-abc.scope", false},
		{":docker:abc", "x", Unit{"system.slice", "docker", "abc"}, "docker-abc.scope", false},
		{"machine.slice:libpod:abc", "x", Unit{"machine.slice", "libpod", "abc"}, "libpod-abc.scope", false},
		{"user.slice:p:sub.slice", "x", Unit{"user.slice", "p", "sub.slice"}, "sub.slice", false},
		{"/docker/abc", "x", Unit{}, "", true},
		{"a:b", "x", Unit{}, "", true},
		{"nota:b:c", "x", Unit{}, "", true},
		{"x.slice:b:", "x", Unit{}, "", true},
		{"x.slice:b:../../c", "x", Unit{}, "", true},
	} {
		u, err := ParsePath(c.in, c.id)
		if (err != nil) != c.err {
			t.Errorf("ParsePath(%q) err = %v, want error %v", c.in, err, c.err)
			continue
		}
		if err == nil && (u != c.want || u.ScopeName() != c.scope) {
			t.Errorf("ParsePath(%q) = %+v (%s), want %+v (%s)", c.in, u, u.ScopeName(), c.want, c.scope)
		}
	}
}

func TestSlicePath(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"system.slice", "/system.slice"},
		{"-.slice", "/"},
		{"machine-berth.slice", "/machine.slice/machine-berth.slice"},
		{"a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"},
		{"nope", ""}, {"-a.slice", ""}, {"a--b.slice", ""}, {"a/b.slice", ""}, {".slice", ""},
	} {
		got, err := SlicePath(c.in)
		if (err != nil) != (c.want == "") || got != c.want {
			t.Errorf("SlicePath(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	u := Unit{"system.slice", "berth", "abc"}
	if p, err := u.CgroupPath(); err != nil || p != "/system.slice/berth-abc.scope" {
		t.Errorf("CgroupPath = %q, %v", p, err)
	}
}

// On hosts without systemd (these build machines) the driver says so
// plainly, never crashes.
func TestCheck(t *testing.T) {
	err := Check()
	if Running() {
		if err != nil {
			t.Fatalf("Check with systemd: %v", err)
		}
		return
	}
	if !errors.Is(err, ErrNoSystemd) {
		t.Fatalf("Check without systemd: %v", err)
	}
}
