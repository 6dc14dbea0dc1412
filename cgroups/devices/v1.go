package devices

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/cgroups/internal/cgfs"
)

// Line is one write to a v1 devices file.
type Line struct {
	File  string // devices.allow or devices.deny
	Value string
}

// V1Lines renders rules as writes to devices.allow/devices.deny: a reset
// rule becomes "a", a type-"a" exception its c and b halves.
func V1Lines(rules []Rule) []Line {
	var out []Line
	for _, r := range rules {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		if r.isReset() {
			out = append(out, Line{file, "a"})
			continue
		}
		for _, one := range expand(r) {
			out = append(out, Line{file, one.String()})
		}
	}
	return out
}

// SetV1 applies rules to the v1 devices cgroup dir. When both the current
// policy (read back from devices.list) and the new one deny by default, it
// writes only the difference, so a running container never loses access to
// a device both policies allow (an update does not blink). Otherwise it
// resets the cgroup to the policy's default first.
func SetV1(dir string, rules []Rule) error {
	target := Emulate(rules)
	var lines []Line
	if list, err := cgfs.Read(dir, "devices.list"); err == nil {
		if cur, ok := ParseV1List(list); ok && !cur.DefaultAllow && !target.DefaultAllow {
			lines = Transition(cur, target)
		}
	}
	if lines == nil {
		lines = V1Lines(rules)
		if len(rules) > 0 && !rules[0].isReset() {
			// Start from "allow all" like a fresh cgroup: the rules are then
			// read as exceptions to it, as Emulate does.
			lines = append([]Line{{"devices.allow", "a"}}, lines...)
		}
	}
	for _, l := range lines {
		if err := cgfs.Write(dir, l.File, l.Value); err != nil {
			return fmt.Errorf("device rule: %w", err)
		}
	}
	return nil
}

// ParseV1List reads devices.list. The kernel prints "a *:* rwm" alone for
// default allow (hiding any deny exceptions, so ok is false when it cannot
// tell) and the allow exceptions one per line for default deny.
func ParseV1List(s string) (State, bool) {
	lines := strings.Fields(s)
	if len(lines) == 0 {
		return State{DefaultAllow: false}, true
	}
	if len(lines)%3 != 0 {
		return State{}, false
	}
	st := State{}
	for i := 0; i < len(lines); i += 3 {
		t, num, acc := lines[i], lines[i+1], lines[i+2]
		if t == "a" {
			return State{DefaultAllow: true}, false
		}
		if t != "b" && t != "c" {
			return State{}, false
		}
		maj, min, ok := strings.Cut(num, ":")
		if !ok {
			return State{}, false
		}
		r := Rule{Type: Type(t[0]), Allow: true}
		var err error
		if r.Major, err = parseNum(maj); err != nil {
			return State{}, false
		}
		if r.Minor, err = parseNum(min); err != nil {
			return State{}, false
		}
		for _, c := range acc {
			switch c {
			case 'r':
				r.Access |= Read
			case 'w':
				r.Access |= Write
			case 'm':
				r.Access |= Mknod
			default:
				return State{}, false
			}
		}
		st.add(r)
	}
	return st, true
}

func parseNum(s string) (int64, error) {
	if s == "*" {
		return Wildcard, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

// Transition lists the writes that turn one default-deny state into
// another: denies of access the target drops first (never more than either
// policy allows meanwhile), then allows of what it adds.
func Transition(cur, target State) []Line {
	key := func(r Rule) Rule { r.Access, r.Allow = 0, false; return r }
	access := func(s State) map[Rule]Access {
		m := map[Rule]Access{}
		for _, e := range s.Exceptions {
			m[key(e)] |= e.Access
		}
		return m
	}
	c, t := access(cur), access(target)
	lines := []Line{}
	for _, e := range cur.Exceptions {
		if extra := c[key(e)] &^ t[key(e)]; extra != 0 {
			r := key(e)
			r.Access = extra
			lines = append(lines, Line{"devices.deny", r.String()})
			c[key(e)] &^= extra
		}
	}
	for _, e := range target.Exceptions {
		if missing := t[key(e)] &^ c[key(e)]; missing != 0 {
			r := key(e)
			r.Access = missing
			lines = append(lines, Line{"devices.allow", r.String()})
			c[key(e)] |= missing
		}
	}
	return lines
}
