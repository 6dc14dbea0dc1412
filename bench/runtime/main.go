// Command runtime-bench compares `berth-runtime run` with `runc run` on
// the same busybox bundle (`runc spec`'s config: new pid, network, ipc,
// uts and mount namespaces, a read-only root, no terminal), side by side
// in one run: rounds interleaved (who goes first alternates), medians,
// ratios. Run as root (make bench, or directly):
//
//	go run ./bench/runtime [-rounds 15] [-runc runc] [-berth bin/berth-runtime]
//
// Wall time: `RUNTIME run --bundle B ID` with process.args ["true"], from
// fork to exit (create, start, wait, delete). Peak RSS: the same run with
// a tiny static program as the process that prints its own ru_maxrss
// (which covers the runtime's init stage before it exec'd), plus the RSS
// high-water mark of every other process the runtime started, from the
// kernel's taskstats exit records; the largest single process is printed
// too. Each runtime keeps its state in its own temporary --root; all of it
// lives in one temporary directory, removed at the end.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/busybox"
	"golang.org/x/sys/unix"
)

const maxrssC = `#include <stdio.h>
#include <sys/resource.h>
int main(void) { struct rusage u; getrusage(RUSAGE_SELF, &u); printf("maxrss %ld\n", u.ru_maxrss); return 0; }
`

var verbose bool // -v: every process of each RSS run

type sample struct {
	wall      time.Duration
	sumKB     uint64 // every process of the run
	largestKB uint64 // the largest one
	procs     int
}

