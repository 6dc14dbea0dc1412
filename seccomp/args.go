package seccomp

import (
	"sort"

	"github.com/berth-dev/berth/seccomp/bpf"
)

// argCtx carries what argument code generation needs to know about the
// architecture: its byte order and argument width.
type argCtx struct {
	b      *builder
	bigEnd bool
	bits   int
}

func (c *argCtx) loadLo(arg int, next *node) *node {
	lo, _ := bpf.ArgOffsets(arg, c.bigEnd)
	return c.b.load(lo, next)
}

func (c *argCtx) loadHi(arg int, next *node) *node {
	_, hi := bpf.ArgOffsets(arg, c.bigEnd)
	return c.b.load(hi, next)
}

// block compiles a syscall's conditional rules: the first rule whose
// conditions all hold decides, otherwise dflt.
func (c *argCtx) block(rules []rule, dflt *node) *node {
	if c.bits == 32 {
		// Only the low halves are compared on 32-bit ABIs.
		t := make([]rule, len(rules))
		for i, r := range rules {
			t[i] = rule{action: r.action, conds: make([]cond, len(r.conds))}
			for k, cd := range r.conds {
				t[i].conds[k] = cd.trunc32()
			}
		}
		rules = t
	}
	next := dflt
	// Work backwards over segments: a run of single-condition rules on
	// one argument with ordered comparisons is compiled as one decision
	// tree over the argument's value; any other rule on its own.
	i := len(rules)
	for i > 0 {
		j := i - 1
		if intervalRule(rules[j]) {
			for j > 0 && intervalRule(rules[j-1]) && rules[j-1].conds[0].arg == rules[i-1].conds[0].arg {
				j--
			}
			next = c.intervalSegment(rules[j:i], next)
		} else {
			next = c.generalRule(rules[j], next)
		}
		i = j
	}
	return next
}

func intervalRule(r rule) bool {
	return len(r.conds) == 1 && r.conds[0].op != opMaskedEQ
}

