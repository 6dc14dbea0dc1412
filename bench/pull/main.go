// Command pull-bench measures pulling and unpacking the same image from
// the same loopback registry with berth and with dockerd 20.10, side by
// side in one run: several rounds, alternating who goes first, medians,
// and ratios. Run as root (make bench, or directly):
//
//	go run ./bench/pull [-rounds 5] [-docker /usr/local/bin/docker]
//
// It starts Debian's docker-registry on a free loopback port and pushes a
// busybox base plus four 16 MiB incompressible layers with 300 small files
// each (about 66 MB in the registry), and a second image sharing all but
// one of those layers. It starts its own dockerd (own --data-root,
// --exec-root, --pidfile and unix socket, --bridge=none
// --iptables=false, --insecure-registry for the registry) and stops it by
// PID, and `berth daemon` likewise. Both are timed as the same docker CLI's
// `docker pull` after `docker rmi` (the `child-pull` mode times the pull
// library alone, for profiling with BERTH_BENCH_CPUPROFILE). Everything lives
// in one temporary directory (below -dir, /var/lib), removed at the end.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/internal/busybox"
	"github.com/berth-dev/berth/internal/testregistry"
	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/snapshot"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child-pull" {
		childPull(os.Args[2], os.Args[3])
		return
	}
	rounds := flag.Int("rounds", 5, "rounds (medians are reported)")
	dockerCLI := flag.String("docker", "docker", "the docker CLI")
	dockerd := flag.String("dockerd", "dockerd", "dockerd (20.10 from Debian's docker.io)")
	berthBin := flag.String("berth", "bin/berth", "the berth binary (make build)")
	base := flag.String("dir", "/var/lib", "where the registry, dockerd and berth keep their data (a temporary directory below it)")
	serve := flag.Bool("serve", false, "only start the registry with the images, print their names and wait for a signal (for profiling)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fail(fmt.Errorf("needs root"))
	}
	// Under /var/lib, where /var/lib/docker and /var/lib/berth live: file
	// creation costs differ wildly between directories of one ext4 (on
	// this VM, 0.8 ms per new inode under /tmp, 16 µs under /var/lib).
	dir, err := os.MkdirTemp(*base, "berth-pull-bench-")
	if err != nil {
		fail(err)
	}
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		os.RemoveAll(dir)
	}()
	run := func() error {
		reg, err := testregistry.Start(filepath.Join(dir, "registry"), testregistry.Options{})
		if err != nil {
			return err
		}
		cleanups = append(cleanups, reg.Stop)
		big, big2, size, err := buildImages(dir, reg.Host)
		if err != nil {
			return err
		}
		if *serve {
			fmt.Println(big, big2)
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
			<-sig
			return nil
		}
		d, err := startDockerd(dir, *dockerd, *dockerCLI, reg.Host)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, d.stop)
		b, err := startBerthd(dir, *berthBin, *dockerCLI)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, b.stop)
		fmt.Printf("image %s: 5 layers, %.1f MB in the registry; second image shares all but one 16 MiB layer\n", big, float64(size)/1e6)
		var bFull, dFull, bShared, dShared []time.Duration
		for r := 0; r < *rounds; r++ {
			berthRound := func() error {
				b.cli("rmi", "-f", big, big2)
				t, err := timeCmd(*dockerCLI, "-H", b.host, "pull", "-q", big)
				if err != nil {
					return err
				}
				t2, err := timeCmd(*dockerCLI, "-H", b.host, "pull", "-q", big2)
				if err != nil {
					return err
				}
				bFull, bShared = append(bFull, t), append(bShared, t2)
				return nil
			}
			dockerRound := func() error {
				d.cli("rmi", "-f", big, big2)
				t, err := timeCmd(*dockerCLI, "-H", d.host, "pull", "-q", big)
				if err != nil {
					return err
				}
				t2, err := timeCmd(*dockerCLI, "-H", d.host, "pull", "-q", big2)
				if err != nil {
					return err
				}
				dFull, dShared = append(dFull, t), append(dShared, t2)
				return nil
			}
			first, second := berthRound, dockerRound
			if r%2 == 1 {
				first, second = dockerRound, berthRound
			}
			if err := first(); err != nil {
				return err
			}
			if err := second(); err != nil {
				return err
			}
			fmt.Printf("  round %d: berth %v + %v, dockerd %v + %v\n", r+1, bFull[r].Round(time.Millisecond), bShared[r].Round(time.Millisecond),
				dFull[r].Round(time.Millisecond), dShared[r].Round(time.Millisecond))
		}
		bm, dm, bs, ds := median(bFull), median(dFull), median(bShared), median(dShared)
		fmt.Printf("docker pull + unpack (docker CLI against each daemon), loopback registry, median of %d rounds:\n", *rounds)
		fmt.Printf("  full image (66 MB)       berth %6.3f s   dockerd 20.10 %6.3f s   berth/dockerd %.2f\n", bm.Seconds(), dm.Seconds(), bm.Seconds()/dm.Seconds())
		fmt.Printf("  sharing all but 1 layer  berth %6.3f s   dockerd 20.10 %6.3f s   berth/dockerd %.2f\n", bs.Seconds(), ds.Seconds(), bs.Seconds()/ds.Seconds())
		return nil
	}
	if err := run(); err != nil {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		cleanups = nil
		os.RemoveAll(dir)
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "pull-bench:", err)
	os.Exit(1)
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func timeCmd(argv ...string) (time.Duration, error) {
	start := time.Now()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
	}
	return time.Since(start), nil
}

