// Package vm boots Debian's kernel in qemu with software emulation (TCG)
// and a busybox initramfs it builds, to run Go test binaries on a pure
// cgroup v2 host — the layout most machines have, which the project's
// hybrid build hosts cannot show. It owns a cache directory for the kernel
// (BERTH_VM_CACHE, default /var/cache/berth-vm) and its own temporary
// files; it installs nothing on the host (the kernel package is fetched
// with `apt-get download` and unpacked, never installed).
//
// Why TCG: /dev/kvm on these hosts is PVM, which runs only kernels built
// for it. Why the uncompressed vmlinux: qemu boots it directly through the
// PVH entry point in about half the time of the bzImage.
package vm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// CacheDir is where kernels are kept between runs.
func CacheDir() string {
	if d := os.Getenv("BERTH_VM_CACHE"); d != "" {
		return d
	}
	return "/var/cache/berth-vm"
}

var dependsRe = regexp.MustCompile(`Depends:\s*(linux-image-[0-9][^\s]*)`)

// Modules are the kernel modules the guest loads (Debian builds them as
// modules): loop, for block-device I/O limits on a loop device, and bfq,
// for proportional I/O weights.
var Modules = []string{"kernel/drivers/block/loop.ko", "kernel/block/bfq.ko"}

// Kernel is what the guest boots with.
type Kernel struct {
	Vmlinux string
	Modules []string // host paths of the .ko files, in load order
}

// FetchKernel returns an uncompressed vmlinux of Debian's current
// linux-image-amd64 and its Modules, fetching and unpacking them into the
// cache when needed.
func FetchKernel() (Kernel, error) {
	v, err := vmlinuxPath()
	if err != nil {
		return Kernel{}, err
	}
	k := Kernel{Vmlinux: v}
	dir := strings.Replace(v, "vmlinux-", "modules-", 1)
	for _, m := range Modules {
		k.Modules = append(k.Modules, filepath.Join(dir, filepath.Base(m)))
	}
	return k, nil
}

func vmlinuxPath() (string, error) {
	cache := CacheDir()
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("vm kernel cache: %w", err)
	}
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").CombinedOutput()
	m := dependsRe.FindSubmatch(out)
	if err != nil || m == nil {
		// Offline or no apt lists: use whatever kernel the cache has.
		if k := newestCached(cache); k != "" {
			return k, nil
		}
		return "", fmt.Errorf("vm kernel: cannot tell which linux-image linux-image-amd64 depends on (run apt-get update): %v: %s", err, out)
	}
	pkg := string(m[1])
	vmlinux := filepath.Join(cache, "vmlinux-"+strings.TrimPrefix(pkg, "linux-image-"))
	modDir := filepath.Join(cache, "modules-"+strings.TrimPrefix(pkg, "linux-image-"))
	if _, err := os.Stat(vmlinux); err == nil {
		if _, err := os.Stat(filepath.Join(modDir, ".done")); err == nil {
			return vmlinux, nil
		}
	}
	dl := exec.Command("apt-get", "download", pkg)
	dl.Dir = cache
	if out, err := dl.CombinedOutput(); err != nil {
		return "", fmt.Errorf("vm kernel: apt-get download %s: %w: %s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(cache, pkg+"_*.deb"))
	if len(debs) == 0 {
		return "", fmt.Errorf("vm kernel: apt-get download %s left no .deb in %s", pkg, cache)
	}
	bz, mods, err := unpackDeb(debs[len(debs)-1])
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(modDir, 0o755); err != nil {
		return "", err
	}
	for name, data := range mods {
		if err := os.WriteFile(filepath.Join(modDir, name), data, 0o644); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(modDir, ".done"), nil, 0o644); err != nil {
		return "", err
	}
	elfImg, err := extractVmlinux(bz)
	if err != nil {
		return "", fmt.Errorf("vm kernel: %w", err)
	}
	tmp := vmlinux + ".tmp"
	if err := os.WriteFile(tmp, elfImg, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, vmlinux); err != nil {
		return "", err
	}
	for _, d := range debs {
		os.Remove(d) // the vmlinux is all we keep
	}
	return vmlinux, nil
}

func newestCached(cache string) string {
	ks, _ := filepath.Glob(filepath.Join(cache, "vmlinux-*"))
	var best string
	for _, k := range ks {
		if !strings.HasSuffix(k, ".tmp") && k > best {
			best = k
		}
	}
	return best
}

// unpackDeb reads ./boot/vmlinuz-* and the wanted modules (by base name,
// decompressed) out of a kernel package.
func unpackDeb(deb string) (bz []byte, mods map[string][]byte, err error) {
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("vm kernel: dpkg-deb: %w", err)
	}
	defer cmd.Wait()
	mods = map[string][]byte{}
	tr := tar.NewReader(stdout)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("vm kernel: read %s: %w: %s", deb, err, stderr.String())
		}
		name := strings.TrimPrefix(h.Name, ".")
		if strings.HasPrefix(name, "/boot/vmlinuz-") {
			if bz, err = io.ReadAll(tr); err != nil {
				return nil, nil, err
			}
			continue
		}
		for _, m := range Modules {
			base := filepath.Base(m)
			switch {
			case strings.HasSuffix(name, "/"+m):
				if mods[base], err = io.ReadAll(tr); err != nil {
					return nil, nil, err
				}
			case strings.HasSuffix(name, "/"+m+".xz"):
				b, err := io.ReadAll(tr)
				if err != nil {
					return nil, nil, err
				}
				mods[base] = decompressWith(b, "xz", "-dc")
			}
		}
	}
	if bz == nil {
		return nil, nil, fmt.Errorf("vm kernel: no /boot/vmlinuz-* in %s", deb)
	}
	for _, m := range Modules {
		if len(mods[filepath.Base(m)]) == 0 {
			return nil, nil, fmt.Errorf("vm kernel: no module %s in %s", m, deb)
		}
	}
	return bz, mods, nil
}

