package devices

import (
	"fmt"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64 { return &v }

func TestFromSpecDefaults(t *testing.T) {
	rules, err := FromSpec([]specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rw"}})
	if err != nil {
		t.Fatal(err)
	}
	if !rules[0].isReset() || rules[0].Allow {
		t.Errorf("deny-all rule: %+v", rules[0])
	}
	if got := rules[1].String(); got != "c 1:3 rw" {
		t.Errorf("rule = %q", got)
	}
	for _, bad := range []specs.LinuxDeviceCgroup{{Type: "x"}, {Access: "rwx"}, {Major: i64(-2)}} {
		if _, err := FromSpec([]specs.LinuxDeviceCgroup{bad}); err == nil {
			t.Errorf("FromSpec(%+v) accepted", bad)
		}
	}
}

func TestEmulateDockerDefault(t *testing.T) {
	s := Emulate(DockerDefault())
	if s.DefaultAllow {
		t.Fatal("Docker's default must deny by default")
	}
	for _, c := range []struct {
		t      Type
		ma, mi uint32
		acc    Access
		want   bool
	}{
		{Char, 1, 3, Read | Write, true},     // /dev/null
		{Char, 1, 1, Read, false},            // /dev/mem
		{Char, 1, 1, Mknod, true},            // mknod of anything
		{Block, 8, 0, Mknod, true},           // mknod of a disk
		{Block, 8, 0, Read, false},           // but not opening it
		{Char, 136, 7, Read | Write, true},   // a pty
		{Char, 10, 200, Read | Write, true},  // tun
		{Char, 10, 229, Read | Write, false}, // fuse
		{Char, 1, 1, Mknod | Read, false},    // needs both
	} {
		if got := s.Permits(c.t, c.ma, c.mi, c.acc); got != c.want {
			t.Errorf("Permits(%c %d:%d %s) = %v, want %v", c.t, c.ma, c.mi, c.acc, got, c.want)
		}
	}
}

func TestEmulateV1Semantics(t *testing.T) {
	// Default allow with a deny exception, then an allow that removes part
	// of it again: the kernel removes access bits from the exception.
	s := Emulate([]Rule{
		{Char, 1, 1, RWM, false},
		{Char, 1, 1, Read, true},
	})
	if !s.DefaultAllow || len(s.Exceptions) != 1 || s.Exceptions[0].Access != Write|Mknod {
		t.Fatalf("state %+v", s)
	}
	if !s.Permits(Char, 1, 1, Read) || s.Permits(Char, 1, 1, Read|Write) {
		t.Error("partial deny exception")
	}
	// A type-a rule that is not a reset becomes c and b exceptions.
	s = Emulate([]Rule{{All, Wildcard, Wildcard, RWM, false}, {All, Wildcard, Wildcard, Mknod, true}})
	if len(s.Exceptions) != 2 || !s.Permits(Block, 3, 4, Mknod) || !s.Permits(Char, 3, 4, Mknod) || s.Permits(Char, 3, 4, Read) {
		t.Errorf("a *:* m: %+v", s)
	}
	// Merging: two allows for the same device add up.
	s = Emulate([]Rule{{All, Wildcard, Wildcard, RWM, false}, {Char, 1, 5, Read, true}, {Char, 1, 5, Write, true}})
	if len(s.Exceptions) != 1 || !s.Permits(Char, 1, 5, Read|Write) {
		t.Errorf("merge: %+v", s)
	}
	// A later reset wipes everything before it.
	s = Emulate([]Rule{{Char, 1, 1, RWM, false}, {All, Wildcard, Wildcard, RWM, true}})
	if !s.DefaultAllow || len(s.Exceptions) != 0 {
		t.Errorf("reset: %+v", s)
	}
	// Deny of a device under default deny removes its allow.
	s = Emulate(append(DockerDefault(), Rule{Char, 1, 3, RWM, false}))
	if s.Permits(Char, 1, 3, Read) {
		t.Error("denied /dev/null still allowed")
	}
}

func TestV1Lines(t *testing.T) {
	lines := V1Lines([]Rule{{All, Wildcard, Wildcard, RWM, false}, {All, Wildcard, Wildcard, Mknod, true}, {Char, 1, 3, RWM, true}})
	want := []Line{{"devices.deny", "a"}, {"devices.allow", "c *:* m"}, {"devices.allow", "b *:* m"}, {"devices.allow", "c 1:3 rwm"}}
	if len(lines) != len(want) {
		t.Fatalf("lines %v", lines)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d = %v, want %v", i, lines[i], want[i])
		}
	}
}

func TestEffective(t *testing.T) {
	if Effective(nil) != nil {
		t.Error("no rules must stay no rules (allow all)")
	}
	e := Effective([]Rule{{All, Wildcard, Wildcard, RWM, false}})
	if len(e) != 1+len(DefaultAllowed) {
		t.Errorf("Effective: %v", e)
	}
}

func TestParseV1List(t *testing.T) {
	s, ok := ParseV1List("c 1:3 rwm\nc *:* m\nb *:* m\nc 136:* rwm\n")
	if !ok || s.DefaultAllow || len(s.Exceptions) != 4 || !s.Permits(Char, 136, 2, Read) || s.Permits(Char, 1, 5, Read) {
		t.Fatalf("ParseV1List: %+v %v", s, ok)
	}
	if s, ok := ParseV1List(""); !ok || s.DefaultAllow {
		t.Error("empty list is deny all")
	}
	if _, ok := ParseV1List("a *:* rwm\n"); ok {
		t.Error("default allow hides its exceptions: must not be trusted")
	}
	for _, bad := range []string{"c 1:3", "x 1:3 rwm", "c 1-3 rwm", "c 1:3 rwx"} {
		if _, ok := ParseV1List(bad); ok {
			t.Errorf("ParseV1List(%q) accepted", bad)
		}
	}
}

// Transition reaches the target from any default-deny state: applying its
// lines to the current state with the kernel's rules (Emulate) gives a
// state that permits exactly what the target permits.
func TestTransition(t *testing.T) {
	states := [][]Rule{
		DockerDefault(),
		{{All, Wildcard, Wildcard, RWM, false}},
		{{All, Wildcard, Wildcard, RWM, false}, {Char, 1, 3, Read, true}, {Char, 1, 11, RWM, true}},
		append(DockerDefault(), Rule{Char, 1, 11, Read, true}, Rule{Char, 1, 3, Write, false}),
	}
	for i, from := range states {
		for j, to := range states {
			cur, target := Emulate(from), Emulate(to)
			var replay []Rule
			replay = append(replay, from...)
			for _, l := range Transition(cur, target) {
				r, err := parseLine(l)
				if err != nil {
					t.Fatal(err)
				}
				replay = append(replay, r)
			}
			got := Emulate(replay)
			for _, p := range []struct {
				t  Type
				ma uint32
				mi uint32
			}{{Char, 1, 3}, {Char, 1, 11}, {Char, 1, 5}, {Block, 8, 0}, {Char, 136, 4}, {Char, 10, 200}} {
				for _, a := range []Access{Read, Write, Mknod, Read | Write} {
					if got.Permits(p.t, p.ma, p.mi, a) != target.Permits(p.t, p.ma, p.mi, a) {
						t.Errorf("%d→%d: %c %d:%d %s differs", i, j, p.t, p.ma, p.mi, a)
					}
				}
			}
			if i == j && len(Transition(cur, target)) != 0 {
				t.Errorf("%d→%d: no-op transition writes %v", i, j, Transition(cur, target))
			}
		}
	}
}

func parseLine(l Line) (Rule, error) {
	s, ok := ParseV1List(l.Value)
	if !ok || len(s.Exceptions) != 1 {
		return Rule{}, fmt.Errorf("line %q", l.Value)
	}
	r := s.Exceptions[0]
	r.Allow = l.File == "devices.allow"
	return r, nil
}
