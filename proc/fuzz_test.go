package proc

import (
	"strings"
	"testing"
)

// The fuzz targets check that no input panics and that what parses obeys
// the invariants the rest of berth relies on. Their corpora live in
// testdata/fuzz and run as ordinary tests.

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte(talkStatus))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseStatus(data)
		if err != nil {
			return
		}
		if s.Seccomp < -1 || s.Seccomp > 2 {
			t.Fatalf("seccomp mode %d accepted", s.Seccomp)
		}
	})
}

func FuzzParseCgroup(f *testing.F) {
	f.Add([]byte("0::/\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := ParseCgroup(data)
		if err != nil {
			return
		}
		for _, e := range es {
			if !strings.HasPrefix(e.Path, "/") || e.HierarchyID < 0 {
				t.Fatalf("bad entry accepted: %+v", e)
			}
			again, err := ParseCgroup([]byte(e.String()))
			if err != nil || len(again) != 1 || again[0].String() != e.String() {
				t.Fatalf("round trip of %q: %v %v", e.String(), again, err)
			}
		}
	})
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte("22 27 0:21 / /proc rw,relatime - proc proc rw\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := ParseMountinfo(data)
		if err != nil {
			return
		}
		for _, m := range ms {
			if len(m.Options) == 0 || len(m.SuperOptions) == 0 {
				t.Fatalf("mount without options: %+v", m)
			}
		}
	})
}

func FuzzParseIDMap(f *testing.F) {
	f.Add([]byte("0 100000 65536\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := ParseIDMap(data)
		if err != nil {
			return
		}
		if len(ms) > maxIDMapLines {
			t.Fatalf("%d lines accepted", len(ms))
		}
		for _, m := range ms {
			if m.Count == 0 {
				t.Fatalf("zero count accepted: %v", m)
			}
		}
	})
}
