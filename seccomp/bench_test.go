package seccomp

import (
	"testing"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/seccomp/profile"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

// go test -bench . ./seccomp: compile times of Docker's default profile.
// (The side-by-side with libseccomp is seccomp/internal/seccompbench.)

func benchProfile(b *testing.B) *syscalls.Arch {
	b.Helper()
	return syscalls.Native()
}

func BenchmarkCompileDefaultCold(b *testing.B) {
	arch := benchProfile(b)
	cfg, err := FromDockerJSONFor(profile.DefaultJSON(), profile.Env{Arch: arch, Caps: caps.DockerDefault, Kernel: [2]int{6, 18}})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		if _, err := compileUncached(cfg, arch); err != nil {
			b.Fatal(err)
		}
	}
}

// Warm: the disk cache as a fresh berth-runtime process finds it.
func BenchmarkCompileDefaultWarmDisk(b *testing.B) {
	arch := benchProfile(b)
	cfg, err := FromDockerJSONFor(profile.DefaultJSON(), profile.Env{Arch: arch, Caps: caps.DockerDefault, Kernel: [2]int{6, 18}})
	if err != nil {
		b.Fatal(err)
	}
	old := CacheDir
	CacheDir = b.TempDir() + "/c"
	defer func() { CacheDir = old }()
	if _, err := CompileFor(cfg, arch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ResetMemoryCache()
		if _, err := CompileFor(cfg, arch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDefaultProfileResolve(b *testing.B) {
	arch := benchProfile(b)
	for i := 0; i < b.N; i++ {
		if _, err := FromDockerJSONFor(profile.DefaultJSON(), profile.Env{Arch: arch, Caps: caps.DockerDefault, Kernel: [2]int{6, 18}}); err != nil {
			b.Fatal(err)
		}
	}
}
