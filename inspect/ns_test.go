package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/proc"
)

// talkUserNS is the talk's flags: a new user namespace owning new
// namespaces of every type but time.
var talkUserNS = []string{"--user", "--map-root-user", "--pid", "--mount-proc", "--ipc", "--uts", "--net", "--mount", "--cgroup"}

func find(ns []*Namespace, typ string) *Namespace {
	for _, n := range ns {
		if n.Type == typ {
			return n
		}
	}
	return nil
}

func TestNamespaceOfMatchesKernel(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, typ := range append([]string{"user"}, NSTypes...) {
		link, want := kernelNS(t, os.Getpid(), typ)
		got, err := NamespaceOf(os.Getpid(), typ)
		if err != nil {
			t.Fatal(err)
		}
		if got != want || link != fmt.Sprintf("%s:[%d]", typ, got.Inode) {
			t.Errorf("%s: berth %s, kernel %s %v", typ, got, link, want)
		}
	}
}

// TestNSTreeTalkShape: the host process and an isolated one, as the talk
// shows its shell and the container's sleep.
func TestNSTreeTalkShape(t *testing.T) {
	testutil.RequiresRoot(t)
	iso := startIsolated(t, talkUserNS...)
	self := os.Getpid()
	tree, err := NSTree([]int{self, iso.Inner}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Roots) != 1 {
		t.Fatalf("%d root user namespaces, want 1", len(tree.Roots))
	}
	root := tree.Roots[0]
	if _, id := kernelNS(t, self, "user"); root.NSID != id || fmt.Sprint(root.PIDs) != fmt.Sprint([]int{self}) {
		t.Fatalf("root user ns %s %v, kernel %s", root.NSID, root.PIDs, id)
	}
	if len(root.Children) != 1 {
		t.Fatalf("root has %d child user namespaces, want 1", len(root.Children))
	}
	child := root.Children[0]
	if _, id := kernelNS(t, iso.Inner, "user"); child.NSID != id || child.OwnerUID == nil || *child.OwnerUID != 0 {
		t.Fatalf("child user ns %s owner %v, kernel %s", child.NSID, child.OwnerUID, id)
	}
	// The child user namespace owns new instances of every type but time;
	// the host's owns the rest, each with the right members.
	for _, typ := range NSTypes {
		_, hostID := kernelNS(t, self, typ)
		_, innerID := kernelNS(t, iso.Inner, typ)
		h := find(root.Owned, typ)
		if h == nil || h.NSID != hostID {
			t.Errorf("host %s namespace: %v, kernel %s", typ, h, hostID)
			continue
		}
		if typ == "time" {
			if innerID != hostID || fmt.Sprint(h.PIDs) != fmt.Sprint(sorted(self, iso.Inner)) || find(child.Owned, "time") != nil {
				t.Errorf("time namespace should be shared: host %v child %v", h.PIDs, find(child.Owned, "time"))
			}
			continue
		}
		c := find(child.Owned, typ)
		if c == nil || c.NSID != innerID || fmt.Sprint(c.PIDs) != fmt.Sprint([]int{iso.Inner}) {
			t.Errorf("container %s namespace: %+v, kernel %s", typ, c, innerID)
		}
		if fmt.Sprint(h.PIDs) != fmt.Sprint([]int{self}) {
			t.Errorf("host %s namespace members %v, want [%d]", typ, h.PIDs, self)
		}
	}

	var out bytes.Buffer
	if err := WriteNSTree(&out, tree); err != nil {
		t.Fatal(err)
	}
	// The talk's shape, line by line.
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	head := regexp.MustCompile(`^( *)(user|cgroup|ipc|mnt|net|pid|time|uts) \{\d+ \d+\}( <UID: \d+>)?$`)
	pids := regexp.MustCompile(`^ *\[ (\d+ )+\]$`)
	for i, l := range lines {
		if !head.MatchString(l) && !pids.MatchString(l) {
			t.Errorf("line %d %q has not the talk's shape", i+1, l)
		}
	}
	wantStart := fmt.Sprintf("user %s <UID: 0>\n  [ %d ]\n  cgroup %s\n", root.NSID, self, find(root.Owned, "cgroup").NSID)
	wantChild := fmt.Sprintf("  user %s <UID: 0>\n    [ %d ]\n    cgroup %s\n      [ %d ]\n    ipc %s\n", child.NSID, iso.Inner,
		find(child.Owned, "cgroup").NSID, iso.Inner, find(child.Owned, "ipc").NSID)
	if !strings.HasPrefix(out.String(), wantStart) || !strings.Contains(out.String(), wantChild) {
		t.Errorf("tree:\n%s\nwant it to start with\n%s\nand contain\n%s", out.String(), wantStart, wantChild)
	}
}

func sorted(a, b int) []int {
	if a > b {
		return []int{b, a}
	}
	return []int{a, b}
}

// TestNSTreeNestedUserNamespaces: a user namespace inside a user namespace
// hangs under it, two levels down, with the owner UID the kernel reports.
func TestNSTreeNestedUserNamespaces(t *testing.T) {
	testutil.RequiresRoot(t)
	// The outer unshare maps root; inside it a second unshare makes a
	// nested user namespace and a UTS namespace owned by it.
	iso := startIsolated(t, "--user", "--map-root-user", "--", "unshare", "--user", "--map-root-user", "--uts")
	// startIsolated's sleep is the grandchild here: unshare execs unshare,
	// which forks sleep.
	tree, err := NSTree([]int{os.Getpid(), iso.Inner}, false)
	if err != nil {
		t.Fatal(err)
	}
	root := tree.Roots[0]
	if len(root.Children) != 1 || len(root.Children[0].Children) != 1 {
		t.Fatalf("want user ns nested two levels, got %+v", root)
	}
	inner := root.Children[0].Children[0]
	if _, id := kernelNS(t, iso.Inner, "user"); inner.NSID != id {
		t.Errorf("innermost user ns %s, kernel %s", inner.NSID, id)
	}
	if u := find(inner.Owned, "uts"); u == nil || fmt.Sprint(u.PIDs) != fmt.Sprint([]int{iso.Inner}) {
		t.Errorf("innermost user ns does not own the uts ns: %+v", inner.Owned)
	}
	if len(root.Children[0].PIDs) != 0 {
		t.Errorf("middle user ns has members %v, want none", root.Children[0].PIDs)
	}
}

