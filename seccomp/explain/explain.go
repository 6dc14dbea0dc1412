package explain

import (
	"fmt"
	"sort"

	"github.com/berth-dev/berth/seccomp/bpf"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

// Step is one executed instruction of a trace.
type Step struct {
	PC   int
	Ins  bpf.Instruction
	Note string
}

// Verdict is what a filter does with one syscall.
type Verdict struct {
	Action uint32
	Steps  []Step
}

// Trace runs prog for one syscall of the architecture arch and returns the
// action and the instructions executed, annotated.
func Trace(prog []bpf.Instruction, arch *syscalls.Arch, nr uint32, args [6]uint64) (Verdict, error) {
	d := bpf.Data{Nr: nr, Arch: arch.Audit, Args: args}
	r, err := bpf.Run(prog, &d, byteOrder(arch.Audit), true)
	if err != nil {
		return Verdict{}, err
	}
	notes := Annotate(prog)
	v := Verdict{Action: r.Action}
	for _, pc := range r.Trace {
		v.Steps = append(v.Steps, Step{PC: pc, Ins: prog[pc], Note: notes[pc]})
	}
	return v, nil
}

// Row is the verdict of a filter for one syscall of an architecture.
type Row struct {
	Name string
	Nr   uint32
	// Action for all-zero arguments, and the number of instructions it
	// took.
	Action uint32
	Steps  int
	// ArgDependent is set when some argument values change the action;
	// Actions then lists every action seen.
	ArgDependent bool
	Actions      []uint32
	// ConstAllow is set when the kernel's action cache allows the
	// syscall without running the filter.
	ConstAllow bool
}

// Table runs prog for every syscall in arch's table, with argument values
// at and around every constant the program compares arguments with.
func Table(prog []bpf.Instruction, arch *syscalls.Arch) ([]Row, error) {
	vals := Constants(prog)
	order := byteOrder(arch.Audit)
	var rows []Row
	seen := map[uint32]bool{}
	for _, sc := range arch.Syscalls() {
		if seen[sc.Nr] {
			continue
		}
		seen[sc.Nr] = true
		d := bpf.Data{Nr: sc.Nr, Arch: arch.Audit}
		r, err := bpf.Run(prog, &d, order, false)
		if err != nil {
			return nil, err
		}
		row := Row{Name: sc.Name, Nr: sc.Nr, Action: r.Action, Steps: r.Steps, Actions: []uint32{r.Action}}
		row.ConstAllow = bpf.ConstAllow(prog, arch.Audit, sc.Nr)
		acts := map[uint32]bool{r.Action: true}
		if dependsOnArgs(prog, arch.Audit, sc.Nr) {
			for i := 0; i < 6; i++ {
				for _, v := range vals {
					d.Args = [6]uint64{}
					d.Args[i] = v
					if arch.Bits == 32 && arch.Base == 0 {
						d.Args[i] &= 0xffffffff
					}
					r, err := bpf.Run(prog, &d, order, false)
					if err != nil {
						return nil, err
					}
					if !acts[r.Action] {
						acts[r.Action] = true
						row.Actions = append(row.Actions, r.Action)
					}
				}
			}
		}
		row.ArgDependent = len(row.Actions) > 1
		rows = append(rows, row)
	}
	return rows, nil
}

// dependsOnArgs reports whether the path for nr loads an argument.
func dependsOnArgs(prog []bpf.Instruction, audit, nr uint32) bool {
	d := bpf.Data{Nr: nr, Arch: audit}
	r, err := bpf.Run(prog, &d, byteOrder(audit), true)
	if err != nil {
		return true
	}
	for _, pc := range r.Trace {
		ins := prog[pc]
		if ins.Op == bpf.LD|bpf.W|bpf.ABS && ins.K >= bpf.OffIP {
			return true
		}
	}
	return false
}

// Stats summarises a table: instructions executed per allowed and per
// denied syscall (all-zero arguments), and the syscalls allowed outright
// that the kernel's action cache does not recognise.
type Stats struct {
	Allowed, Denied            int
	AllowedMedian, AllowedMax  int
	DeniedMedian, DeniedMax    int
	UnconditionalAllow         int
	ConstAllow                 int
	NotCachedUnconditionalName []string
}

// Summarise computes Stats over rows.
func Summarise(rows []Row) Stats {
	var st Stats
	var a, d []int
	for _, r := range rows {
		if r.Action == bpf.RetAllow {
			a = append(a, r.Steps)
			if !r.ArgDependent {
				st.UnconditionalAllow++
				if r.ConstAllow {
					st.ConstAllow++
				} else {
					st.NotCachedUnconditionalName = append(st.NotCachedUnconditionalName, r.Name)
				}
			}
		} else {
			d = append(d, r.Steps)
		}
	}
	st.Allowed, st.Denied = len(a), len(d)
	st.AllowedMedian, st.AllowedMax = medianMax(a)
	st.DeniedMedian, st.DeniedMax = medianMax(d)
	return st
}

func medianMax(v []int) (int, int) {
	if len(v) == 0 {
		return 0, 0
	}
	sort.Ints(v)
	return v[len(v)/2], v[len(v)-1]
}

// Difference is a syscall (with arguments) two filters treat differently.
type Difference struct {
	Arch   string
	Name   string
	Nr     uint32
	Args   [6]uint64
	A, B   uint32
	ArgDep bool
}

func (d Difference) String() string {
	name := d.Name
	if name == "" {
		name = fmt.Sprintf("syscall %d", d.Nr)
	}
	if d.ArgDep {
		return fmt.Sprintf("%s %s(%#x, %#x, %#x, ...): %s vs %s", d.Arch, name, d.Args[0], d.Args[1], d.Args[2], bpf.ActionString(d.A), bpf.ActionString(d.B))
	}
	return fmt.Sprintf("%s %s: %s vs %s", d.Arch, name, bpf.ActionString(d.A), bpf.ActionString(d.B))
}

// Diff compares two filters on every syscall number of the given
// architectures (up to past the end of their tables), with argument values
// at and around every constant either compares arguments with. It stops
// after max differences (0: no limit).
func Diff(a, b []bpf.Instruction, arches []*syscalls.Arch, max int) ([]Difference, error) {
	vals := Constants(a, b)
	var out []Difference
	for _, arch := range arches {
		order := byteOrder(arch.Audit)
		nrs := map[uint32]bool{}
		for nr := arch.Base; nr <= arch.Max()+16; nr++ {
			nrs[nr] = true
		}
		for _, sc := range arch.Syscalls() {
			nrs[sc.Nr] = true
		}
		sorted := make([]uint32, 0, len(nrs))
		for nr := range nrs {
			sorted = append(sorted, nr)
		}
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		for _, nr := range sorted {
			check := func(args [6]uint64, dep bool) (bool, error) {
				d := bpf.Data{Nr: nr, Arch: arch.Audit, Args: args}
				ra, err := bpf.Run(a, &d, order, false)
				if err != nil {
					return false, err
				}
				rb, err := bpf.Run(b, &d, order, false)
				if err != nil {
					return false, err
				}
				if ra.Action != rb.Action {
					out = append(out, Difference{Arch: arch.Name, Name: arch.NameOf(nr), Nr: nr, Args: args, A: ra.Action, B: rb.Action, ArgDep: dep})
					return true, nil
				}
				return false, nil
			}
			differs, err := check([6]uint64{}, false)
			if err != nil {
				return nil, err
			}
			if !differs && (dependsOnArgs(a, arch.Audit, nr) || dependsOnArgs(b, arch.Audit, nr)) {
			probe:
				for i := 0; i < 6; i++ {
					for _, v := range vals {
						var args [6]uint64
						args[i] = v
						if arch.Bits == 32 && arch.Base == 0 {
							args[i] &= 0xffffffff
						}
						if differs, err = check(args, true); err != nil {
							return nil, err
						} else if differs {
							break probe
						}
					}
				}
			}
			if max > 0 && len(out) >= max {
				return out, nil
			}
		}
	}
	return out, nil
}
