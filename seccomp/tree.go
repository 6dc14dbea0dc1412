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

	type choice struct {
		cost  float64
		split int // -1: chain, -2: leaf
		leaf  *node
		exc   []int
	}
	best := make([][]choice, n)
	for i := range best {
		best[i] = make([]choice, n)
	}
	for length := 1; length <= n; length++ {
		for i := 0; i+length-1 < n; i++ {
			j := i + length - 1
			if i == j {
				best[i][j] = choice{split: -2, leaf: spans[i].leaf}
				continue
			}
			c := choice{cost: -1}
			lo, hi := i, j-1
			if n > dpLimit && length > 2 {
				lo, hi = best[i][j-1].split, best[i+1][j].split
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
			for m := lo; m <= hi; m++ {
				cost := w(i, j) + best[i][m].cost + best[m+1][j].cost
				if c.cost < 0 || cost < c.cost {
					c = choice{cost: cost, split: m}
				}
			}
			if length <= 2*maxChain+1 {
				if leaf, exc, cost, ok := chain(spans[i : j+1]); ok && cost < c.cost {
					for k := range exc {
						exc[k] += i
					}
					c = choice{cost: cost, split: -1, leaf: leaf, exc: exc}
				}
			}
			best[i][j] = c
		}
	}
	var build func(i, j int) *node
	build = func(i, j int) *node {
		c := best[i][j]
		switch c.split {
		case -2:
			return c.leaf
		case -1:
			nd := c.leaf
			for k := len(c.exc) - 1; k >= 0; k-- {
				s := spans[c.exc[k]]
				nd = b.jump(bpf.JMP|bpf.JEQ|bpf.K, s.lo, s.leaf, nd)
			}
			return nd
		}
		return b.jump(bpf.JMP|bpf.JGE|bpf.K, spans[c.split+1].lo, build(c.split+1, j), build(i, c.split))
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
		weights := map[*node]float64{}
		for _, s := range spans {
			weights[s.leaf] += s.weight
			if dom == nil || weights[s.leaf] > weights[dom] {
				dom = s.leaf
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