func main() {
	rounds := flag.Int("rounds", 15, "rounds (medians are reported; at least 10 is sensible)")
	runcBin := flag.String("runc", "runc", "runc binary")
	berthBin := flag.String("berth", "bin/berth-runtime", "berth-runtime binary")
	keep := flag.Bool("keep", false, "keep the temporary directory")
	flag.BoolVar(&verbose, "v", false, "print every process of each RSS run")
	flag.Parse()
	if os.Geteuid() != 0 {
		fatal("run as root")
	}
	runtimes := []struct{ name, path string }{{"runc", *runcBin}, {"berth", *berthBin}}
	for i := range runtimes {
		p, err := exec.LookPath(runtimes[i].path)
		if err != nil {
			fatal("%s: %v", runtimes[i].name, err)
		}
		if runtimes[i].path, err = filepath.Abs(p); err != nil {
			fatal("%v", err)
		}
	}
	dir, err := os.MkdirTemp("/tmp", "berth-bench-runtime-")
	if err != nil {
		fatal("%v", err)
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	os.Chmod(dir, 0o755)
	bundle := filepath.Join(dir, "bundle")
	if err := makeBundle(bundle, runtimes[0].path); err != nil {
		fatal("bundle: %v", err)
	}
	// Orphans of a runtime's tree come to us, so their exits still count.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fatal("subreaper: %v", err)
	}
	if l, err := listenExits(); err != nil {
		fatal("taskstats (needs CONFIG_TASKSTATS): %v", err)
	} else {
		l.close()
	}

	results := map[string][]sample{}
	// One warm-up run each: berth seals its binary once per build, and
	// both runtimes' binaries come into the page cache.
	for _, rt := range runtimes {
		if _, err := runOnce(rt.path, dir, bundle, "true", "warmup-"+rt.name); err != nil {
			fatal("warm-up %s: %v", rt.name, err)
		}
	}
	for i := 0; i < *rounds; i++ {
		order := []int{0, 1}
		if i%2 == 1 {
			order = []int{1, 0}
		}
		for _, k := range order {
			rt := runtimes[k]
			t, err := runOnce(rt.path, dir, bundle, "true", fmt.Sprintf("t%d-%s", i, rt.name))
			if err != nil {
				fatal("%s round %d: %v", rt.name, i, err)
			}
			m, err := runOnce(rt.path, dir, bundle, "/maxrss", fmt.Sprintf("m%d-%s", i, rt.name))
			if err != nil {
				fatal("%s round %d (rss): %v", rt.name, i, err)
			}
			t.sumKB, t.largestKB, t.procs = m.sumKB, m.largestKB, m.procs
			results[rt.name] = append(results[rt.name], t)
		}
	}
	med := func(name string, f func(sample) float64) float64 {
		var v []float64
		for _, s := range results[name] {
			v = append(v, f(s))
		}
		sort.Float64s(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	wall := func(s sample) float64 { return float64(s.wall.Microseconds()) / 1000 }
	sum := func(s sample) float64 { return float64(s.sumKB) / 1024 }
	largest := func(s sample) float64 { return float64(s.largestKB) / 1024 }
	procs := func(s sample) float64 { return float64(s.procs) }
	fmt.Printf("runtime run, busybox bundle (runc spec: pid, net, ipc, uts, mnt namespaces), %d interleaved rounds, medians\n", *rounds)
	fmt.Printf("%-8s %12s %16s %18s %10s\n", "", "wall ms", "peak RSS sum MiB", "largest proc MiB", "processes")
	for _, rt := range runtimes {
		fmt.Printf("%-8s %12.1f %16.1f %18.1f %10.0f\n", rt.name, med(rt.name, wall), med(rt.name, sum), med(rt.name, largest), med(rt.name, procs))
	}
	fmt.Printf("berth/runc: wall %.2f×, peak RSS sum %.2f×, largest process %.2f× (targets: wall ≤ 0.5×, RSS < 1×)\n",
		med("berth", wall)/med("runc", wall), med("berth", sum)/med("runc", sum), med("berth", largest)/med("runc", largest))
}

func fatal(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "runtime-bench: "+format+"\n", a...)
	os.Exit(1)
}

// makeBundle writes a busybox rootfs with the /maxrss probe and the
// config `runc spec` writes, without a terminal.
func makeBundle(bundle, runc string) error {
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	if err := busybox.Build(rootfs); err != nil {
		return err
	}
	src := filepath.Join(bundle, "maxrss.c")
	if err := os.WriteFile(src, []byte(maxrssC), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command("gcc", "-static", "-Os", "-s", "-o", filepath.Join(rootfs, "maxrss"), src).CombinedOutput(); err != nil {
		return fmt.Errorf("gcc: %v: %s", err, out)
	}
	spec := exec.Command(runc, "spec")
	spec.Dir = bundle
	if out, err := spec.CombinedOutput(); err != nil {
		return fmt.Errorf("runc spec: %v: %s", err, out)
	}
	return nil
}

func setArgs(bundle, arg string) error {
	p := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return err
	}
	proc := cfg["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{arg}
	b, err = json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// runOnce runs one container to completion and measures it: the wall
// time, and with the /maxrss probe the peak RSS of its processes. The
// exit records are listened to only then: every exit on the machine
// wakes the listener, which would slow the timed runs.
func runOnce(bin, dir, bundle, arg, id string) (sample, error) {
	var l *exitListener
	if arg == "/maxrss" {
		var err error
		if l, err = listenExits(); err != nil {
			return sample{}, err
		}
		defer l.close()
	}
	if err := setArgs(bundle, arg); err != nil {
		return sample{}, err
	}
	root := filepath.Join(dir, "state-"+filepath.Base(bin))
	out, err := os.CreateTemp(dir, "out-")
	if err != nil {
		return sample{}, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.Command(bin, "--root", root, "run", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = out, out
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	err = cmd.Wait()
	wall := time.Since(t0)
	b, _ := os.ReadFile(out.Name())
	if err != nil {
		return sample{}, fmt.Errorf("%v: %s", err, b)
	}
	// Reap orphans handed to us.
	for {
		var ws syscall.WaitStatus
		if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
			break
		}
	}
	s := sample{wall: wall}
	if l == nil {
		return s, nil
	}
	time.Sleep(20 * time.Millisecond) // the last exit records
	recs, dropped := l.take()
	if dropped > 0 {
		return sample{}, fmt.Errorf("the kernel dropped %d batches of exit records", dropped)
	}
	probeKB := uint64(0)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "maxrss "); ok {
			probeKB, _ = strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	if probeKB == 0 {
		return sample{}, fmt.Errorf("the probe printed no maxrss: %q", b)
	}
	tree := treeProcesses(recs, cmd.Process.Pid, os.Getpid())
	if _, ok := tree[cmd.Process.Pid]; !ok {
		return sample{}, fmt.Errorf("no exit record of the runtime process")
	}
	for _, r := range tree {
		kb := r.hiwaterKB
		if r.comm == "maxrss" {
			// The container's process: its own ru_maxrss covers the
			// init stage it was before execve.
			kb = probeKB
		}
		if verbose {
			fmt.Fprintf(os.Stderr, "%s %s: pid %d ppid %d %s %d KiB\n", filepath.Base(bin), id, r.tgid, r.ppid, r.comm, kb)
		}
		s.sumKB += kb
		s.largestKB = max(s.largestKB, kb)
		s.procs++
	}
	return s, nil
}
