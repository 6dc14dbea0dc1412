// Package caps owns Linux capabilities as data: the names the kernel knows,
// their numbers, sets of them as bitmaps, Docker's default set, and applying
// the five sets (bounding, permitted, effective, inheritable, ambient) to the
// calling thread. It knows nothing about containers or processes other than
// the caller; reading another process's sets belongs to package proc.
package caps

import (
	"fmt"
	"math/bits"
	"os"
	"sort"
	"strconv"
	"strings"
)

// names lists capabilities by number, as in <linux/capability.h>.
var names = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// MaxKnown is the highest capability number this package has a name for.
const MaxKnown = len(names) - 1

// DockerDefault is the set Docker grants a container that asks for nothing:
// 0x00000000a80425fb, the value the talk reads from /proc/PID/status.
var DockerDefault = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Name returns the canonical name ("CAP_CHOWN") of capability n, or
// "cap_N" for a number newer than this package knows.
func Name(n int) string {
	if n >= 0 && n < len(names) {
		return names[n]
	}
	return "cap_" + strconv.Itoa(n)
}

// Number parses a capability name. It accepts the forms users and tools
// write: "CAP_CHOWN", "cap_chown", "CHOWN", "chown".
func Number(name string) (int, error) {
	canon := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(canon, "CAP_") {
		canon = "CAP_" + canon
	}
	for i, n := range names {
		if n == canon {
			return i, nil
		}
	}
	return -1, fmt.Errorf("unknown capability %q", name)
}

// Set is a capability bitmap, bit N for capability N, as the kernel prints
// it in /proc/PID/status.
type Set uint64

// All is every capability up to and including last.
func All(last int) Set {
	if last >= 63 {
		return ^Set(0)
	}
	return Set(1)<<uint(last+1) - 1
}

// FromNames builds a set from capability names.
func FromNames(list []string) (Set, error) {
	var s Set
	for _, n := range list {
		c, err := Number(n)
		if err != nil {
			return 0, err
		}
		s |= 1 << uint(c)
	}
	return s, nil
}

// ParseHex parses a bitmap as /proc/PID/status prints it ("00000000a80425fb").
func ParseHex(s string) (Set, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("capability bitmap %q: %w", s, err)
	}
	return Set(v), nil
}

// Has reports whether capability n is in the set.
func (s Set) Has(n int) bool { return n >= 0 && n < 64 && s&(1<<uint(n)) != 0 }

// Len is the number of capabilities in the set.
func (s Set) Len() int { return bits.OnesCount64(uint64(s)) }

// Names lists the set's capabilities in number order.
func (s Set) Names() []string {
	var out []string
	for n := 0; n < 64; n++ {
		if s.Has(n) {
			out = append(out, Name(n))
		}
	}
	return out
}

// Hex formats the set as /proc/PID/status does.
func (s Set) Hex() string { return fmt.Sprintf("%016x", uint64(s)) }

// Canonicalize turns a list of user-given names into canonical names,
// sorted by number and without duplicates.
func Canonicalize(list []string) ([]string, error) {
	s, err := FromNames(list)
	if err != nil {
		return nil, err
	}
	return s.Names(), nil
}

// LastCap is the highest capability the running kernel knows, from
// /proc/sys/kernel/cap_last_cap; it falls back to MaxKnown when /proc is
// not readable.
func LastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return MaxKnown
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > 63 {
		return MaxKnown
	}
	return n
}

// Sorted returns names sorted by capability number; unknown names sort last
// in lexical order. It is for stable output, not validation.
func Sorted(list []string) []string {
	out := append([]string(nil), list...)
	sort.SliceStable(out, func(i, j int) bool {
		a, errA := Number(out[i])
		b, errB := Number(out[j])
		switch {
		case errA == nil && errB == nil:
			return a < b
		case errA == nil:
			return true
		case errB == nil:
			return false
		}
		return out[i] < out[j]
	})
	return out
}
