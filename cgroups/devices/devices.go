// Package devices turns OCI device cgroup rules into what the kernel
// enforces: writes to a cgroup v1 devices controller, or a
// BPF_PROG_TYPE_CGROUP_DEVICE program attached to a cgroup v2 directory.
// Both follow the v1 controller's semantics, which this package emulates in
// pure Go (State, Permits) so the two paths agree and are unit tested.
// It writes only the devices.* files of the directory it is given and
// attaches only to the cgroup it is given.
package devices

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Type of device a rule covers.
type Type byte

const (
	All   Type = 'a'
	Block Type = 'b'
	Char  Type = 'c'
)

// Access bits, with the kernel's values (DEVCG_ACC_* and BPF_DEVCG_ACC_*).
type Access uint32

const (
	Mknod Access = 1
	Read  Access = 2
	Write Access = 4
	RWM          = Mknod | Read | Write
)

func (a Access) String() string {
	var b strings.Builder
	if a&Read != 0 {
		b.WriteByte('r')
	}
	if a&Write != 0 {
		b.WriteByte('w')
	}
	if a&Mknod != 0 {
		b.WriteByte('m')
	}
	return b.String()
}

// Wildcard is a major or minor that matches every number.
const Wildcard int64 = -1

// Rule is one device cgroup rule.
type Rule struct {
	Type         Type
	Major, Minor int64 // Wildcard for "*"
	Access       Access
	Allow        bool
}

// String renders the rule the way devices.allow takes it ("c 1:3 rwm").
func (r Rule) String() string {
	num := func(n int64) string {
		if n == Wildcard {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%c %s:%s %s", r.Type, num(r.Major), num(r.Minor), r.Access)
}

// isReset reports whether the rule covers every device with every access:
// the kernel treats it as "reset to default allow/deny".
func (r Rule) isReset() bool {
	return r.Type == All && r.Major == Wildcard && r.Minor == Wildcard && r.Access == RWM
}

// FromSpec converts OCI rules. An empty type is "a" and empty access is
// "rwm", as the runtime-spec says; a nil major/minor is a wildcard.
func FromSpec(in []specs.LinuxDeviceCgroup) ([]Rule, error) {
	out := make([]Rule, 0, len(in))
	for i, d := range in {
		r := Rule{Type: All, Major: Wildcard, Minor: Wildcard, Access: RWM, Allow: d.Allow}
		switch d.Type {
		case "", "a":
		case "b":
			r.Type = Block
		case "c":
			r.Type = Char
		default:
			return nil, fmt.Errorf("device rule %d: type %q: want a, b or c", i, d.Type)
		}
		if d.Major != nil {
			r.Major = *d.Major
		}
		if d.Minor != nil {
			r.Minor = *d.Minor
		}
		if r.Major < Wildcard || r.Minor < Wildcard {
			return nil, fmt.Errorf("device rule %d: negative device number", i)
		}
		if d.Access != "" {
			r.Access = 0
			for _, c := range d.Access {
				switch c {
				case 'r':
					r.Access |= Read
				case 'w':
					r.Access |= Write
				case 'm':
					r.Access |= Mknod
				default:
					return nil, fmt.Errorf("device rule %d: access %q: want a combination of r, w and m", i, d.Access)
				}
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// DefaultAllowed are the devices every container may use on top of its
// configuration: runc appends exactly these to every container's rules, so
// Docker's effective policy is "deny all" (from its default spec) plus
// this list. mknod of any device is allowed; opening is not.
var DefaultAllowed = []Rule{
	{Char, Wildcard, Wildcard, Mknod, true},
	{Block, Wildcard, Wildcard, Mknod, true},
	{Char, 1, 3, RWM, true},          // /dev/null
	{Char, 1, 8, RWM, true},          // /dev/random
	{Char, 1, 7, RWM, true},          // /dev/full
	{Char, 5, 0, RWM, true},          // /dev/tty
	{Char, 1, 5, RWM, true},          // /dev/zero
	{Char, 1, 9, RWM, true},          // /dev/urandom
	{Char, 136, Wildcard, RWM, true}, // /dev/pts/*
	{Char, 5, 2, RWM, true},          // /dev/ptmx
	{Char, 10, 200, RWM, true},       // /dev/net/tun
}

// DockerDefault is Docker's device policy for a container without
// --device or --privileged: deny everything, then DefaultAllowed.
func DockerDefault() []Rule {
	return append([]Rule{{All, Wildcard, Wildcard, RWM, false}}, DefaultAllowed...)
}

// Effective is what a container gets: its own rules, then DefaultAllowed
// (as runc does), or nothing at all when the configuration has no device
// rules (every device stays allowed, as with runc).
func Effective(rules []Rule) []Rule {
	if len(rules) == 0 {
		return nil
	}
	return append(append([]Rule(nil), rules...), DefaultAllowed...)
}

// State is a v1 devices controller's state: a default behaviour and the
// exceptions to it (allow entries under default deny, deny entries under
// default allow). Exceptions are always of type b or c.
type State struct {
	DefaultAllow bool
	Exceptions   []Rule
}

// Emulate applies rules, in order, to a fresh cgroup (default allow) the
// way the kernel's v1 devices controller does.
func Emulate(rules []Rule) State {
	s := State{DefaultAllow: true}
	for _, r := range rules {
		if r.isReset() {
			s = State{DefaultAllow: r.Allow}
			continue
		}
		for _, one := range expand(r) {
			if one.Allow == s.DefaultAllow {
				s.remove(one)
			} else {
				s.add(one)
			}
		}
	}
	return s
}

// expand splits a type-"a" rule that is not a reset into its b and c
// halves: v1 exceptions have one type.
func expand(r Rule) []Rule {
	if r.Type != All {
		return []Rule{r}
	}
	b, c := r, r
	b.Type, c.Type = Block, Char
	return []Rule{c, b}
}

func (s *State) add(r Rule) {
	for i, e := range s.Exceptions {
		if e.Type == r.Type && e.Major == r.Major && e.Minor == r.Minor {
			s.Exceptions[i].Access |= r.Access
			return
		}
	}
	r.Allow = !s.DefaultAllow
	s.Exceptions = append(s.Exceptions, r)
}

func (s *State) remove(r Rule) {
	out := s.Exceptions[:0]
	for _, e := range s.Exceptions {
		if e.Type == r.Type && e.Major == r.Major && e.Minor == r.Minor {
			e.Access &^= r.Access
			if e.Access == 0 {
				continue
			}
		}
		out = append(out, e)
	}
	s.Exceptions = out
}

func (e Rule) matches(t Type, major, minor uint32) bool {
	return e.Type == t && (e.Major == Wildcard || e.Major == int64(major)) && (e.Minor == Wildcard || e.Minor == int64(minor))
}

// Permits says whether the state lets a process use device t major:minor
// with access acc: under default deny one allow exception must cover all of
// acc; under default allow no deny exception may overlap it.
func (s State) Permits(t Type, major, minor uint32, acc Access) bool {
	for _, e := range s.Exceptions {
		if !e.matches(t, major, minor) {
			continue
		}
		if s.DefaultAllow {
			if acc&e.Access != 0 {
				return false
			}
		} else if acc&^e.Access == 0 {
			return true
		}
	}
	return s.DefaultAllow
}
