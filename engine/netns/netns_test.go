package netns

import (
	"os"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func spec(types ...specs.LinuxNamespaceType) *specs.Spec {
	s := &specs.Spec{Linux: &specs.Linux{}}
	for _, t := range types {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t})
	}
	return s
}

// A container with a network namespace of its own gets the spare (another
// namespace than the caller's, a new one each time); one with a user
// namespace or none of its own is left alone.
func TestPoolHandsOutNewNamespaces(t *testing.T) {
	testutil.RequiresRoot(t)
	var p Pool
	defer p.Close()
	mine, _ := os.Readlink("/proc/self/ns/net")
	seen := map[string]bool{mine: true}
	for i := 0; i < 3; i++ {
		p.Fill()
		var s *specs.Spec
		var release func()
		deadline := time.Now().Add(5 * time.Second)
		for {
			s = spec(specs.PIDNamespace, specs.NetworkNamespace)
			release = p.Use(s)
			if s.Linux.Namespaces[1].Path != "" || time.Now().After(deadline) {
				break
			}
			release()
			time.Sleep(10 * time.Millisecond)
		}
		got, err := os.Readlink(s.Linux.Namespaces[1].Path)
		if err != nil || seen[got] {
			t.Fatalf("round %d: namespace %q (%v), seen %v", i, got, err, seen)
		}
		seen[got] = true
		release()
	}
	for _, s := range []*specs.Spec{spec(specs.UserNamespace, specs.NetworkNamespace), spec(specs.PIDNamespace)} {
		p.Fill()
		time.Sleep(50 * time.Millisecond)
		p.Use(s)()
		for _, n := range s.Linux.Namespaces {
			if n.Path != "" {
				t.Fatalf("%v got a namespace made ahead", s.Linux.Namespaces)
			}
		}
	}
}