// childPull is the berth side: a fresh process pulls into root.
func childPull(root, ref string) {
	if p := os.Getenv("BERTH_BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			fail(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	snaps, err := snapshot.Open(filepath.Join(root, "snapshots"))
	if err != nil {
		fail(err)
	}
	store, err := image.Open(filepath.Join(root, "image"), snaps)
	if err != nil {
		fail(err)
	}
	var cfg registry.Config
	if n := os.Getenv("BERTH_BENCH_DOWNLOADS"); n != "" {
		fmt.Sscan(n, &cfg.MaxConcurrentDownloads)
	}
	if _, err := registry.Pull(context.Background(), store, ref, registry.PullOptions{Config: &cfg}, nil); err != nil {
		fail(err)
	}
}

// bigLayer is a tar of 16 MiB of random bytes and 300 small files.
func bigLayer(i int) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	data := make([]byte, 16<<20)
	rand.Read(data)
	add := func(name string, body []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("layer%d/", i), Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
		return nil, err
	}
	if err := add(fmt.Sprintf("layer%d/blob", i), data); err != nil {
		return nil, err
	}
	for f := range 300 {
		small := make([]byte, 200+f*7)
		rand.Read(small)
		if err := add(fmt.Sprintf("layer%d/file%03d", i, f), small); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), tw.Close()
}

func layerOf(tb []byte) (v1.Layer, error) {
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil }, tarball.WithCompressedCaching)
}

// buildImages pushes busybox (berth import + push, gzip via skopeo-free
// go-containerregistry re-layering) plus the big layers.
func buildImages(dir, host string) (big, big2 string, size int64, err error) {
	var bb bytes.Buffer
	if err := busybox.WriteTar(&bb); err != nil {
		return "", "", 0, err
	}
	base, err := layerOf(bb.Bytes())
	if err != nil {
		return "", "", 0, err
	}
	var layers []v1.Layer
	for i := range 5 {
		tb, err := bigLayer(i)
		if err != nil {
			return "", "", 0, err
		}
		l, err := layerOf(tb)
		if err != nil {
			return "", "", 0, err
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, append([]v1.Layer{base}, layers[:4]...)...)
	if err != nil {
		return "", "", 0, err
	}
	img2, err := mutate.AppendLayers(empty.Image, append([]v1.Layer{base}, append(layers[:3:3], layers[4])...)...)
	if err != nil {
		return "", "", 0, err
	}
	big, big2 = host+"/bench/big:v1", host+"/bench/big2:v1"
	for ref, im := range map[string]v1.Image{big: img, big2: img2} {
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			return "", "", 0, err
		}
		if err := remote.Write(r, im); err != nil {
			return "", "", 0, fmt.Errorf("push %s: %w", ref, err)
		}
	}
	m, err := img.Manifest()
	if err != nil {
		return "", "", 0, err
	}
	for _, l := range m.Layers {
		size += l.Size
	}
	return big, big2, size, nil
}

// daemon is a dockerd the benchmark started.
type daemon struct {
	cmd  *exec.Cmd
	host string
	cli  func(args ...string) error
	dir  string
}

func startDockerd(dir, dockerd, dockerCLI, registryHost string) (*daemon, error) {
	ddir := filepath.Join(dir, "dockerd")
	for _, d := range []string{"data", "exec"} {
		if err := os.MkdirAll(filepath.Join(ddir, d), 0o700); err != nil {
			return nil, err
		}
	}
	sock := filepath.Join(ddir, "docker.sock")
	log, err := os.Create(filepath.Join(ddir, "dockerd.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(dockerd, "--data-root", filepath.Join(ddir, "data"), "--exec-root", filepath.Join(ddir, "exec"),
		"--pidfile", filepath.Join(ddir, "dockerd.pid"), "-H", "unix://"+sock, "--bridge=none", "--iptables=false",
		"--ip-masq=false", "--insecure-registry", registryHost, "--storage-driver", "overlay2")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	return waitDaemon(&daemon{cmd: cmd, host: "unix://" + sock, dir: ddir}, sock, dockerCLI, log.Name())
}

// startBerthd runs `berth daemon` with its own data root and socket.
func startBerthd(dir, berth, dockerCLI string) (*daemon, error) {
	bdir := filepath.Join(dir, "berthd")
	if err := os.MkdirAll(bdir, 0o700); err != nil {
		return nil, err
	}
	sock := filepath.Join(bdir, "berth.sock")
	log, err := os.Create(filepath.Join(bdir, "berthd.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(berth, "daemon", "--data-root", filepath.Join(bdir, "data"), "--exec-root", filepath.Join(bdir, "exec"),
		"-H", "unix://"+sock)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start berth daemon: %w", err)
	}
	return waitDaemon(&daemon{cmd: cmd, host: "unix://" + sock, dir: bdir}, sock, dockerCLI, log.Name())
}

func waitDaemon(d *daemon, sock, dockerCLI, logPath string) (*daemon, error) {
	d.cli = func(args ...string) error {
		return exec.Command(dockerCLI, append([]string{"-H", d.host}, args...)...).Run()
	}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	for range 300 {
		if resp, err := client.Get("http://docker/_ping"); err == nil {
			resp.Body.Close()
			return d, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.stop()
	out, _ := os.ReadFile(logPath)
	return nil, fmt.Errorf("%s did not answer in 30s: %s", d.cmd.Path, out)
}

// stop ends dockerd by its PID and unmounts what it left under its root.
func (d *daemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
	// Unmount anything left below the daemon's directories, deepest first.
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], d.dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		unix.Unmount(m, unix.MNT_DETACH)
	}
}
