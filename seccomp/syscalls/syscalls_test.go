package syscalls

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Numbers fixed by each architecture's kernel ABI.
func TestKnownNumbers(t *testing.T) {
	cases := []struct {
		arch, name string
		nr         uint32
	}{
		{"x86_64", "unshare", 272}, {"x86_64", "read", 0}, {"x86_64", "clone3", 435},
		{"x86", "unshare", 310}, {"x86", "socketcall", 102}, {"x86", "socket", 359},
		{"x32", "unshare", X32Bit | 272}, {"x32", "ioctl", X32Bit | 514}, {"x32", "preadv2", X32Bit | 546},
		{"x32", "cachestat", X32Bit | 451},
		{"aarch64", "unshare", 97}, {"aarch64", "newfstatat", 79},
		{"arm", "unshare", 337}, {"arm", "set_tls", 0x0f0005}, {"arm", "breakpoint", 0x0f0001},
		{"riscv64", "unshare", 97}, {"riscv64", "riscv_flush_icache", 259},
		{"s390x", "unshare", 303}, {"s390x", "s390_runtime_instr", 342},
		{"ppc64le", "unshare", 282}, {"ppc64le", "swapcontext", 249},
	}
	for _, c := range cases {
		a, err := Lookup(c.arch)
		if err != nil {
			t.Fatal(err)
		}
		nr, ok := a.Nr(c.name)
		if !ok || nr != c.nr {
			t.Errorf("%s %s = %#x (%v), want %#x", c.arch, c.name, nr, ok, c.nr)
		}
		if got := a.NameOf(c.nr); got == "" {
			t.Errorf("%s: no name for %#x", c.arch, c.nr)
		}
	}
	// x32 has no number for syscalls of the 64-bit-only ABI.
	x32, _ := Lookup("SCMP_ARCH_X32")
	if name := x32.NameOf(X32Bit | 16); name != "" {
		t.Errorf("x32 %#x is %s; the slot belongs to x86_64's ioctl", X32Bit|16, name)
	}
	for _, bogus := range []string{"syscall_mask", "arch_specific_syscall", "unshar"} {
		if Known(bogus) {
			t.Errorf("%s is in the tables", bogus)
		}
	}
}

func TestTablesConsistent(t *testing.T) {
	for _, a := range All() {
		if len(a.byName) != len(a.byNr) || len(a.byName) < 300 {
			t.Errorf("%s: %d names, %d numbers", a.Name, len(a.byName), len(a.byNr))
		}
		for _, s := range a.byName {
			if nr, ok := a.Nr(s.Name); !ok || nr != s.Nr {
				t.Errorf("%s: %s does not round-trip", a.Name, s.Name)
			}
			if s.Nr < a.Base {
				t.Errorf("%s: %s = %#x below the base", a.Name, s.Name, s.Nr)
			}
		}
		if a.Max() < a.Base+400 {
			t.Errorf("%s: max %#x looks too old", a.Name, a.Max())
		}
	}
	for _, n := range []string{"amd64", "SCMP_ARCH_X86_64", "x86_64", "i386", "arm64", "aarch64"} {
		if _, err := Lookup(n); err != nil {
			t.Errorf("Lookup(%q): %v", n, err)
		}
	}
	if _, err := Lookup("SCMP_ARCH_MIPS"); err == nil {
		t.Error("MIPS has a table?")
	}
	if Native() == nil {
		t.Skip("no table for this machine")
	}
}

// The committed tables are what the generator produces from its sources
// (when they are at hand: the x/sys module and the kernel headers).
func TestGeneratedUpToDate(t *testing.T) {
	if _, err := os.Stat("/usr/include/x86_64-linux-gnu/asm/unistd_x32.h"); err != nil {
		t.Skip("kernel headers (linux-libc-dev) not installed")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out := filepath.Join(t.TempDir(), "z.go")
	cmd := exec.Command("go", "run", "./internal/mksyscalls", "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("generator cannot run here (module cache?): %v\n%s", err, b)
	}
	got, _ := os.ReadFile(out)
	want, _ := os.ReadFile("zsyscalls.go")
	if !bytes.Equal(got, want) {
		t.Fatal("zsyscalls.go is stale: run go generate ./seccomp/syscalls")
	}
}
