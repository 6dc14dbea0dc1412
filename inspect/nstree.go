package inspect

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/proc"
)

// Namespace is a node of the namespace tree. In the user-namespace tree
// (NSTree) user namespaces carry the namespaces they own in Owned and the
// user namespaces nested in them in Children; in the PID-namespace tree
// (PIDNSTree) Children are the nested PID namespaces.
type Namespace struct {
	Type string `json:"type"`
	NSID
	// OwnerUID is the UID that created a user namespace, as
	// NS_GET_OWNER_UID reports it in berth's user namespace.
	OwnerUID *uint32 `json:"owner_uid,omitempty"`
	// PIDs are the inspected processes that are members, as seen from
	// berth's PID namespace.
	PIDs []int `json:"pids"`
	// NStgid, in the PID-namespace tree, is each member's PID at every
	// level from berth's PID namespace down to its own (NStgid in
	// /proc/PID/status), keyed by PID.
	NStgid   map[int][]int `json:"nstgid,omitempty"`
	Owned    []*Namespace  `json:"owned,omitempty"`
	Children []*Namespace  `json:"children,omitempty"`
}

// Skipped is a process a tree could not include, and why.
type Skipped struct {
	PID    int    `json:"pid"`
	Reason string `json:"reason"`
}

// Tree is the result of NSTree or PIDNSTree.
type Tree struct {
	Roots   []*Namespace `json:"roots"`
	Skipped []Skipped    `json:"skipped,omitempty"`
}

type treeBuilder struct {
	users  map[NSID]*Namespace
	others map[string]*Namespace // type + id
	tree   Tree
}

// NSTree builds the talk's namespace tree for pids: each user namespace
// with the namespaces of every other type it owns, and the user
// namespaces nested in it. With tolerant set, processes that vanish or
// that the caller may not inspect are listed in Skipped (for --all);
// otherwise the first such process is an error.
func NSTree(pids []int, tolerant bool) (*Tree, error) {
	b := &treeBuilder{users: map[NSID]*Namespace{}, others: map[string]*Namespace{}}
	for _, pid := range uniq(pids) {
		if err := b.addProcess(pid); err != nil {
			if tolerant && skippable(err) {
				b.tree.Skipped = append(b.tree.Skipped, Skipped{PID: pid, Reason: reason(err)})
				continue
			}
			return nil, err
		}
	}
	sortTree(b.tree.Roots)
	return &b.tree, nil
}

// skippable: with --all, a process that exits meanwhile or that this
// caller may not inspect is left out, not fatal.
func skippable(err error) bool {
	return errors.Is(err, proc.ErrNoProcess) || errors.Is(err, fs.ErrPermission)
}

func reason(err error) string {
	if errors.Is(err, proc.ErrNoProcess) {
		return "exited"
	}
	return "permission denied"
}

func (b *treeBuilder) addProcess(pid int) error {
	// Identify every namespace first, so that a process that cannot be
	// inspected leaves no half-added trace in the tree.
	type member struct {
		typ string
		n   nsFile
	}
	var ms []member
	defer func() {
		for _, m := range ms {
			m.n.Close()
		}
	}()
	for _, typ := range append([]string{"user"}, NSTypes...) {
		n, err := openNS(pid, typ)
		if errors.Is(err, errNoNSType) {
			continue
		}
		if err != nil {
			return err
		}
		ms = append(ms, member{typ, n})
	}
	for _, m := range ms {
		var node *Namespace
		var err error
		if m.typ == "user" {
			node, err = b.user(m.n)
		} else {
			node, err = b.other(m.typ, m.n)
		}
		if err != nil {
			return fmt.Errorf("process %d: %w", pid, err)
		}
		node.PIDs = append(node.PIDs, pid)
	}
	return nil
}

// user returns the node of user namespace n, adding it and its ancestors
// (NS_GET_PARENT) on first sight.
func (b *treeBuilder) user(n nsFile) (*Namespace, error) {
	if node, ok := b.users[n.id]; ok {
		return node, nil
	}
	uid, err := ownerUID(n)
	if err != nil {
		return nil, err
	}
	node := &Namespace{Type: "user", NSID: n.id, OwnerUID: &uid, PIDs: []int{}}
	parent, ok, err := related(n, unix.NS_GET_PARENT, "user", "parent")
	if err != nil {
		return nil, err
	}
	if !ok {
		b.users[n.id] = node
		b.tree.Roots = append(b.tree.Roots, node)
		return node, nil
	}
	defer parent.Close()
	p, err := b.user(parent)
	if err != nil {
		return nil, err
	}
	b.users[n.id] = node
	p.Children = append(p.Children, node)
	return node, nil
}

