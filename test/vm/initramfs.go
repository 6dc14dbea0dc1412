package vm

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
)

// cpio "newc" archive writer: the format the kernel unpacks as initramfs.
type cpioWriter struct {
	w   *bufio.Writer
	ino uint32
	err error
}

func (c *cpioWriter) header(name string, mode, size, rdevMajor, rdevMinor uint32) {
	c.ino++
	name = strings.TrimPrefix(name, "/")
	if c.err != nil {
		return
	}
	_, c.err = fmt.Fprintf(c.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	if c.err == nil {
		_, c.err = c.w.WriteString(name + "\x00")
	}
	c.pad(110 + len(name) + 1)
}

func (c *cpioWriter) pad(n int) {
	if c.err != nil {
		return
	}
	if r := n % 4; r != 0 {
		_, c.err = c.w.Write(make([]byte, 4-r))
	}
}

func (c *cpioWriter) dir(name string, perm uint32) { c.header(name, 0o040000|perm, 0, 0, 0) }

func (c *cpioWriter) file(name string, perm uint32, data []byte) {
	c.header(name, 0o100000|perm, uint32(len(data)), 0, 0)
	if c.err == nil {
		_, c.err = c.w.Write(data)
	}
	c.pad(len(data))
}

func (c *cpioWriter) symlink(name, target string) {
	c.header(name, 0o120000|0o777, uint32(len(target)), 0, 0)
	if c.err == nil {
		_, c.err = c.w.WriteString(target)
	}
	c.pad(len(target))
}

func (c *cpioWriter) chardev(name string, perm, major, minor uint32) {
	c.header(name, 0o020000|perm, 0, major, minor)
}

func (c *cpioWriter) close() error {
	c.header("TRAILER!!!", 0, 0, 0, 0)
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}

// Initramfs describes what the guest gets.
type Initramfs struct {
	// Files maps a guest path to a host file copied in (mode 0755).
	Files map[string]string
	// Data maps a guest path to the content of a file made for the guest.
	Data map[string][]byte
	// Links maps a guest path to a symlink target.
	Links map[string]string
	// Init is the /init script run by busybox sh.
	Init string
}

// Write builds the initramfs: busybox with a link for every applet, the
// files, /init, and the few device nodes init needs before devtmpfs.
func (ir Initramfs) Write(w io.Writer) error {
	const busybox = "/bin/busybox"
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return fmt.Errorf("initramfs: %w (install busybox-static)", err)
	}
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("initramfs: busybox --list-full: %w", err)
	}
	c := &cpioWriter{w: bufio.NewWriterSize(w, 1<<20)}
	dirs := map[string]bool{}
	mkdirs := func(p string) {
		var parents []string
		for d := path.Dir(p); d != "/" && d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			dirs[parents[i]] = true
			c.dir(parents[i], 0o755)
		}
	}
	for _, d := range []string{"/bin", "/sbin", "/usr", "/usr/bin", "/usr/sbin", "/dev", "/proc", "/sys", "/tmp", "/root", "/etc", "/run", "/var"} {
		dirs[d] = true
		perm := uint32(0o755)
		if d == "/tmp" {
			perm = 0o1777
		}
		c.dir(d, perm)
	}
	c.chardev("/dev/console", 0o600, 5, 1)
	c.chardev("/dev/null", 0o666, 1, 3)
	c.file(busybox, 0o755, bb)
	// A program the guest gets from the host replaces busybox's applet of
	// that name wherever busybox would put it (so PATH finds the real one;
	// a link left in place would also make the kernel's unpacker write the
	// file through it, onto busybox).
	provided := map[string]bool{}
	for g := range ir.Files {
		provided[path.Base(g)] = true
	}
	for _, l := range strings.Fields(string(out)) {
		p := "/" + strings.TrimPrefix(l, "/")
		if p == busybox || provided[path.Base(p)] {
			continue
		}
		mkdirs(p)
		c.symlink(p, busybox)
	}
	c.file("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"))
	c.file("/etc/group", 0o644, []byte("root:x:0:\nnobody:x:65534:\n"))
	names := make([]string, 0, len(ir.Files))
	for g := range ir.Files {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		data, err := os.ReadFile(ir.Files[g])
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		mkdirs(g)
		c.file(g, 0o755, data)
	}
	datas := make([]string, 0, len(ir.Data))
	for g := range ir.Data {
		datas = append(datas, g)
	}
	sort.Strings(datas)
	for _, g := range datas {
		mkdirs(g)
		c.file(g, 0o644, ir.Data[g])
	}
	links := make([]string, 0, len(ir.Links))
	for l := range ir.Links {
		links = append(links, l)
	}
	sort.Strings(links)
	for _, l := range links {
		mkdirs(l)
		c.symlink(l, ir.Links[l])
	}
	c.file("/init", 0o755, []byte("#!/bin/busybox sh\n"+ir.Init))
	return c.close()
}
