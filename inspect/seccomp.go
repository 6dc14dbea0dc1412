package inspect

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/proc"
	"github.com/berth-dev/berth/seccomp"
	"github.com/berth-dev/berth/seccomp/bpf"
	sexplain "github.com/berth-dev/berth/seccomp/explain"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

// SeccompFilter is one seccomp filter attached to a process.
type SeccompFilter struct {
	Instructions int      `json:"instructions"`
	Arches       []string `json:"arches"`
}

// SeccompSummary is what the isolation report says about a process's
// seccomp filters: read with PTRACE_SECCOMP_GET_FILTER (package
// seccomp/explain), and compared syscall by syscall with Docker's default
// profile resolved for the process's bounding set, compiled by berth.
type SeccompSummary struct {
	Mode    string          `json:"mode"`
	Filters []SeccompFilter `json:"filters"`
	// Unreadable says why the filters could not be read (no
	// CAP_SYS_ADMIN, berth itself under seccomp, a traced process).
	Unreadable string `json:"unreadable,omitempty"`
	// DockerDefault is set when the process has exactly one filter that
	// does for every syscall what Docker's default profile does.
	DockerDefault bool `json:"docker_default"`
	// Differences are syscalls the filter treats differently from Docker's
	// default profile (the first few).
	Differences []string `json:"differences,omitempty"`
}

// maxSeccompDiffs bounds the comparison: the report names a few.
const maxSeccompDiffs = 5

// Seccomp summarizes process pid's seccomp filters. Reading them stops the
// process for a moment (ptrace seize and interrupt, then detach).
func Seccomp(pid int, st *proc.Status) *SeccompSummary {
	s := &SeccompSummary{Mode: seccompMode(st.Seccomp), Filters: []SeccompFilter{}}
	if st.Seccomp != proc.SeccompFilter {
		return s
	}
	filters, err := sexplain.Dump(pid)
	if err != nil {
		s.Unreadable = err.Error()
		return s
	}
	for _, f := range filters {
		var arches []string
		for _, a := range sexplain.Arches(f) {
			arches = append(arches, sexplain.ArchName(a))
		}
		s.Filters = append(s.Filters, SeccompFilter{Instructions: len(f), Arches: arches})
	}
	if len(filters) != 1 {
		return s
	}
	diffs, err := diffDockerProfile(filters[0], st.CapBnd)
	if err != nil {
		s.Unreadable = "compare with Docker's default profile: " + err.Error()
		return s
	}
	s.Differences = diffs
	s.DockerDefault = len(diffs) == 0
	return s
}

// diffDockerProfile compares prog with Docker's default profile for a
// container whose capabilities are bnd, on the native architecture and
// the others the profile names.
func diffDockerProfile(prog []bpf.Instruction, bnd caps.Set) ([]string, error) {
	cfg, err := seccomp.DefaultProfile(bnd.Names())
	if err != nil {
		return nil, err
	}
	arch := syscalls.Native()
	if arch == nil {
		return nil, fmt.Errorf("no syscall table for this architecture")
	}
	want, err := seccomp.CompileFor(cfg, arch)
	if err != nil {
		return nil, err
	}
	arches := []*syscalls.Arch{arch}
	for _, a := range cfg.Architectures {
		if x, err := syscalls.Lookup(string(a)); err == nil && x != arch {
			arches = append(arches, x)
		}
	}
	ds, err := sexplain.Diff(prog, want.Instructions, arches, maxSeccompDiffs)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out, nil
}

// summaryLine is the filters in one cell: "1 filter, 974 instructions
// (x86_64, x86, x32)".
func (s *SeccompSummary) summaryLine() string {
	if s.Unreadable != "" && len(s.Filters) == 0 {
		return "unreadable: " + s.Unreadable
	}
	var parts []string
	for _, f := range s.Filters {
		parts = append(parts, fmt.Sprintf("%d instructions (%s)", f.Instructions, strings.Join(f.Arches, ", ")))
	}
	n := "filters"
	if len(s.Filters) == 1 {
		n = "filter"
	}
	return fmt.Sprintf("%d %s: %s", len(s.Filters), n, strings.Join(parts, "; "))
}
