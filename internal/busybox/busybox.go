// Package busybox builds a root filesystem that mirrors Docker Hub's busybox
// image from Debian's busybox-static: /bin/busybox with every applet as a
// hard link to it (the talk's `ls -l bin` shows the link count), /etc/passwd
// and /etc/group with root in wheel (the talk's `id` prints groups=10(wheel)),
// and the empty directories the image has. It is the shared fixture of every
// integration test and of `make demo`; it writes only under the directory it
// is given.
package busybox

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Source is where Debian's busybox-static package installs the binary.
const Source = "/bin/busybox"

var dirs = []struct {
	path string
	mode os.FileMode
}{
	{"bin", 0o755}, {"dev", 0o755}, {"etc", 0o755}, {"home", 0o755},
	{"proc", 0o555}, {"root", 0o700}, {"sys", 0o555}, {"tmp", 0o1777},
	{"usr", 0o755}, {"usr/sbin", 0o755}, {"var", 0o755}, {"var/spool", 0o755},
	{"var/spool/mail", 0o755}, {"var/www", 0o755},
}

var etcFiles = map[string]string{
	"passwd": "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n" +
		"bin:x:2:2:bin:/bin:/bin/false\nsys:x:3:3:sys:/dev:/bin/false\n" +
		"sync:x:4:100:sync:/bin:/bin/sync\nmail:x:8:8:mail:/var/spool/mail:/bin/false\n" +
		"www-data:x:33:33:www-data:/var/www:/bin/false\noperator:x:37:37:Operator:/var:/bin/false\n" +
		"nobody:x:65534:65534:nobody:/home:/bin/false\n",
	"group": "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\ndisk:x:6:\n" +
		"lp:x:7:\nmail:x:8:\nkmem:x:9:\nwheel:x:10:root\ncdrom:x:11:\ndialout:x:18:\n" +
		"floppy:x:19:\nvideo:x:28:\naudio:x:29:\ntape:x:32:\nwww-data:x:33:daemon\n" +
		"operator:x:37:\nutmp:x:43:\nplugdev:x:46:\nstaff:x:50:\nlock:x:54:\n" +
		"netdev:x:82:\nusers:x:100:\nnobody:x:65534:\n",
	"shadow":   "root:*:10933:0:99999:7:::\nnobody:*:10933:0:99999:7:::\n",
	"hostname": "busybox\n",
	"hosts":    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
}

// Applets lists the applets of the busybox binary at src.
func Applets(src string) ([]string, error) {
	out, err := exec.Command(src, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w (is busybox-static installed?)", src, err)
	}
	var list []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		a := strings.TrimSpace(sc.Text())
		if a != "" && a != "busybox" && !strings.Contains(a, "/") {
			list = append(list, a)
		}
	}
	sort.Strings(list)
	return list, nil
}

// Build populates dir (which must exist and should be empty) with the
// busybox root filesystem.
func Build(dir string) error {
	if _, err := os.Stat(Source); err != nil {
		return fmt.Errorf("busybox rootfs: %w (install busybox-static)", err)
	}
	applets, err := Applets(Source)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		p := filepath.Join(dir, d.path)
		if err := os.MkdirAll(p, d.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
	}
	bb := filepath.Join(dir, "bin", "busybox")
	if err := copyFile(Source, bb, 0o755); err != nil {
		return err
	}
	for _, a := range applets {
		if err := os.Link(bb, filepath.Join(dir, "bin", a)); err != nil && !os.IsExist(err) {
			return fmt.Errorf("link applet %s: %w", a, err)
		}
	}
	for name, body := range etcFiles {
		mode := os.FileMode(0o644)
		if name == "shadow" {
			mode = 0o640
		}
		if err := os.WriteFile(filepath.Join(dir, "etc", name), []byte(body), mode); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// WriteTar writes the busybox root filesystem as an uncompressed tar
// stream (hard links as tar hard links), the input of `berth import` and
// `docker import`.
func WriteTar(w io.Writer) error {
	tmp, err := os.MkdirTemp("", "berth-busybox-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := Build(tmp); err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	seen := map[uint64]string{}
	err = filepath.Walk(tmp, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == tmp {
			return err
		}
		rel, _ := filepath.Rel(tmp, p)
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = rel
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if fi.Mode().IsRegular() {
			ino := inode(fi)
			if first, ok := seen[ino]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				return tw.WriteHeader(hdr)
			}
			seen[ino] = rel
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
