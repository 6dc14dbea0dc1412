package archive

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzApply feeds arbitrary bytes to the extractor: it must never panic
// and never write outside its destination.
func FuzzApply(f *testing.F) {
	f.Add(mkTar(f, entry{name: "a/b", body: "x"}, entry{name: "l", typ: '2', link: "../.."}, entry{name: "l/c", body: "y"}))
	f.Add(mkTar(f, entry{name: "h", typ: '1', link: "../x"}, entry{name: ".wh..wh..opq"}, entry{name: "d/.wh.e"}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		top := t.TempDir()
		dest := filepath.Join(top, "dest")
		if err := os.Mkdir(dest, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, mode := range []WhiteoutMode{WhiteoutOverlay, WhiteoutDelete} {
			Apply(dest, bytes.NewReader(data), Options{Whiteouts: mode, NoChown: true, SkipDevices: true})
		}
		ents, err := os.ReadDir(top)
		if err != nil || len(ents) != 1 {
			t.Fatalf("something was written next to the destination: %v %v", ents, err)
		}
	})
}

func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"a/../..", "/etc/passwd", "./x/", "..", "a\x00b", "...", "a/./b//c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := CleanName(name)
		if err != nil {
			return
		}
		if p == ".." || filepath.IsAbs(p) || len(p) >= 3 && p[:3] == "../" {
			t.Fatalf("CleanName(%q) = %q escapes", name, p)
		}
		if j := filepath.Join("/root", p); j != "/root" && !bytes.HasPrefix([]byte(j), []byte("/root/")) {
			t.Fatalf("CleanName(%q) = %q joins outside: %s", name, p, j)
		}
	})
}
