package seccomp

import (
	"math/rand"
	"testing"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/seccomp/profile"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

// Random profiles of every shape (several conditional rules of one
// syscall on different arguments, mixed actions, repeated arguments):
// the program agrees with berth's reference semantics everywhere.
func TestRandomProfilesEquivalence(t *testing.T) {
	n := 120
	if testing.Short() {
		n = 20
	}
	for i := 0; i < n; i++ {
		checkRandom(t, int64(i), i%2 == 0, uint8(i))
		if t.Failed() {
			t.Fatalf("seed %d", i)
		}
	}
}

func checkRandom(t *testing.T, seed int64, anyShape bool, archIdx uint8) {
	t.Helper()
	arches := syscalls.All()
	arch := arches[int(archIdx)%len(arches)]
	if arch.Name == "x32" {
		arch = arches[0]
	}
	cfg := genProfile(rand.New(rand.NewSource(seed)), arch, anyShape)
	rs, err := resolve(cfg, arch)
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	prog, err := rs.generate()
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	checkEquivalent(t, rs, prog)
}

func FuzzCompile(f *testing.F) {
	f.Add(int64(1), true, uint8(0))
	f.Add(int64(7), false, uint8(3))
	f.Add(int64(42), true, uint8(6))
	f.Fuzz(func(t *testing.T, seed int64, anyShape bool, archIdx uint8) {
		checkRandom(t, seed, anyShape, archIdx)
	})
}

// FuzzFromDockerJSON: any Docker profile either fails with an error or
// compiles, for Docker's default capabilities, to a valid program that
// agrees with the reference semantics.
func FuzzFromDockerJSON(f *testing.F) {
	f.Add(profile.DefaultJSON())
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"unshare","action":"SCMP_ACT_KILL"}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[{"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":40,"op":"SCMP_CMP_GT"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		arch := syscalls.All()[0]
		cfg, err := FromDockerJSONFor(data, profile.Env{Arch: arch, Caps: caps.DockerDefault, Kernel: [2]int{6, 18}})
		if err != nil || cfg == nil {
			return
		}
		rs, err := resolve(cfg, arch)
		if err != nil {
			return // e.g. an errnoRet out of range: an error, not a panic
		}
		prog, err := rs.generate()
		if err != nil {
			t.Fatalf("valid configuration does not compile: %v", err)
		}
		checkEquivalent(t, rs, prog)
	})
}
