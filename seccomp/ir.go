package seccomp

import (
	"fmt"

	"github.com/berth-dev/berth/seccomp/bpf"
)

// The code generator builds a DAG of nodes (each one instruction with its
// successors), shares identical subgraphs, then lays the DAG out backwards
// so every jump goes forward, duplicating returns or inserting `ja`
// trampolines where a conditional jump would need more than 255.

type nodeKind uint8

const (
	kRet  nodeKind = iota // ret K
	kStmt                 // a non-jump instruction followed by next
	kJump                 // conditional jump to t or f
)

type node struct {
	kind nodeKind
	op   uint16
	k    uint32
	next *node // kStmt
	t, f *node // kJump

	id   int
	size int // instructions of the subgraph, shared parts counted once per path
	pos  int // index in the reversed output, -1 until placed
	note string
}

// builder hash-conses nodes.
type builder struct {
	nodes map[nodeKey]*node
	n     int
	notes map[*node]string
}

type nodeKey struct {
	kind   nodeKind
	op     uint16
	k      uint32
	a, b   int
	unique int
}

func newBuilder() *builder { return &builder{nodes: map[nodeKey]*node{}} }

func (b *builder) intern(key nodeKey, mk func() *node) *node {
	if n, ok := b.nodes[key]; ok {
		return n
	}
	n := mk()
	b.n++
	n.id = b.n
	n.pos = -1
	b.nodes[key] = n
	return n
}

func (b *builder) ret(k uint32) *node {
	return b.intern(nodeKey{kind: kRet, k: k}, func() *node { return &node{kind: kRet, op: bpf.RET | bpf.K, k: k, size: 1} })
}

func (b *builder) stmt(op uint16, k uint32, next *node) *node {
	return b.intern(nodeKey{kind: kStmt, op: op, k: k, a: next.id}, func() *node {
		return &node{kind: kStmt, op: op, k: k, next: next, size: 1 + next.size}
	})
}

// jump builds a conditional jump; when both successors are the same the
// test is pointless and the successor is returned.
func (b *builder) jump(op uint16, k uint32, t, f *node) *node {
	if t == f {
		return t
	}
	return b.intern(nodeKey{kind: kJump, op: op, k: k, a: t.id, b: f.id}, func() *node {
		return &node{kind: kJump, op: op, k: k, t: t, f: f, size: 1 + t.size + f.size}
	})
}

// load builds `ld [off]` followed by next.
func (b *builder) load(off uint32, next *node) *node { return b.stmt(bpf.LD|bpf.W|bpf.ABS, off, next) }

// emitter places nodes backwards.
type emitter struct {
	rev     []bpf.Instruction
	notes   []string
	retPos  map[uint32]int // latest copy of each return
	tramps  int
	noteFor func(*node) string
}

func (e *emitter) cur() int { return len(e.rev) }

func (e *emitter) push(ins bpf.Instruction, note string) int {
	e.rev = append(e.rev, ins)
	e.notes = append(e.notes, note)
	return len(e.rev) - 1
}

// target returns a position reachable with a conditional jump from the
// next instruction pushed (distance <= 255), placing n if needed.
func (e *emitter) reach(n *node, from int) int {
	if n.kind == kRet {
		if p, ok := e.retPos[n.k]; ok && from-p-1 <= 255 {
			return p
		}
		p := e.push(bpf.Stmt(bpf.RET|bpf.K, n.k), "")
		e.retPos[n.k] = p
		return p
	}
	p := e.place(n)
	return p
}

// place lays out n (once) and returns its position.
func (e *emitter) place(n *node) int {
	if n.pos >= 0 {
		return n.pos
	}
	switch n.kind {
	case kRet:
		p := e.push(bpf.Stmt(bpf.RET|bpf.K, n.k), "")
		e.retPos[n.k] = p
		n.pos = p
		return p
	case kStmt:
		p := e.place(n.next)
		if p != e.cur()-1 {
			// The successor was laid out elsewhere: jump to it.
			if n.next.kind == kRet {
				p = e.push(bpf.Stmt(bpf.RET|bpf.K, n.next.k), "")
				e.retPos[n.next.k] = p
			} else {
				e.tramps++
				p = e.push(bpf.Stmt(bpf.JMP|bpf.JA, uint32(e.cur()-p-1)), "")
			}
		}
		n.pos = e.push(bpf.Stmt(n.op, n.k), e.noteFor(n))
		return n.pos
	}
	// Conditional jump: lay out the bigger successor first (farther away),
	// the smaller one last (adjacent).
	first, second := n.t, n.f
	if n.t.size < n.f.size {
		first, second = n.f, n.t
	}
	if first.kind != kRet {
		e.place(first)
	}
	if second.kind != kRet {
		e.place(second)
	}
	from := e.cur()
	pt := e.reach(n.t, from)
	pf := e.reach(n.f, e.cur())
	// Both targets must be within 255 of the jump's position.
	at := e.cur()
	if at-pt-1 > 255 {
		pt = e.trampoline(pt)
	}
	at = e.cur()
	if at-pf-1 > 255 {
		if n.f.kind == kRet {
			pf = e.reach(n.f, at)
		} else {
			pf = e.trampoline(pf)
		}
	}
	at = e.cur()
	if at-pt-1 > 255 { // the false trampoline pushed the true target away
		pt = e.trampoline(pt)
	}
	at = e.cur()
	if at-pt-1 > 255 || at-pf-1 > 255 {
		panic(fmt.Sprintf("seccomp: layout failed: jump distances %d, %d", at-pt-1, at-pf-1))
	}
	n.pos = e.push(bpf.Jump(n.op, n.k, uint8(at-pt-1), uint8(at-pf-1)), e.noteFor(n))
	return n.pos
}

func (e *emitter) trampoline(p int) int {
	e.tramps++
	return e.push(bpf.Stmt(bpf.JMP|bpf.JA, uint32(e.cur()-p-1)), "")
}

// layout turns the DAG rooted at root into a program, with notes.
func layout(root *node, noteFor func(*node) string) ([]bpf.Instruction, []string) {
	e := &emitter{retPos: map[uint32]int{}, noteFor: noteFor}
	e.place(root)
	n := len(e.rev)
	prog := make([]bpf.Instruction, n)
	notes := make([]string, n)
	for i := range e.rev {
		prog[n-1-i] = e.rev[i]
		notes[n-1-i] = e.notes[i]
	}
	return prog, notes
}
