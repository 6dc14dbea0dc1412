package caps

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Sets are the five capability sets of a thread.
type Sets struct {
	Bounding, Permitted, Effective, Inheritable, Ambient Set
}

// DropBounding removes from the calling thread's bounding set every
// capability up to last that keep does not hold. It needs CAP_SETPCAP in
// the effective set, so it comes before any change of user.
func DropBounding(keep Set, last int) error {
	for c := 0; c <= last; c++ {
		if keep.Has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if err == unix.EINVAL {
				continue // the kernel does not know this capability
			}
			return fmt.Errorf("drop %s from the bounding set: %w", Name(c), err)
		}
	}
	return nil
}

// Apply gives the calling thread exactly the permitted, effective,
// inheritable and ambient sets of s (the bounding set is DropBounding's).
// The caller must have locked its OS thread and must execve from that
// same thread: capability sets are per thread, and only the execve'ing
// thread's sets survive. Each ambient capability must be permitted and
// inheritable, so the ambient set is rebuilt after capset().
func Apply(s Sets, last int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(s.Effective), Permitted: uint32(s.Permitted), Inheritable: uint32(s.Inheritable)},
		{Effective: uint32(s.Effective >> 32), Permitted: uint32(s.Permitted >> 32), Inheritable: uint32(s.Inheritable >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		if cur, cerr := Current(); cerr == nil && err == unix.EPERM {
			if missing := s.Permitted &^ cur.Permitted; missing != 0 {
				return fmt.Errorf("capset: %w: the runtime itself does not hold %s", err, strings.ToLower(strings.Join(missing.Names(), ",")))
			}
		}
		return fmt.Errorf("capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	for c := 0; c <= last; c++ {
		if !s.Ambient.Has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			return fmt.Errorf("raise ambient %s: %w", Name(c), err)
		}
	}
	return nil
}

// Current reads the calling thread's permitted, effective and inheritable
// sets with capget().
func Current() (Sets, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return Sets{}, fmt.Errorf("capget: %w", err)
	}
	join := func(lo, hi uint32) Set { return Set(uint64(hi)<<32 | uint64(lo)) }
	return Sets{
		Permitted:   join(data[0].Permitted, data[1].Permitted),
		Effective:   join(data[0].Effective, data[1].Effective),
		Inheritable: join(data[0].Inheritable, data[1].Inheritable),
	}, nil
}
