package archive

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWriteTarRoundTripAndNoEscape(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "root")
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(top, "secret"), []byte("host secret"), 0o600)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0\n"), 0o644)
	os.Link(filepath.Join(root, "etc/passwd"), filepath.Join(root, "etc/passwd-link"))
	os.Symlink("/../secret", filepath.Join(root, "etc/evil"))
	// The copied path itself is a symlink pointing out: resolved in root.
	os.Symlink("../../secret", filepath.Join(root, "out"))
	var b bytes.Buffer
	if err := WriteTar(&b, root, "/etc", "etc"); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b.Bytes(), []byte("host secret")) {
		t.Fatalf("a symlink made WriteTar read outside the root")
	}
	dest := filepath.Join(top, "dest")
	os.Mkdir(dest, 0o755)
	if _, err := Apply(dest, &b, Options{Whiteouts: WhiteoutDelete}); err != nil {
		t.Fatal(err)
	}
	var a, c unix.Stat_t
	unix.Stat(filepath.Join(dest, "etc/passwd"), &a)
	unix.Stat(filepath.Join(dest, "etc/passwd-link"), &c)
	if a.Ino == 0 || a.Ino != c.Ino {
		t.Fatalf("hard link not kept through WriteTar/Apply")
	}
	if l, _ := os.Readlink(filepath.Join(dest, "etc/evil")); l != "/../secret" {
		t.Fatalf("symlink = %q", l)
	}
	var b2 bytes.Buffer
	if err := WriteTar(&b2, root, "out", "out"); err == nil && bytes.Contains(b2.Bytes(), []byte("host secret")) {
		t.Fatalf("WriteTar followed the start symlink outside the root")
	}
}
