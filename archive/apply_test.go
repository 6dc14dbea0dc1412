package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// entry is one tar entry of a test stream.
type entry struct {
	name, link string
	typ        byte
	mode       int64
	body       string
	uid, gid   int
	xattrs     map[string]string
	size       int64 // overrides len(body) in the header when > 0
}

func mkTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: time.Unix(1_600_000_000, 0), Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.body != "" {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox returns a destination dir inside a parent that also holds a
// "victim" file and dir outside the destination, so escapes are visible.
func sandbox(t *testing.T) (dest, outside string) {
	t.Helper()
	top := t.TempDir()
	dest = filepath.Join(top, "dest")
	outside = filepath.Join(top, "outside")
	for _, d := range []string{dest, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dest, outside
}

func checkOutsideUntouched(t *testing.T, outside string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(outside, "victim"))
	if err != nil || string(b) != "original" {
		t.Fatalf("victim outside the destination changed: %q %v", b, err)
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("files appeared outside the destination: %v", names)
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(outside), "evil")); err == nil {
		t.Fatalf("file created next to the destination")
	}
}

func TestApplyRegularDirsLinksOwnership(t *testing.T) {
	dest, _ := sandbox(t)
	data := mkTar(t,
		entry{name: "bin/", typ: tar.TypeDir, mode: 0o711},
		entry{name: "bin/busybox", body: "ELF...", mode: 0o4755, uid: 1000, gid: 1001},
		entry{name: "bin/sh", typ: tar.TypeLink, link: "bin/busybox"},
		entry{name: "bin/ls", typ: tar.TypeLink, link: "/bin/busybox"},
		entry{name: "etc/passwd", body: "root:x:0:0::/root:/bin/sh\n"},
		entry{name: "lib", typ: tar.TypeSymlink, link: "/usr/lib"},
		entry{name: "dev/null", typ: tar.TypeChar, mode: 0o666},
		entry{name: "fifo", typ: tar.TypeFifo, mode: 0o600},
		entry{name: "x", body: "xattr", xattrs: map[string]string{"user.berth": "yes", "trusted.overlay.redirect": "/etc"}},
	)
	st, err := Apply(dest, bytes.NewReader(data), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 9 {
		t.Fatalf("entries = %d, want 9", st.Entries)
	}
	var bb, sh, ls unix.Stat_t
	for p, s := range map[string]*unix.Stat_t{"bin/busybox": &bb, "bin/sh": &sh, "bin/ls": &ls} {
		if err := unix.Lstat(filepath.Join(dest, p), s); err != nil {
			t.Fatal(err)
		}
	}
	if bb.Ino != sh.Ino || bb.Ino != ls.Ino || bb.Nlink != 3 {
		t.Fatalf("hard links not kept: inodes %d %d %d nlink %d", bb.Ino, sh.Ino, ls.Ino, bb.Nlink)
	}
	if os.Geteuid() == 0 && (bb.Uid != 1000 || bb.Gid != 1001) {
		t.Fatalf("owner %d:%d, want 1000:1001", bb.Uid, bb.Gid)
	}
	if bb.Mode&0o7777 != 0o4755 {
		t.Fatalf("mode %o, want 4755 (setuid kept after chown)", bb.Mode&0o7777)
	}
	if fi, _ := os.Stat(filepath.Join(dest, "bin")); fi.Mode().Perm() != 0o711 {
		t.Fatalf("dir mode %v", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Join(dest, "bin/busybox")); fi.ModTime().Unix() != 1_600_000_000 {
		t.Fatalf("mtime %v", fi.ModTime())
	}
	if l, _ := os.Readlink(filepath.Join(dest, "lib")); l != "/usr/lib" {
		t.Fatalf("symlink target %q", l)
	}
	if os.Geteuid() == 0 {
		var d unix.Stat_t
		if err := unix.Lstat(filepath.Join(dest, "dev/null"), &d); err != nil || d.Mode&unix.S_IFMT != unix.S_IFCHR {
			t.Fatalf("device node not created: %v %o", err, d.Mode)
		}
	}
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(filepath.Join(dest, "x"), "user.berth", buf)
	if err != nil && err != unix.ENOTSUP {
		t.Fatalf("xattr: %v", err)
	}
	if err == nil && string(buf[:n]) != "yes" {
		t.Fatalf("xattr = %q", buf[:n])
	}
	if _, err := unix.Lgetxattr(filepath.Join(dest, "x"), "trusted.overlay.redirect", buf); err == nil {
		t.Fatalf("an overlay xattr from the stream was applied")
	}
}

func TestApplySkipDevices(t *testing.T) {
	dest, _ := sandbox(t)
	data := mkTar(t, entry{name: "dev/sda", typ: tar.TypeBlock, mode: 0o660}, entry{name: "f", body: "a"})
	if _, err := Apply(dest, bytes.NewReader(data), Options{SkipDevices: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "dev/sda")); !os.IsNotExist(err) {
		t.Fatalf("device created despite SkipDevices: %v", err)
	}
}

func TestApplyHostile(t *testing.T) {
	cases := []struct {
		name    string
		entries []entry
		wantErr bool // else: may succeed or fail, but must stay inside
	}{
		{"dotdot", []entry{{name: "../evil", body: "x"}}, true},
		{"dotdot-deep", []entry{{name: "a/../../evil", body: "x"}}, true},
		{"absolute", []entry{{name: "/evil", body: "x"}}, false},
		{"symlink-dir-then-write", []entry{
			{name: "l", typ: tar.TypeSymlink, link: "../outside"},
			{name: "l/victim", body: "pwned"},
		}, false},
		{"symlink-abs-then-write", []entry{
			{name: "l", typ: tar.TypeSymlink, link: "/"},
			{name: "l/../outside/victim", body: "pwned"},
		}, false},
		{"symlink-abs-dir", []entry{
			{name: "l", typ: tar.TypeSymlink, link: "/"},
			{name: "l/evil", body: "pwned"},
		}, false},
		{"symlink-chain", []entry{
			{name: "a", typ: tar.TypeSymlink, link: "b/../../.."},
			{name: "b/", typ: tar.TypeDir},
			{name: "a/outside/victim", body: "pwned"},
		}, false},
		{"symlink-then-file-replaces-link", []entry{
			{name: "f", typ: tar.TypeSymlink, link: "../outside/victim"},
			{name: "f", body: "pwned"},
		}, false},
		{"hardlink-outside", []entry{{name: "h", typ: tar.TypeLink, link: "../outside/victim"}}, true},
		{"hardlink-through-symlink", []entry{
			{name: "l", typ: tar.TypeSymlink, link: "../outside"},
			{name: "h", typ: tar.TypeLink, link: "l/victim"},
		}, true},
		{"whiteout-outside", []entry{{name: "../outside/.wh.victim", typ: tar.TypeReg}}, true},
		{"whiteout-through-symlink", []entry{
			{name: "l", typ: tar.TypeSymlink, link: "../outside"},
			{name: "l/.wh.victim"},
		}, false},
		{"opaque-through-symlink", []entry{
			{name: "l", typ: tar.TypeSymlink, link: "../outside"},
			{name: "l/.wh..wh..opq"},
		}, false},
		{"root-not-dir", []entry{{name: ".", body: "x"}}, true},
	}
	for _, mode := range []WhiteoutMode{WhiteoutOverlay, WhiteoutDelete} {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				dest, outside := sandbox(t)
				_, err := Apply(dest, bytes.NewReader(mkTar(t, c.entries...)), Options{Whiteouts: mode, NoChown: os.Geteuid() != 0})
				if c.wantErr && err == nil {
					t.Fatalf("hostile stream accepted")
				}
				if err != nil {
					t.Logf("refused: %v", err)
				}
				checkOutsideUntouched(t, outside)
			})
		}
	}
}