func TestPIDNSTreeNStgid(t *testing.T) {
	testutil.RequiresRoot(t)
	iso := startIsolated(t, talkUserNS...)
	tree, err := PIDNSTree([]int{os.Getpid(), iso.Outer, iso.Inner}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Roots) != 1 || len(tree.Roots[0].Children) != 1 {
		t.Fatalf("tree %+v", tree.Roots)
	}
	root, child := tree.Roots[0], tree.Roots[0].Children[0]
	if _, id := kernelNS(t, iso.Inner, "pid"); child.NSID != id {
		t.Errorf("child pid ns %s, kernel %s", child.NSID, id)
	}
	if fmt.Sprint(root.PIDs) != fmt.Sprint(sorted(os.Getpid(), iso.Outer)) {
		t.Errorf("root members %v", root.PIDs)
	}
	st, err := proc.ReadStatus(iso.Inner)
	if err != nil {
		t.Fatal(err)
	}
	if got := child.NStgid[iso.Inner]; fmt.Sprint(got) != fmt.Sprint(st.NStgid) || len(got) != 2 || got[1] != 1 {
		t.Errorf("NStgid %v, kernel %v; want [%d 1]", got, st.NStgid, iso.Inner)
	}
	var out bytes.Buffer
	WritePIDNSTree(&out, tree)
	want := fmt.Sprintf("pid %s\n    %s\n    pid %s\n        [ %d ]\n        NStgid: %d 1\n", root.NSID, pidList(root.PIDs), child.NSID, iso.Inner, iso.Inner)
	if out.String() != want {
		t.Errorf("--pidns text:\n%s\nwant\n%s", out.String(), want)
	}
}

func TestNSTreeErrors(t *testing.T) {
	testutil.RequiresRoot(t)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	gone := cmd.Process.Pid
	if proc.Exists(gone) {
		t.Skip("PID reused")
	}
	if _, err := NSTree([]int{gone}, false); !errors.Is(err, proc.ErrNoProcess) {
		t.Errorf("vanished PID: %v, want ErrNoProcess", err)
	}
	tree, err := NSTree([]int{os.Getpid(), gone}, true)
	if err != nil || len(tree.Skipped) != 1 || tree.Skipped[0].PID != gone || tree.Skipped[0].Reason != "exited" {
		t.Errorf("tolerant tree: %+v %v", tree, err)
	}
	// A zombie (exited, not yet reaped) has a /proc directory but no
	// namespaces besides its user namespace: it counts as exited.
	z := exec.Command("true")
	if err := z.Start(); err != nil {
		t.Fatal(err)
	}
	defer z.Wait()
	for i := 0; i < 500; i++ {
		if st, err := proc.ReadStatus(z.Process.Pid); err == nil && strings.HasPrefix(st.State, "Z") {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := NSTree([]int{z.Process.Pid}, false); !errors.Is(err, proc.ErrNoProcess) {
		t.Errorf("zombie: %v, want ErrNoProcess", err)
	}
	// Its PID (and PID namespace) lasts until it is reaped, as ps shows.
	if tree, err := PIDNSTree([]int{z.Process.Pid}, false); err != nil || len(tree.Roots) != 1 {
		t.Errorf("zombie --pidns: %v", err)
	}
	if _, err := NamespaceOf(os.Getpid(), "bogus"); err == nil {
		t.Error("NamespaceOf(bogus) succeeded")
	}
}

// TestNSTreeAll: every process berth may inspect is in the tree exactly
// once per namespace type, in the namespace the kernel says.
func TestNSTreeAll(t *testing.T) {
	testutil.RequiresRoot(t)
	iso := startIsolated(t, talkUserNS...)
	pids, err := proc.PIDs()
	if err != nil {
		t.Fatal(err)
	}
	tree, err := NSTree(pids, true)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[int]NSID{} // type → pid → ns
	var walk func(n *Namespace)
	walk = func(n *Namespace) {
		for _, p := range n.PIDs {
			if seen[n.Type] == nil {
				seen[n.Type] = map[int]NSID{}
			}
			if _, dup := seen[n.Type][p]; dup {
				t.Errorf("PID %d twice among %s namespaces", p, n.Type)
			}
			seen[n.Type][p] = n.NSID
		}
		for _, c := range append(n.Owned, n.Children...) {
			walk(c)
		}
	}
	for _, r := range tree.Roots {
		walk(r)
	}
	for _, p := range []int{os.Getpid(), iso.Outer, iso.Inner} {
		for _, typ := range append([]string{"user"}, NSTypes...) {
			_, id := kernelNS(t, p, typ)
			if seen[typ][p] != id {
				t.Errorf("--all: PID %d %s ns %s, kernel %s", p, typ, seen[typ][p], id)
			}
		}
	}
	if len(seen["user"])+len(tree.Skipped) < len(pids)-5 {
		t.Errorf("--all covered %d of %d processes (%d skipped)", len(seen["user"]), len(pids), len(tree.Skipped))
	}
}