// extractVmlinux unpacks the ELF kernel from a bzImage: the boot header
// (Documentation/x86/boot.rst) gives the compressed payload's offset and
// length; Debian compresses it with xz (gzip and zstd are handled too).
func extractVmlinux(bz []byte) ([]byte, error) {
	if len(bz) < 0x250 || string(bz[0x202:0x206]) != "HdrS" {
		return nil, errors.New("not a bzImage")
	}
	setup := int(bz[0x1f1])
	if setup == 0 {
		setup = 4
	}
	off := binary.LittleEndian.Uint32(bz[0x248:])
	n := binary.LittleEndian.Uint32(bz[0x24c:])
	start := (setup+1)*512 + int(off)
	if start+int(n) > len(bz) {
		return nil, errors.New("bzImage payload out of bounds")
	}
	payload := bz[start : start+int(n)]
	var out []byte
	switch {
	case bytes.HasPrefix(payload, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		out, _ = io.ReadAll(zr) // trailing size word ends the stream early
	case bytes.HasPrefix(payload, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		out = decompressWith(payload, "xz", "-dc")
	case bytes.HasPrefix(payload, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		out = decompressWith(payload, "zstd", "-dc")
	default:
		return nil, fmt.Errorf("unknown kernel compression % x", payload[:6])
	}
	// The decompressors complain about the kernel's trailing size word;
	// what counts is a complete ELF image.
	if err := checkELF(out); err != nil {
		return nil, fmt.Errorf("unpacked kernel is not a complete ELF image: %w", err)
	}
	return out, nil
}

func decompressWith(payload []byte, tool string, args ...string) []byte {
	cmd := exec.Command(tool, args...)
	cmd.Stdin = bytes.NewReader(payload)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Run()
	return out.Bytes()
}

func checkELF(b []byte) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return err
	}
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("machine %v", f.Machine)
	}
	for _, p := range f.Progs {
		if p.Off+p.Filesz > uint64(len(b)) {
			return fmt.Errorf("segment at %#x+%#x beyond %d bytes", p.Off, p.Filesz, len(b))
		}
	}
	return nil
}
