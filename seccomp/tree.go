package seccomp

import (
	"sort"

	"github.com/berth-dev/berth/seccomp/bpf"
)

// span is a run of 32-bit values [lo, hi] that all lead to leaf. weight is
// how much the run matters (how many real syscalls it holds).
type span struct {
	lo, hi uint32
	leaf   *node
	weight float64
}

// maxChain bounds the `jeq` exceptions tested before a dominant leaf.
const maxChain = 6

// dpLimit is the number of spans up to which the optimal tree is searched
// exhaustively (O(n^3)); above it Knuth's bound on the split keeps it
// O(n^2).
const dpLimit = 120

// decide builds a decision tree over the value in the accumulator (a
// syscall number or an argument word) that reaches spans[i].leaf for
// every value in spans[i]. spans must be sorted, contiguous and cover the
// whole 32-bit range. The tree minimises the weighted number of
// comparisons, using `jge` splits and chains of `jeq` for single values
// that interrupt a dominant leaf (a denied syscall among allowed ones).
func decide(b *builder, spans []span) *node {
	spans = mergeSpans(spans)
	n := len(spans)
	if n == 1 {
		return spans[0].leaf
	}
	pre := make([]float64, n+1)
	for i, s := range spans {
		pre[i+1] = pre[i] + s.weight
	}
	w := func(i, j int) float64 { return pre[j+1] - pre[i] }

	// best[i*n+j] is the cheapest tree for spans i..j: its cost and its
	// root (split after span m; -1: a jeq chain; -2: a leaf).
	type choice struct {
		cost  float64
		split int32
	}
	best := make([]choice, n*n)
	at := func(i, j int) *choice { return &best[i*n+j] }
	for length := 1; length <= n; length++ {
		for i := 0; i+length-1 < n; i++ {
			j := i + length - 1
			if i == j {
				*at(i, j) = choice{split: -2}
				continue
			}
			c := choice{cost: -1}
			lo, hi := i, j-1
			if n > dpLimit && length > 2 {
				lo, hi = int(at(i, j-1).split), int(at(i+1, j).split)
				if lo < i {
					lo = i
				}
				if hi < 0 || hi > j-1 {
					hi = j - 1
				}
				if lo > hi {
					lo, hi = i, j-1
				}
			}
			wij := w(i, j)
			for m := lo; m <= hi; m++ {
				cost := wij + at(i, m).cost + at(m+1, j).cost
				if c.cost < 0 || cost < c.cost {
					c = choice{cost: cost, split: int32(m)}
				}
			}
			if length <= 2*maxChain+1 {
				if cost, ok := chainCost(spans[i : j+1]); ok && cost < c.cost {
					c = choice{cost: cost, split: -1}
				}
			}
			*at(i, j) = c
		}
	}
	var build func(i, j int) *node
	build = func(i, j int) *node {
		c := at(i, j)
		switch c.split {
		case -2:
			return spans[i].leaf
		case -1:
			nd, exc, _, _ := chain(spans[i : j+1])
			for k := len(exc) - 1; k >= 0; k-- {
				s := spans[i+exc[k]]
				nd = b.jump(bpf.JMP|bpf.JEQ|bpf.K, s.lo, s.leaf, nd)
			}
			return nd
		}
		m := int(c.split)
		return b.jump(bpf.JMP|bpf.JGE|bpf.K, spans[m+1].lo, build(m+1, j), build(i, m))
	}
	return build(0, n-1)
}

// chain checks whether spans are one dominant leaf interrupted only by
// single values, and returns the exceptions heaviest first with the
// weighted cost of testing them in that order.
func chain(spans []span) (*node, []int, float64, bool) {
	// The dominant leaf is the leaf of every span wider than one value;
	// if all are single values, try the heaviest leaf.
	var dom *node
	for _, s := range spans {
		if s.hi != s.lo {
			if dom != nil && dom != s.leaf {
				return nil, nil, 0, false
			}
			dom = s.leaf
		}
	}
	if dom == nil {
		var domW float64
		for _, s := range spans {
			var w float64
			for _, t := range spans {
				if t.leaf == s.leaf {
					w += t.weight
				}
			}
			if dom == nil || w > domW {
				dom, domW = s.leaf, w
			}
		}
	}
	var exc []int
	var domW float64
	for k, s := range spans {
		if s.leaf == dom {
			domW += s.weight
		} else {
			exc = append(exc, k)
		}
	}
	if len(exc) == 0 || len(exc) > maxChain {
		return nil, nil, 0, false
	}
	sort.SliceStable(exc, func(a, b int) bool { return spans[exc[a]].weight > spans[exc[b]].weight })
	cost := domW * float64(len(exc))
	for k, e := range exc {
		cost += spans[e].weight * float64(k+1)
	}
	return dom, exc, cost, true
}

// chainCost is chain's cost without building the chain (the search calls
// it for every short range).
func chainCost(spans []span) (float64, bool) {
	var dom *node
	for _, s := range spans {
		if s.hi != s.lo {
			if dom != nil && dom != s.leaf {
				return 0, false
			}
			dom = s.leaf
		}
	}
	if dom == nil {
		d, _, cost, ok := chain(spans)
		_ = d
		return cost, ok
	}
	var ws [maxChain]float64
	n := 0
	var domW float64
	for _, s := range spans {
		if s.leaf == dom {
			domW += s.weight
			continue
		}
		if n == maxChain {
			return 0, false
		}
		// insertion, heaviest first
		k := n
		for k > 0 && ws[k-1] < s.weight {
			ws[k] = ws[k-1]
			k--
		}
		ws[k] = s.weight
		n++
	}
	if n == 0 {
		return 0, false
	}
	cost := domW * float64(n)
	for k := 0; k < n; k++ {
		cost += ws[k] * float64(k+1)
	}
	return cost, true
}

// mergeSpans joins neighbours with the same leaf.
func mergeSpans(in []span) []span {
	out := make([]span, 0, len(in))
	for _, s := range in {
		if len(out) > 0 && out[len(out)-1].leaf == s.leaf && out[len(out)-1].hi+1 == s.lo {
			out[len(out)-1].hi = s.hi
			out[len(out)-1].weight += s.weight
			continue
		}
		out = append(out, s)
	}
	return out
}
