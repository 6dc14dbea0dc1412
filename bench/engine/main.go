// Command engine benchmarks berth's daemon against dockerd 20.10 (Debian's
// docker.io) side by side, through the same docker CLI, in one run:
//
//   - `docker run --rm --network none busybox true`, wall time
//   - `docker exec CONTAINER true`, wall time
//   - memory per running container: the PSS of berth's monitors over 100
//     containers, and of containerd-shim-runc-v2 over 20 for dockerd
//
// It starts its own dockerd and berth daemon (own data roots, sockets and
// exec roots in a temporary directory under -dir), imports the same
// busybox image into both, alternates the two daemons run by run, prints
// medians and ratios, and removes everything it made. A third "daemon"
// in the alternation answers the same API calls at once without doing
// anything (floor.go): the docker CLI's time against it is the floor no
// daemon can go below, and each daemon's own share is its time above it.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/busybox"
)

type daemon struct {
	name string
	cmd  *exec.Cmd
	host string
	dir  string
}

var (
	dockerCLI = "docker"
	settle    time.Duration
)

func (d *daemon) docker(args ...string) (string, error) {
	cmd := exec.Command(dockerCLI, append([]string{"-H", d.host}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s: docker %s: %w: %s", d.name, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (d *daemon) stop() {
	if d.cmd == nil {
		return
	}
	if out, _ := d.docker("ps", "-aq"); strings.TrimSpace(out) != "" {
		d.docker(append([]string{"rm", "-f"}, strings.Fields(out)...)...)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}

func start(name, dir string, argv []string, sock string) (*daemon, error) {
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &daemon{name: name, cmd: cmd, host: "unix://" + sock, dir: dir}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	for range 600 {
		if resp, err := client.Get("http://d/_ping"); err == nil {
			resp.Body.Close()
			return d, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.cmd.Process.Kill()
	data, _ := os.ReadFile(log.Name())
	return nil, fmt.Errorf("%s did not answer in 30 s: %s", name, data)
}

func timed(f func() error) (time.Duration, error) {
	t := time.Now()
	err := f()
	return time.Since(t), err
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// pss sums Pss and Rss (KiB) of the processes whose command line matches.
func pss(match func(cmdline string) bool) (n int, pssKiB, rssKiB int) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cl, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !match(strings.ReplaceAll(string(cl), "\x00", " ")) {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/smaps_rollup")
		if err != nil {
			continue
		}
		n++
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "Pss:" {
				v, _ := strconv.Atoi(f[1])
				pssKiB += v
			}
			if len(f) >= 2 && f[0] == "Rss:" {
				v, _ := strconv.Atoi(f[1])
				rssKiB += v
			}
		}
	}
	return
}

func main() {
	rounds := flag.Int("rounds", 15, "runs per daemon and measurement")
	berth := flag.String("berth", "bin/berth", "the berth binary (berth-runtime and berth-monitor beside it)")
	dockerd := flag.String("dockerd", "dockerd", "dockerd 20.10 (Debian's docker.io)")
	base := flag.String("dir", "/var/lib", "where both daemons keep their data (a temporary directory below it)")
	nMem := flag.Int("containers", 100, "running containers for berth's memory figure")
	nShim := flag.Int("shims", 20, "running containers for dockerd's memory figure")
	flag.DurationVar(&settle, "settle", 300*time.Millisecond, "pause before each timed command, so the other daemon's work left over from its last command does not count")
	flag.StringVar(&dockerCLI, "docker", "docker", "the docker CLI")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench/engine: run as root")
		os.Exit(1)
	}
	if err := run(*rounds, *berth, *dockerd, *base, *nMem, *nShim); err != nil {
		fmt.Fprintln(os.Stderr, "bench/engine:", err)
		os.Exit(1)
	}
}

func run(rounds int, berth, dockerd, base string, nMem, nShim int) error {
	berth, _ = filepath.Abs(berth)
	dir, err := os.MkdirTemp(base, "berth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	short, err := os.MkdirTemp("/run", "bb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(short)
	tarPath := filepath.Join(dir, "busybox.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		return err
	}
	if err := busybox.WriteTar(f); err != nil {
		return err
	}
	f.Close()

	os.WriteFile(filepath.Join(dir, "none.json"), []byte("{}"), 0o644)
	bd, err := start("berth", dir, []string{berth, "daemon", "--config", filepath.Join(dir, "none.json"),
		"--data-root", filepath.Join(dir, "berth-data"), "--exec-root", filepath.Join(short, "b"), "-H", "unix://" + filepath.Join(short, "berth.sock")},
		filepath.Join(short, "berth.sock"))
	if err != nil {
		return err
	}
	defer bd.stop()
	dd, err := start("dockerd", dir, []string{dockerd, "--data-root", filepath.Join(dir, "docker-data"), "--exec-root", filepath.Join(short, "d"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"), "-H", "unix://" + filepath.Join(short, "docker.sock"),
		"--bridge=none", "--iptables=false", "--ip-masq=false", "--storage-driver", "overlay2"},
		filepath.Join(short, "docker.sock"))
	if err != nil {
		return err
	}
	defer dd.stop()
	daemons := []*daemon{bd, dd}
	for _, d := range daemons {
		if _, err := d.docker("import", tarPath, "busybox"); err != nil {
			return err
		}
		for range 2 { // warm up
			if _, err := d.docker("run", "--rm", "--network", "none", "busybox", "true"); err != nil {
				return err
			}
		}
	}

	fd, closeFloor, err := floorDaemon(filepath.Join(short, "floor.sock"))
	if err != nil {
		return err
	}
	defer closeFloor()
	timedDaemons := append(daemons, fd)

	fmt.Printf("engine: docker CLI against berth daemon and dockerd 20.10, %d alternating runs each (medians, %s settle time before each)\n", rounds, settle)
	runT := map[string][]time.Duration{}
	for r := 0; r < rounds; r++ {
		for _, d := range timedDaemons {
			// Each daemon goes on working after its command returns
			// (dockerd: containerd's task and shim clean-up; berth: the
			// removed container's files): the next command, the other
			// daemon's, starts on a settled host.
			time.Sleep(settle)
			t, err := timed(func() error { _, err := d.docker("run", "--rm", "--network", "none", "busybox", "true"); return err })
			if err != nil {
				return err
			}
			runT[d.name] = append(runT[d.name], t)
		}
	}
	ctr := map[string]string{"floor": "floor"}
	for _, d := range daemons {
		out, err := d.docker("run", "-d", "--network", "none", "busybox", "sleep", "100000")
		if err != nil {
			return err
		}
		ctr[d.name] = strings.TrimSpace(out)
		d.docker("exec", ctr[d.name], "true")
	}
	execT := map[string][]time.Duration{}
	for r := 0; r < rounds; r++ {
		for _, d := range timedDaemons {
			time.Sleep(settle)
			t, err := timed(func() error { _, err := d.docker("exec", ctr[d.name], "true"); return err })
			if err != nil {
				return err
			}
			execT[d.name] = append(execT[d.name], t)
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	show := func(what string, m map[string][]time.Duration, target float64) {
		b, d, f := median(m["berth"]), median(m["dockerd"]), median(m["floor"])
		fmt.Printf("  %-44s berth %7.1f ms   dockerd %7.1f ms   berth/dockerd %.2f (target <= %.1f)\n", what,
			ms(b), ms(d), float64(b)/float64(d), target)
		fmt.Printf("  %-44s floor %7.1f ms (floor/dockerd %.2f): berth's own share %.1f ms, dockerd's %.1f ms\n",
			"  the docker CLI against an instant fake daemon", ms(f), float64(f)/float64(d), ms(b-f), ms(d-f))
	}
	show("docker run --rm --network none busybox true", runT, 0.1)
	show("docker exec CONTAINER true", execT, 0.5)

	// Memory per running container.
	for _, d := range daemons {
		d.docker("rm", "-f", ctr[d.name])
	}
	for i := 0; i < nMem; i++ {
		if _, err := bd.docker("run", "-d", "--network", "none", "busybox", "sleep", "100000"); err != nil {
			return err
		}
	}
	bExec := filepath.Join(short, "b")
	n, p, rss := pss(func(cl string) bool {
		return (strings.Contains(cl, "berth-monitor ") || strings.Contains(cl, " monitor ")) && strings.Contains(cl, bExec+"/")
	})
	if n > 0 {
		fmt.Printf("  %-44s %d monitors: PSS %.0f KiB (%.2f MiB) per container, RSS %.0f KiB (target PSS <= 1 MiB)\n",
			"berth: memory per running container", n, float64(p)/float64(n), float64(p)/float64(n)/1024, float64(rss)/float64(n))
	}
	for i := 0; i < nShim; i++ {
		if _, err := dd.docker("run", "-d", "--network", "none", "busybox", "sleep", "100000"); err != nil {
			return err
		}
	}
	dExec := filepath.Join(short, "d")
	n, p, rss = pss(func(cl string) bool { return strings.Contains(cl, "containerd-shim") && strings.Contains(cl, dExec) })
	if n > 0 {
		fmt.Printf("  %-44s %d shims: PSS %.0f KiB (%.2f MiB) per container, RSS %.0f KiB\n",
			"dockerd: containerd-shim-runc-v2 per container", n, float64(p)/float64(n), float64(p)/float64(n)/1024, float64(rss)/float64(n))
	}
	return nil
}