func TestApplyEscapeErrorIsClear(t *testing.T) {
	dest, _ := sandbox(t)
	_, err := Apply(dest, bytes.NewReader(mkTar(t, entry{name: "../../etc/passwd", body: "x"})), Options{})
	if !IsEscape(err) || !strings.Contains(err.Error(), "../../etc/passwd") {
		t.Fatalf("want an escape error naming the entry, got %v", err)
	}
}

func TestApplyTruncatedAndGarbage(t *testing.T) {
	full := mkTar(t, entry{name: "a", body: strings.Repeat("x", 5000)}, entry{name: "b", body: "y"})
	for name, data := range map[string][]byte{
		"truncated-body":   full[:512+2000],
		"truncated-header": full[:100],
		"garbage":          bytes.Repeat([]byte("not a tar archive "), 100),
	} {
		t.Run(name, func(t *testing.T) {
			dest, outside := sandbox(t)
			if _, err := Apply(dest, bytes.NewReader(data), Options{NoChown: true}); err == nil {
				t.Fatalf("bad stream accepted")
			}
			checkOutsideUntouched(t, outside)
		})
	}
}

func TestApplyHugeHeader(t *testing.T) {
	// A PAX record larger than archive/tar's limit is refused without
	// allocating it.
	rec := "SCHILY.xattr.user.big=" + strings.Repeat("A", 2<<20) + "\n"
	rec = fmt.Sprintf("%d %s", len(rec)+8, rec)
	raw := rawHeader(t, "PaxHeaders/big", 'x', len(rec))
	raw = append(raw, rec...)
	raw = append(raw, make([]byte, (512-len(rec)%512)%512)...)
	raw = append(raw, rawHeader(t, "big", '0', 0)...)
	raw = append(raw, make([]byte, 1024)...)
	dest, _ := sandbox(t)
	if _, err := Apply(dest, bytes.NewReader(raw), Options{NoChown: true}); err == nil {
		t.Fatalf("2 MiB PAX header accepted")
	}
	// A header that declares a huge size with no data behind it fails on
	// the missing data, not by allocating.
	var b2 bytes.Buffer
	tw := tar.NewWriter(&b2)
	if err := tw.WriteHeader(&tar.Header{Name: "huge", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 40}); err != nil {
		t.Fatal(err)
	}
	raw = b2.Bytes()
	if _, err := Apply(dest, bytes.NewReader(raw), Options{NoChown: true}); err == nil {
		t.Fatalf("1 TiB entry with no data accepted")
	}
}

