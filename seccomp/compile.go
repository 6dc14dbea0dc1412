package seccomp

import (
	"fmt"

	"github.com/berth-dev/berth/seccomp/bpf"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

// Weights of syscall numbers in the dispatch tree: the numbers a process of
// the architecture really uses count fully; x32 numbers on x86_64 (a rare
// ABI) and numbers without a syscall barely count, so they sit deep.
const (
	weightSyscall = 1.0
	weightX32     = 0.02
	weightHole    = 0.001
)

// generate compiles the ruleset to a BPF program.
func (rs *ruleset) generate() (prog []bpf.Instruction, err error) {
	defer func() {
		// The layout cannot fail (a trampoline reaches anywhere); if it
		// ever did, the caller gets an error, not a crashed runtime.
		if r := recover(); r != nil {
			prog, err = nil, fmt.Errorf("internal error: %v", r)
		}
	}()
	b := newBuilder()
	dispatch := b.ret(rs.badArch)
	groups := rs.groups()
	for gi := len(groups) - 1; gi >= 0; gi-- {
		g := groups[gi]
		section := b.load(bpf.OffNr, rs.section(b, g))
		dispatch = b.jump(bpf.JMP|bpf.JEQ|bpf.K, g.audit, section, dispatch)
	}
	root := b.load(bpf.OffArch, dispatch)
	prog, _ = layout(root, func(*node) string { return "" })
	if len(prog) > bpf.MaxInstructions {
		return nil, fmt.Errorf("the filter needs %d instructions, more than the kernel's limit of %d", len(prog), bpf.MaxInstructions)
	}
	if err := bpf.Validate(prog); err != nil {
		return nil, fmt.Errorf("internal error: generated program is invalid: %w", err)
	}
	return prog, nil
}

// section builds the dispatch on the syscall number for one audit value.
func (rs *ruleset) section(b *builder, g *group) *node {
	dflt := b.ret(rs.defaultAction)
	var spans []span
	addRegion := func(ar *archRules, lo, hi uint32, w float64) {
		if ar == nil {
			spans = append(spans, span{lo: lo, hi: hi, leaf: b.ret(rs.badArch), weight: weightHole})
			return
		}
		ctx := &argCtx{b: b, bigEnd: g.bigEnd, bits: ar.arch.Bits}
		rs.regionSpans(ctx, ar, lo, hi, w, dflt, &spans)
	}
	if g.isX86Group() {
		addRegion(g.plain, 0, syscalls.X32Bit-1, weightSyscall)
		addRegion(g.x32, syscalls.X32Bit, 0xfffffffe, weightX32)
	} else {
		ar := g.plain
		if ar == nil {
			ar = g.x32
		}
		addRegion(ar, 0, 0xfffffffe, weightSyscall)
	}
	spans = append(spans, span{lo: 0xffffffff, hi: 0xffffffff, leaf: dflt, weight: weightHole})
	return decide(b, spans)
}

// regionSpans appends the spans of [lo, hi] for one architecture's table.
func (rs *ruleset) regionSpans(ctx *argCtx, ar *archRules, lo, hi uint32, w float64, dflt *node, out *[]span) {
	b := ctx.b
	// Values where the verdict of numbers without a syscall may change.
	gapLeaf := func(nr uint32) *node {
		var none [6]uint64
		return b.ret(rs.evalNr(&archRules{arch: ar.arch, byNr: nil}, nr, &none))
	}
	cuts := []uint32{ar.arch.Max() + 1, 1}
	if ar.arch.Audit == syscalls.AuditARM {
		cuts = append(cuts, 0x0f0000, 0x0f0800)
	}
	gap := func(a, z uint32) {
		for a <= z {
			end := z
			for _, c := range cuts {
				if c > a && c-1 < end {
					end = c - 1
				}
			}
			*out = append(*out, span{lo: a, hi: end, leaf: gapLeaf(a), weight: weightHole})
			if end == z {
				break
			}
			a = end + 1
		}
	}
	next := lo
	for _, sc := range ar.arch.Syscalls() {
		if sc.Nr < next || sc.Nr > hi {
			continue // outside the region, or an alias of a number done
		}
		if sc.Nr > next {
			gap(next, sc.Nr-1)
		}
		leaf := dflt
		if sr := ar.byNr[sc.Nr]; sr != nil {
			if sr.uncond {
				leaf = b.ret(sr.action)
			} else {
				leaf = ctx.block(sr.rules, dflt)
			}
		}
		*out = append(*out, span{lo: sc.Nr, hi: sc.Nr, leaf: leaf, weight: w})
		if sc.Nr == hi {
			return
		}
		next = sc.Nr + 1
	}
	gap(next, hi)
}
