//go:build cgo && libseccomp

// Command seccompbench prints berth's seccomp compiler side by side with
// libseccomp (as runc drives it) on the same profiles: program length,
// instructions executed per allowed and per denied syscall (berth's own
// interpreter, every syscall of the native architecture, arguments 0),
// how many syscalls allowed outright the kernel's action cache
// recognises, and compile time (medians of several rounds, with ratios).
// Run: make bench, or
//
//	CGO_ENABLED=1 go run -tags libseccomp ./seccomp/internal/seccompbench
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/seccomp"
	"github.com/berth-dev/berth/seccomp/bpf"
	"github.com/berth-dev/berth/seccomp/explain"
	"github.com/berth-dev/berth/seccomp/internal/libseccomp"
	"github.com/berth-dev/berth/seccomp/profile"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

type result struct {
	name           string
	n              int
	st             explain.Stats
	cold, warm     time.Duration
	warmMem        time.Duration
	notCachedNames []string
}

func main() {
	rounds := flag.Int("rounds", 7, "rounds per timing (the median is printed)")
	v20 := flag.String("v20", "seccomp/profile/testdata/moby-default-v20.10.24.json", "the installed Docker's (20.10.24) default profile")
	flag.Parse()
	arch := syscalls.Native()
	kernel, err := seccomp.KernelVersion()
	check(err)
	env := profile.Env{Arch: arch, Caps: caps.DockerDefault, Kernel: kernel}

	type prof struct {
		name string
		cfg  *specs.LinuxSeccomp
	}
	var profs []prof
	cfg, err := seccomp.FromDockerJSONFor(profile.DefaultJSON(), env)
	check(err)
	profs = append(profs, prof{"Docker default (moby master), Docker's capabilities", cfg})
	if data, err := os.ReadFile(*v20); err == nil {
		cfg, err := seccomp.FromDockerJSONFor(data, env)
		check(err)
		profs = append(profs, prof{"Docker 20.10.24 default (installed here), Docker's capabilities", cfg})
	}
	profs = append(profs, prof{"the talk's deny_unshare.json", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"unshare"}, Action: specs.ActKill}}}})

	fmt.Printf("seccomp filters on %s, kernel %d.%d, libseccomp %s; instructions executed are berth's interpreter's count for every %s syscall with arguments 0; times are medians of %d rounds\n\n",
		arch.Name, kernel[0], kernel[1], libseccomp.Version(), arch.Name, *rounds)
	for _, p := range profs {
		fmt.Printf("%s (%d rules, architectures %v)\n", p.name, len(p.cfg.Syscalls), p.cfg.Architectures)
		rows := []result{measureBerth(p.cfg, arch, *rounds)}
		for _, tree := range []bool{false, true} {
			rows = append(rows, measureLib(p.cfg, arch, tree, *rounds))
		}
		fmt.Printf("  %-28s %7s  %-17s %-17s %-13s %10s %12s\n", "compiler", "length", "allowed med/max", "denied med/max", "action cache", "compile", "warm cache")
		for _, r := range rows {
			warm := "-"
			if r.warm > 0 {
				warm = fmt.Sprintf("%v/%v", round(r.warm), round(r.warmMem))
			}
			fmt.Printf("  %-28s %7d  %-17s %-17s %-13s %10v %12s\n", r.name, r.n,
				fmt.Sprintf("%d / %d", r.st.AllowedMedian, r.st.AllowedMax),
				fmt.Sprintf("%d / %d", r.st.DeniedMedian, r.st.DeniedMax),
				fmt.Sprintf("%d/%d", r.st.ConstAllow, r.st.UnconditionalAllow), round(r.cold), warm)
		}
		b := rows[0]
		for _, l := range rows[1:] {
			fmt.Printf("  berth vs %-19s length %.2fx, allowed median %.2fx, denied median %.2fx, compile %.2fx\n", l.name+":",
				ratio(b.n, l.n), ratio(b.st.AllowedMedian, l.st.AllowedMedian), ratio(b.st.DeniedMedian, l.st.DeniedMedian), float64(b.cold)/float64(l.cold))
		}
		if len(b.notCachedNames) > 0 {
			fmt.Printf("  berth: allowed outright but not in the action cache: %s\n", strings.Join(b.notCachedNames, " "))
		}
		fmt.Println()
	}
	fmt.Println("warm cache: berth's disk cache as a fresh berth-runtime process sees it / this process's memory cache")
}

func measureBerth(cfg *specs.LinuxSeccomp, arch *syscalls.Arch, rounds int) result {
	dir, err := os.MkdirTemp("", "berth-seccomp-bench-")
	check(err)
	defer os.RemoveAll(dir)
	var cold, warm, mem []time.Duration
	var prog *seccomp.Program
	for i := 0; i < rounds; i++ {
		seccomp.CacheDir = ""
		seccomp.ResetMemoryCache()
		t0 := time.Now()
		p, err := seccomp.CompileFor(cfg, arch)
		cold = append(cold, time.Since(t0))
		check(err)
		prog = p
		seccomp.CacheDir = filepath.Join(dir, "cache")
		seccomp.ResetMemoryCache()
		_, err = seccomp.CompileFor(cfg, arch) // fills the disk cache
		check(err)
		seccomp.ResetMemoryCache()
		t0 = time.Now()
		_, err = seccomp.CompileFor(cfg, arch) // disk hit, as a fresh process
		warm = append(warm, time.Since(t0))
		check(err)
		t0 = time.Now()
		_, err = seccomp.CompileFor(cfg, arch) // memory hit
		mem = append(mem, time.Since(t0))
		check(err)
	}
	r := stats("berth", prog.Instructions, arch)
	r.cold, r.warm, r.warmMem = median(cold), median(warm), median(mem)
	return r
}

func measureLib(cfg *specs.LinuxSeccomp, arch *syscalls.Arch, tree bool, rounds int) result {
	var times []time.Duration
	var prog []bpf.Instruction
	for i := 0; i < rounds; i++ {
		t0 := time.Now()
		p, _, err := libseccomp.Build(cfg, arch.SCMP, libseccomp.Options{Tree: tree})
		times = append(times, time.Since(t0))
		check(err)
		prog = p
	}
	name := "libseccomp (runc, linear)"
	if tree {
		name = "libseccomp (binary tree)"
	}
	r := stats(name, prog, arch)
	r.cold = median(times)
	return r
}

func stats(name string, prog []bpf.Instruction, arch *syscalls.Arch) result {
	rows, err := explain.Table(prog, arch)
	check(err)
	st := explain.Summarise(rows)
	return result{name: name, n: len(prog), st: st, notCachedNames: st.NotCachedUnconditionalName}
}

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

func round(d time.Duration) time.Duration {
	if d > time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond / 10)
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "seccompbench:", err)
		os.Exit(1)
	}
}