// other returns the node of non-user namespace n, attached to the user
// namespace that owns it (NS_GET_USERNS).
func (b *treeBuilder) other(typ string, n nsFile) (*Namespace, error) {
	key := typ + n.id.String()
	if node, ok := b.others[key]; ok {
		return node, nil
	}
	owner, ok, err := related(n, unix.NS_GET_USERNS, "user", "owning user namespace")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s namespace %s: its owning user namespace is outside berth's: %w", typ, n.id, fs.ErrPermission)
	}
	defer owner.Close()
	u, err := b.user(owner)
	if err != nil {
		return nil, err
	}
	node := &Namespace{Type: typ, NSID: n.id, PIDs: []int{}}
	b.others[key] = node
	u.Owned = append(u.Owned, node)
	return node, nil
}

// PIDNSTree builds the PID-namespace hierarchy of pids (NS_GET_PARENT on
// /proc/PID/ns/pid) with each process's NStgid.
func PIDNSTree(pids []int, tolerant bool) (*Tree, error) {
	nodes := map[NSID]*Namespace{}
	var tree Tree
	var add func(n nsFile) (*Namespace, error)
	add = func(n nsFile) (*Namespace, error) {
		if node, ok := nodes[n.id]; ok {
			return node, nil
		}
		node := &Namespace{Type: "pid", NSID: n.id, PIDs: []int{}, NStgid: map[int][]int{}}
		parent, ok, err := related(n, unix.NS_GET_PARENT, "pid", "parent")
		if err != nil {
			return nil, err
		}
		if !ok {
			nodes[n.id] = node
			tree.Roots = append(tree.Roots, node)
			return node, nil
		}
		defer parent.Close()
		p, err := add(parent)
		if err != nil {
			return nil, err
		}
		nodes[n.id] = node
		p.Children = append(p.Children, node)
		return node, nil
	}
	for _, pid := range uniq(pids) {
		err := func() error {
			n, err := openNS(pid, "pid")
			if err != nil {
				return err
			}
			defer n.Close()
			st, err := proc.ReadStatus(pid)
			if err != nil {
				return err
			}
			node, err := add(n)
			if err != nil {
				return fmt.Errorf("process %d: %w", pid, err)
			}
			node.PIDs = append(node.PIDs, pid)
			node.NStgid[pid] = st.NStgid
			return nil
		}()
		if err != nil {
			if tolerant && skippable(err) {
				tree.Skipped = append(tree.Skipped, Skipped{PID: pid, Reason: reason(err)})
				continue
			}
			return nil, err
		}
	}
	sortTree(tree.Roots)
	return &tree, nil
}

func uniq(pids []int) []int {
	seen := map[int]bool{}
	var out []int
	for _, p := range pids {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

func sortTree(ns []*Namespace) {
	sort.Slice(ns, func(i, j int) bool {
		if ns[i].Type != ns[j].Type {
			return ns[i].Type < ns[j].Type
		}
		return ns[i].Inode < ns[j].Inode
	})
	for _, n := range ns {
		sort.Ints(n.PIDs)
		sortTree(n.Owned)
		sortTree(n.Children)
	}
}

// WriteNSTree prints the tree as namespaces_of.go does: two spaces per
// level, "{dev inode}", "<UID: n>" for user namespaces, "[ PIDs ]".
func WriteNSTree(w io.Writer, t *Tree) error {
	var b strings.Builder
	var walk func(n *Namespace, depth int)
	walk = func(n *Namespace, depth int) {
		ind := strings.Repeat("  ", depth)
		fmt.Fprintf(&b, "%s%s %s", ind, n.Type, n.NSID)
		if n.OwnerUID != nil {
			fmt.Fprintf(&b, " <UID: %d>", *n.OwnerUID)
		}
		b.WriteString("\n")
		if len(n.PIDs) > 0 {
			fmt.Fprintf(&b, "%s  %s\n", ind, pidList(n.PIDs))
		}
		for _, o := range n.Owned {
			walk(o, depth+1)
		}
		for _, c := range n.Children {
			walk(c, depth+1)
		}
	}
	for _, r := range t.Roots {
		walk(r, 0)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WritePIDNSTree prints the PID-namespace hierarchy as the talk does (four
// spaces per level); under a nested namespace each member's NStgid follows
// its PID list, as `grep NStgid /proc/PID/status` shows it.
func WritePIDNSTree(w io.Writer, t *Tree) error {
	var b strings.Builder
	var walk func(n *Namespace, depth int)
	walk = func(n *Namespace, depth int) {
		ind := strings.Repeat("    ", depth)
		fmt.Fprintf(&b, "%s%s %s\n", ind, n.Type, n.NSID)
		if len(n.PIDs) > 0 {
			fmt.Fprintf(&b, "%s    %s\n", ind, pidList(n.PIDs))
		}
		if depth > 0 {
			for _, p := range n.PIDs {
				fmt.Fprintf(&b, "%s    NStgid: %s\n", ind, intList(n.NStgid[p]))
			}
		}
		for _, c := range n.Children {
			walk(c, depth+1)
		}
	}
	for _, r := range t.Roots {
		walk(r, 0)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func pidList(p []int) string { return "[ " + intList(p) + " ]" }

func intList(p []int) string {
	s := make([]string, len(p))
	for i, x := range p {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, " ")
}
