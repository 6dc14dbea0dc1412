package seccompglue

import (
	"bytes"
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func profile(action specs.LinuxSeccompAction) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"unshare", "mount"}, Action: action},
	}}
}

// The program is kept per configuration object: the same object gives the
// same program without compiling again; objects with other contents give
// their own programs, also after an earlier object is gone.
func TestCompileKeptPerObject(t *testing.T) {
	errno := profile(specs.ActErrno)
	a, _, err := Compile(errno)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := Compile(errno)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("same object, another program (%v)", err)
	}
	if _, ok := compiled.Load(weakKey(errno)); !ok {
		t.Fatal("the program is not kept for its object")
	}
	for i := 0; i < 3; i++ {
		runtime.GC()
		kill := profile(specs.ActKillProcess)
		c, _, err := Compile(kill)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a, c) {
			t.Fatal("another profile compiled to the first one's program")
		}
		runtime.KeepAlive(kill)
	}
	runtime.KeepAlive(errno)
}