// intervalSegment compiles rules that each compare the same argument once
// with ==, !=, <, <=, >, >=: together they split the 64-bit value range
// into pieces with one verdict each.
func (c *argCtx) intervalSegment(rules []rule, next *node) *node {
	arg := rules[0].conds[0].arg
	bps := map[uint64]bool{0: true}
	for _, r := range rules {
		cd := r.conds[0]
		switch cd.op {
		case opEQ, opNE:
			bps[cd.v] = true
			if cd.v != ^uint64(0) {
				bps[cd.v+1] = true
			}
		case opLT, opGE:
			bps[cd.v] = true
		case opLE, opGT:
			if cd.v != ^uint64(0) {
				bps[cd.v+1] = true
			}
		}
	}
	starts := make([]uint64, 0, len(bps))
	for v := range bps {
		starts = append(starts, v)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	verdict := func(x uint64) *node {
		for _, r := range rules {
			if r.conds[0].match(x) {
				return c.b.ret(r.action)
			}
		}
		return next
	}
	// pieces of the 64-bit range
	type piece struct {
		lo, hi uint64
		leaf   *node
	}
	var pieces []piece
	for k, s := range starts {
		hi := ^uint64(0)
		if k+1 < len(starts) {
			hi = starts[k+1] - 1
		}
		pieces = append(pieces, piece{s, hi, verdict(s)})
	}
	loTree := func(h uint32) *node {
		var spans []span
		for _, p := range pieces {
			if p.hi>>32 < uint64(h) || p.lo>>32 > uint64(h) {
				continue
			}
			lo, hi := uint32(0), ^uint32(0)
			if p.lo>>32 == uint64(h) {
				lo = uint32(p.lo)
			}
			if p.hi>>32 == uint64(h) {
				hi = uint32(p.hi)
			}
			spans = append(spans, span{lo: lo, hi: hi, leaf: p.leaf, weight: 1})
		}
		t := decide(c.b, spans)
		if t.kind == kRet || t == next {
			return t
		}
		return c.loadLo(arg, t)
	}
	if c.bits == 32 {
		return loTree(0) // values are truncated to 32 bits (see block)
	}
	// High words in which the verdict changes need a low-word tree.
	split := map[uint32]bool{}
	for _, s := range starts {
		if uint32(s) != 0 {
			split[uint32(s>>32)] = true
		}
	}
	hiBps := map[uint64]bool{0: true}
	for _, s := range starts {
		hiBps[s>>32] = true
	}
	for h := range split {
		hiBps[uint64(h)] = true
		hiBps[uint64(h)+1] = true
	}
	var hiStarts []uint64
	for h := range hiBps {
		if h <= 0xffffffff {
			hiStarts = append(hiStarts, h)
		}
	}
	sort.Slice(hiStarts, func(i, j int) bool { return hiStarts[i] < hiStarts[j] })
	var spans []span
	for k, h := range hiStarts {
		hi := uint64(0xffffffff)
		if k+1 < len(hiStarts) {
			hi = hiStarts[k+1] - 1
		}
		var leaf *node
		if split[uint32(h)] {
			leaf = loTree(uint32(h))
		} else {
			leaf = verdict(h << 32)
		}
		spans = append(spans, span{lo: uint32(h), hi: uint32(hi), leaf: leaf, weight: 1})
	}
	t := decide(c.b, spans)
	if t.kind == kRet || t == next {
		return t
	}
	return c.loadHi(arg, t)
}

// generalRule compiles one rule: every condition must hold for its
// action, otherwise next.
func (c *argCtx) generalRule(r rule, next *node) *node {
	pass := c.b.ret(r.action)
	for k := len(r.conds) - 1; k >= 0; k-- {
		pass = c.cond(r.conds[k], pass, next)
	}
	return pass
}

// cond compiles one 64-bit comparison as tests on the two 32-bit halves.
func (c *argCtx) cond(cd cond, t, f *node) *node {
	b := c.b
	if cd.op == opMaskedEQ {
		mh, ml := uint32(cd.v>>32), uint32(cd.v)
		dh, dl := uint32(cd.v2>>32), uint32(cd.v2)
		lo := c.maskedWord(ml, dl, t, f, c.loadLo, cd.arg)
		if c.bits == 32 {
			if dh != 0 {
				return f // (0 & mask) can never equal a non-zero high word
			}
			return lo
		}
		return c.maskedWord(mh, dh, lo, f, c.loadHi, cd.arg)
	}
	vh, vl := uint32(cd.v>>32), uint32(cd.v)
	// Outcome by the high word compared with vh.
	var gt, lt *node
	switch cd.op {
	case opEQ:
		gt, lt = f, f
	case opNE:
		gt, lt = t, t
	case opGT, opGE:
		gt, lt = t, f
	case opLT, opLE:
		gt, lt = f, t
	}
	var lo *node
	switch cd.op {
	case opEQ:
		lo = b.jump(bpf.JMP|bpf.JEQ|bpf.K, vl, t, f)
	case opNE:
		lo = b.jump(bpf.JMP|bpf.JEQ|bpf.K, vl, f, t)
	case opGT:
		lo = c.gtLo(vl, t, f)
	case opGE:
		lo = c.geLo(vl, t, f)
	case opLT:
		lo = c.geLo(vl, f, t)
	case opLE:
		lo = c.gtLo(vl, f, t)
	}
	if lo.kind != kRet {
		lo = c.loadLo(cd.arg, lo)
	}
	if c.bits == 32 {
		switch {
		case vh == 0:
			return lo
		default: // 0 < vh
			return lt
		}
	}
	var hiTest *node
	switch {
	case gt == lt:
		hiTest = b.jump(bpf.JMP|bpf.JEQ|bpf.K, vh, lo, gt)
	case vh == 0:
		hiTest = b.jump(bpf.JMP|bpf.JGT|bpf.K, 0, gt, lo)
	case vh == 0xffffffff:
		hiTest = b.jump(bpf.JMP|bpf.JEQ|bpf.K, vh, lo, lt)
	default:
		hiTest = b.jump(bpf.JMP|bpf.JGT|bpf.K, vh, gt, b.jump(bpf.JMP|bpf.JEQ|bpf.K, vh, lo, lt))
	}
	if hiTest.kind == kRet {
		return hiTest
	}
	return c.loadHi(cd.arg, hiTest)
}

func (c *argCtx) gtLo(v uint32, t, f *node) *node {
	if v == 0xffffffff {
		return f
	}
	return c.b.jump(bpf.JMP|bpf.JGT|bpf.K, v, t, f)
}

func (c *argCtx) geLo(v uint32, t, f *node) *node {
	if v == 0 {
		return t
	}
	return c.b.jump(bpf.JMP|bpf.JGE|bpf.K, v, t, f)
}

// maskedWord tests (word & m) == d, then goes to t or f.
func (c *argCtx) maskedWord(m, d uint32, t, f *node, load func(int, *node) *node, arg int) *node {
	b := c.b
	switch {
	case d&^m != 0:
		return f // bits outside the mask can never match
	case m == 0:
		return t // (x & 0) == 0 always
	case d == 0:
		return load(arg, b.jump(bpf.JMP|bpf.JSET|bpf.K, m, f, t))
	case d == m && m&(m-1) == 0:
		return load(arg, b.jump(bpf.JMP|bpf.JSET|bpf.K, m, t, f))
	case m == 0xffffffff:
		return load(arg, b.jump(bpf.JMP|bpf.JEQ|bpf.K, d, t, f))
	}
	return load(arg, b.stmt(bpf.ALU|bpf.AND|bpf.K, m, b.jump(bpf.JMP|bpf.JEQ|bpf.K, d, t, f)))
}