// rawHeader makes a ustar header block with any type flag.
func rawHeader(t *testing.T, name string, typ byte, size int) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size), Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	blk := b.Bytes()[:512]
	blk[156] = typ
	copy(blk[148:156], "        ")
	sum := 0
	for _, c := range blk {
		sum += int(c)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return append([]byte(nil), blk...)
}

func TestApplyWhiteoutsOverlay(t *testing.T) {
	dest, _ := sandbox(t)
	data := mkTar(t,
		entry{name: "etc/", typ: tar.TypeDir},
		entry{name: "etc/.wh.shadow"},
		entry{name: "var/", typ: tar.TypeDir},
		entry{name: "var/.wh..wh..opq"},
		entry{name: "var/new", body: "n"},
	)
	if _, err := Apply(dest, bytes.NewReader(data), Options{}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dest, "etc/shadow"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("etc/shadow is not an overlay whiteout: mode %o rdev %d", st.Mode, st.Rdev)
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(dest, "var"), OverlayOpaqueXattr, buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Fatalf("var not opaque: %q %v", buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "etc/.wh.shadow")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("whiteout marker file left in layer: %v", err)
	}
}

func TestApplyWhiteoutsDelete(t *testing.T) {
	dest, _ := sandbox(t)
	base := mkTar(t,
		entry{name: "etc/shadow", body: "s"},
		entry{name: "etc/passwd", body: "p"},
		entry{name: "var/old/deep", body: "o"},
		entry{name: "var/keep", body: "k"},
	)
	if _, err := Apply(dest, bytes.NewReader(base), Options{Whiteouts: WhiteoutDelete}); err != nil {
		t.Fatal(err)
	}
	upper := mkTar(t,
		entry{name: "etc/.wh.shadow"},
		entry{name: "var/new", body: "n"},
		entry{name: "var/.wh..wh..opq"},
	)
	if _, err := Apply(dest, bytes.NewReader(upper), Options{Whiteouts: WhiteoutDelete}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"etc/shadow": false, "etc/passwd": true, "var/old": false, "var/keep": false, "var/new": true} {
		_, err := os.Lstat(filepath.Join(dest, p))
		if (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", p, err == nil, want)
		}
	}
}

// With KeepDirKinds an entry never replaces a directory with a file (or
// a file with a directory); without it, it does, as a layer must.
func TestApplyKeepDirKinds(t *testing.T) {
	dest, _ := sandbox(t)
	os.MkdirAll(filepath.Join(dest, "etc"), 0o755)
	os.WriteFile(filepath.Join(dest, "etc", "passwd"), []byte("root"), 0o644)
	os.WriteFile(filepath.Join(dest, "file"), []byte("x"), 0o644)
	for _, c := range []struct {
		e    entry
		want string
	}{
		{entry{name: "etc", body: "not a dir"}, `cannot overwrite directory "etc" with a non-directory`},
		{entry{name: "etc", typ: tar.TypeSymlink, link: "/tmp"}, `cannot overwrite directory "etc" with a non-directory`},
		{entry{name: "file", typ: tar.TypeDir, mode: 0o755}, `cannot overwrite non-directory "file" with a directory`},
	} {
		_, err := Apply(dest, bytes.NewReader(mkTar(t, c.e)), Options{KeepDirKinds: true})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s (type %c): %v, want %q", c.e.name, c.e.typ, err, c.want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dest, "etc", "passwd")); err != nil || string(b) != "root" {
		t.Fatalf("etc/passwd after refused entries: %q %v", b, err)
	}
	// The same kind replaces, as without the option.
	if _, err := Apply(dest, bytes.NewReader(mkTar(t, entry{name: "file", body: "new"}, entry{name: "etc", typ: tar.TypeDir, mode: 0o755})), Options{KeepDirKinds: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "file")); string(b) != "new" {
		t.Fatalf("file not replaced: %q", b)
	}
	// Without the option the directory goes, as a layer's file replaces it.
	if _, err := Apply(dest, bytes.NewReader(mkTar(t, entry{name: "etc", body: "flat"})), Options{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "etc")); string(b) != "flat" {
		t.Fatalf("layer semantics: etc = %q", b)
	}
}
