package seccomp

import (
	"encoding/binary"
	"testing"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/seccomp/bpf"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

// markerErrno marks the default action in the real-load tests: no syscall
// returns it by itself.
const markerErrno = 1000

// safeProbes are syscalls (x86_64 numbers) that do no harm when allowed:
// their arguments are invalid, or they only read.
func safeProbes() []probe {
	const bad = 0xffffffffffffffff
	p := func(nr uint32, args ...uint64) probe {
		var a [6]uint64
		copy(a[:], args)
		return probe{Nr: nr, Args: a}
	}
	return []probe{
		p(39), p(110), p(186), // getpid, getppid, gettid
		p(272, 0xffffffff),           // unshare(bad flags)
		p(165),                       // mount(NULL, ...)
		p(166),                       // umount2(NULL, 0)
		p(250, 0x7fffffff),           // keyctl(bad op)
		p(248),                       // add_key(NULL, ...)
		p(308, bad),                  // setns(-1, 0)
		p(101, bad, 0, 0, 0),         // ptrace(bad request)
		p(135, 0xffffffff),           // personality(query)
		p(135, 0x1234),               // personality(not allowed)
		p(41, 38, 1, 0),              // socket(AF_ALG)
		p(41, 40, 1, 0),              // socket(AF_VSOCK)
		p(41, 39, 1, 0),              // socket(39)
		p(41, 0xffffffff00000026, 1), // socket(AF_ALG with high bits)
		p(435),                       // clone3(NULL, 0)
		p(321, bad),                  // bpf(bad command)
		p(298),                       // perf_event_open(NULL, ...)
		p(103, bad),                  // syslog(bad type)
		p(169),                       // reboot(0, 0, ...): bad magic
		p(175),                       // init_module(NULL, 0, NULL)
		p(176),                       // delete_module(NULL)
		p(161),                       // chroot(NULL)
		p(172, 99),                   // iopl(99)
		p(163, 1),                    // acct(bad pointer)
		p(179, bad),                  // quotactl(bad)
		p(303, bad),                  // name_to_handle_at(-1, NULL, ...)
		p(304, bad),                  // open_by_handle_at(-1, NULL, 0)
		p(425),                       // io_uring_setup(0, NULL)
		p(440, bad),                  // process_madvise(-1, ...)
		p(500),                       // newer than the tables
		p(1000),                      // far beyond
	}
}

// The kernel runs berth's program as the interpreter does: for Docker's
// default profile (with a marker errno as default action) under several
// capability sets, a child makes real syscalls and every errno is the one
// the interpreter predicted.
func TestRealLoadMatchesInterpreter(t *testing.T) {
	requireBusybox(t)
	native := syscalls.Native()
	if native == nil || native.Name != "x86_64" {
		t.Skip("probes are x86_64 syscall numbers")
	}
	for name, capList := range map[string][]string{"docker-default": caps.DockerDefault, "sys_admin": {"CAP_SYS_ADMIN"}, "all": caps.All(caps.MaxKnown).Names()} {
		t.Run(name, func(t *testing.T) {
			cfg, err := DefaultProfile(capList)
			if err != nil {
				t.Fatal(err)
			}
			e := uint(markerErrno)
			cfg.DefaultErrnoRet = &e
			prog, err := Compile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			probes := safeProbes()
			got := runProbes(t, prog, probes)
			for i, p := range probes {
				d := bpf.Data{Nr: p.Nr, Arch: native.Audit, Args: p.Args}
				r, err := bpf.Run(prog.Instructions, &d, binary.LittleEndian, false)
				if err != nil {
					t.Fatal(err)
				}
				switch r.Action & bpf.RetActionFull {
				case bpf.RetErrno:
					if got[i] != int(r.Action&bpf.RetData) {
						t.Errorf("%s%x: kernel errno %d, interpreter ERRNO(%d)", native.NameOf(p.Nr), p.Args[:2], got[i], r.Action&bpf.RetData)
					}
				case bpf.RetAllow:
					if got[i] == markerErrno {
						t.Errorf("%s%x: the kernel applied the default action, the interpreter allows", native.NameOf(p.Nr), p.Args[:2])
					}
				default:
					t.Fatalf("unexpected action %s", bpf.ActionString(r.Action))
				}
			}
			// The probes include both outcomes.
			denied := 0
			for _, g := range got {
				if g == markerErrno {
					denied++
				}
			}
			if denied == 0 || denied == len(got) {
				t.Fatalf("%d of %d probes denied: the sample does not test both sides", denied, len(got))
			}
		})
	}
}
