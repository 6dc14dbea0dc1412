package busybox

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestBuildMirrorsDockerHubBusybox(t *testing.T) {
	dir := t.TempDir()
	if err := Build(dir); err != nil {
		t.Fatal(err)
	}
	var bb, sh syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "bin/busybox"), &bb); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(filepath.Join(dir, "bin/sh"), &sh); err != nil {
		t.Fatal(err)
	}
	if bb.Ino != sh.Ino || bb.Nlink < 100 {
		t.Fatalf("bin/sh is not a hard link of bin/busybox with many links: ino %d vs %d, nlink %d", sh.Ino, bb.Ino, bb.Nlink)
	}
	group, err := os.ReadFile(filepath.Join(dir, "etc/group"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(group), "wheel:x:10:root\n") {
		t.Fatalf("etc/group lacks root in wheel:\n%s", group)
	}
}

func TestWriteTarKeepsHardLinks(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTar(&buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	links, regular := 0, 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeLink:
			links++
		case tar.TypeReg:
			regular++
		}
	}
	if regular < 6 || links < 100 {
		t.Fatalf("tar has %d regular files and %d hard links", regular, links)
	}
}
