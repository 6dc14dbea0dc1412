package caps

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Sets are the five capability sets of a thread.
type Sets struct {
	Bounding, Permitted, Effective, Inheritable, Ambient Set
}

// Apply gives the calling thread exactly the sets in s. The caller must have
// locked its OS thread and must execve from that same thread: capability
// sets are per thread, and only the execve'ing thread's sets survive.
//
// Order matters: the bounding set is reduced first (needs CAP_SETPCAP in
// the current effective set), then capset() sets permitted, effective and
// inheritable, then the ambient set is cleared and rebuilt (each ambient
// capability must be permitted and inheritable).
func Apply(s Sets, last int) error {
	for c := 0; c <= last; c++ {
		if s.Bounding.Has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if err == unix.EINVAL {
				continue // the kernel does not know this capability
			}
			return fmt.Errorf("drop %s from the bounding set: %w", Name(c), err)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(s.Effective), Permitted: uint32(s.Permitted), Inheritable: uint32(s.Inheritable)},
		{Effective: uint32(s.Effective >> 32), Permitted: uint32(s.Permitted >> 32), Inheritable: uint32(s.Inheritable >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
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
