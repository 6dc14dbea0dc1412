package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/internal/busybox"
	"github.com/berth-dev/berth/internal/testregistry"
	"github.com/berth-dev/berth/registry"
)

// proof2Tar is a one-file tar (an image to import).
func proof2Tar(t *testing.T, name, body string) string {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write([]byte(body))
	tw.Close()
	f, err := os.CreateTemp(t.TempDir(), "img-*.tar")
	if err != nil {
		t.Fatal(err)
	}
	f.Write(b.Bytes())
	f.Close()
	return f.Name()
}

var proof2Percent = regexp.MustCompile(`([0-9]+\.[0-9]+)%`)

// TestEngineProof2Stats: `docker stats` streams a sample a second, the
// CPU of a busy container shows in a later one, and each streamed API
// object's precpu_stats is the previous object's cpu_stats (dockerd's
// contract, from which the CLI computes CPU %).
func TestEngineProof2Stats(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	id := strings.TrimSpace(e.docker("run", "-d", "busybox", "sh", "-c", "while :; do :; done"))

	ctx, cancel := context.WithTimeout(context.Background(), 3500*time.Millisecond)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "stats", "--format", "{{.CPUPerc}}", id)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.host(), "DOCKER_CONFIG="+e.dockerC)
	out, _ := cmd.Output() // ended by the timeout
	// The CLI redraws every half second whether or not a sample came:
	// count the values, not the redraws.
	var samples []float64
	for _, m := range proof2Percent.FindAllStringSubmatch(string(out), -1) {
		f, _ := strconv.ParseFloat(m[1], 64)
		if len(samples) == 0 || samples[len(samples)-1] != f {
			samples = append(samples, f)
		}
	}
	t.Logf("docker stats CPU values in 3.5 s: %v", samples)
	if len(samples) < 2 {
		t.Fatalf("docker stats streamed %d distinct CPU values in 3.5 s, want at least 2:\n%q", len(samples), out)
	}
	busy := false
	for _, f := range samples[1:] {
		busy = busy || f > 10
	}
	if !busy {
		t.Errorf("no sample after the first shows the busy loop's CPU (> 10%%): %v", samples)
	}

	cli, err := client.NewClientWithOpts(client.WithHost(e.host()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	actx, acancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer acancel()
	resp, err := cli.ContainerStats(actx, id, true)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(resp.Body)
	var first, second container.StatsResponse
	if err := dec.Decode(&first); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&second); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if first.CPUStats.CPUUsage.TotalUsage == 0 {
		t.Fatalf("first sample has no CPU usage: %+v", first.CPUStats)
	}
	if second.PreCPUStats.CPUUsage.TotalUsage != first.CPUStats.CPUUsage.TotalUsage ||
		second.PreCPUStats.SystemUsage != first.CPUStats.SystemUsage || !second.PreRead.Equal(first.Read) {
		t.Errorf("second object's precpu_stats (%d, system %d, %s) is not the first's cpu_stats (%d, system %d, %s)",
			second.PreCPUStats.CPUUsage.TotalUsage, second.PreCPUStats.SystemUsage, second.PreRead,
			first.CPUStats.CPUUsage.TotalUsage, first.CPUStats.SystemUsage, first.Read)
	}
	if d := second.Read.Sub(first.Read); d < 500*time.Millisecond || d > 3*time.Second {
		t.Errorf("streamed samples %s apart, want about a second", d)
	}
	if second.CPUStats.CPUUsage.TotalUsage <= first.CPUStats.CPUUsage.TotalUsage {
		t.Errorf("busy container's CPU usage did not grow: %d then %d", first.CPUStats.CPUUsage.TotalUsage, second.CPUStats.CPUUsage.TotalUsage)
	}
	e.docker("rm", "-f", id)
}

// TestEngineProof2LogsSinceUntil: --since and --until cut the log at a
// time between two lines.
func TestEngineProof2LogsSinceUntil(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	id := strings.TrimSpace(e.docker("run", "-d", "busybox", "sh", "-c", "echo first; sleep 2; echo second"))
	if out := e.docker("wait", id); out != "0\n" {
		t.Fatalf("wait: %q", out)
	}
	lines := strings.Split(strings.TrimSpace(e.docker("logs", "--timestamps", id)), "\n")
	if len(lines) != 2 {
		t.Fatalf("logs -t: %q", lines)
	}
	var ts []time.Time
	for _, l := range lines {
		stamp, _, _ := strings.Cut(l, " ")
		tm, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			t.Fatalf("logs -t line %q: %v", l, err)
		}
		ts = append(ts, tm)
	}
	if gap := ts[1].Sub(ts[0]); gap < 1500*time.Millisecond {
		t.Fatalf("lines %s apart, want about 2 s", gap)
	}
	mid := ts[0].Add(ts[1].Sub(ts[0]) / 2).Format(time.RFC3339Nano)
	if out := e.docker("logs", "--since", mid, id); out != "second\n" {
		t.Errorf("logs --since %s: %q, want only the second line", mid, out)
	}
	if out := e.docker("logs", "--until", mid, id); out != "first\n" {
		t.Errorf("logs --until %s: %q, want only the first line", mid, out)
	}
	if out := e.docker("logs", "--since", ts[0].Add(-time.Second).Format(time.RFC3339Nano), "--until", ts[1].Add(time.Second).Format(time.RFC3339Nano), id); out != "first\nsecond\n" {
		t.Errorf("logs --since/--until around both: %q", out)
	}
	e.docker("rm", id)
}

// TestEngineProof2Prune: image prune removes dangling images (an import
// without a tag, and an image whose tag moved to another) and keeps tagged
// ones; container prune removes stopped containers and keeps running ones.
func TestEngineProof2Prune(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	untagged := strings.TrimSpace(e.docker("import", proof2Tar(t, "a", "untagged\n")))
	moved := strings.TrimSpace(e.docker("import", proof2Tar(t, "b", "moved away\n"), "berth-proof-moved:v1"))
	kept := strings.TrimSpace(e.docker("import", proof2Tar(t, "c", "moved here\n"), "berth-proof-moved:v1"))
	if moved == kept || untagged == moved {
		t.Fatalf("imports gave the same id: %s %s %s", untagged, moved, kept)
	}
	dangling := e.docker("images", "-q", "--no-trunc", "--filter", "dangling=true")
	if !strings.Contains(dangling, untagged) || !strings.Contains(dangling, moved) || strings.Contains(dangling, kept) {
		t.Fatalf("dangling images before prune:\n%s", dangling)
	}
	out := e.docker("image", "prune", "-f")
	if !strings.Contains(out, "deleted: "+untagged) || !strings.Contains(out, "deleted: "+moved) || !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("image prune -f output:\n%s", out)
	}
	all := e.docker("images", "-a", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}")
	for _, id := range []string{untagged, moved} {
		if strings.Contains(all, id) {
			t.Errorf("dangling image %s left by image prune:\n%s", id, all)
		}
	}
	if !strings.Contains(all, kept+" berth-proof-moved:v1\n") || !strings.Contains(all, " busybox:latest\n") {
		t.Errorf("tagged images after image prune:\n%s", all)
	}
	if _, errs, code := e.dockerQuiet("image", "inspect", untagged); code == 0 || !strings.Contains(errs, "No such image") {
		t.Errorf("inspect of a pruned image: %d %s", code, errs)
	}

	running := strings.TrimSpace(e.docker("run", "-d", "busybox", "sleep", "1000"))
	exited := strings.TrimSpace(e.docker("run", "-d", "busybox", "true"))
	failed := strings.TrimSpace(e.docker("run", "-d", "busybox", "sh", "-c", "exit 3"))
	e.docker("wait", exited, failed)
	before := e.docker("ps", "-aq", "--no-trunc")
	for _, id := range []string{running, exited, failed} {
		if !strings.Contains(before, id) {
			t.Fatalf("ps -a before prune lacks %s:\n%s", id, before)
		}
	}
	out = e.docker("container", "prune", "-f")
	if !strings.Contains(out, exited) || !strings.Contains(out, failed) || strings.Contains(out, running) {
		t.Errorf("container prune -f output:\n%s", out)
	}
	if after := e.docker("ps", "-aq", "--no-trunc"); after != running+"\n" {
		t.Errorf("ps -a after container prune: %q, want only the running %s", after, running)
	}
	if st := e.docker("inspect", "-f", "{{.State.Status}}", running); st != "running\n" {
		t.Errorf("running container after prune: %q", st)
	}
	// The tagged image survived both prunes whole.
	if out := e.docker("run", "--rm", "busybox", "echo", "ok"); out != "ok\n" {
		t.Errorf("run after prunes: %q", out)
	}
}

// TestEngineProof2StartupReconcile: what a crashed operation leaves in the
// data and exec roots is cleaned when the daemon starts (engine/load.go),
// and the real containers are still there.
func TestEngineProof2StartupReconcile(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	running := strings.TrimSpace(e.docker("run", "-d", "busybox", "sleep", "1000"))
	stopped := strings.TrimSpace(e.docker("run", "-d", "--name", randomName("berth-proof-stopped"), "busybox", "true"))
	half := strings.TrimSpace(e.docker("create", "busybox", "true"))
	e.docker("wait", stopped)
	e.stop(syscall.SIGTERM)

	data := filepath.Join(e.dir, "data", "containers")
	bundles := filepath.Join(e.dir, "x", "containers")
	hexID := func(c byte) string { return strings.Repeat(string(c), 64) }
	// A directory without a record (crash between mkdir and the first save).
	noRecord := filepath.Join(data, hexID('a'))
	os.MkdirAll(noRecord, 0o700)
	os.WriteFile(filepath.Join(noRecord, hexID('a')+"-json.log"), []byte("{}\n"), 0o600)
	// An empty record (an --rm container's unsynced record after a crash).
	empty := filepath.Join(data, hexID('b'))
	os.MkdirAll(empty, 0o700)
	os.WriteFile(filepath.Join(empty, "config.v2.json"), nil, 0o600)
	// A temporary record beside a real one (crash during a save).
	tmpRecord := filepath.Join(data, stopped, "config.v2.json.tmp")
	if err := os.WriteFile(tmpRecord, []byte(`{"half":`), 0o600); err != nil {
		t.Fatal(err)
	}
	// A removal interrupted after the state became "removing".
	halfDir := filepath.Join(data, half)
	rec, err := os.ReadFile(filepath.Join(halfDir, "config.v2.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(rec, &m); err != nil {
		t.Fatal(err)
	}
	m["State"].(map[string]any)["Status"] = "removing"
	rec, _ = json.Marshal(m)
	if err := os.WriteFile(filepath.Join(halfDir, "config.v2.json"), rec, 0o600); err != nil {
		t.Fatal(err)
	}
	halfSnap := filepath.Join(e.dir, "data", "snapshots", "containers", half)
	if _, err := os.Stat(halfSnap); err != nil {
		t.Fatalf("created container has no snapshot where the test looks: %v", err)
	}
	// Bundles: one of no container, one of a stopped container.
	for _, id := range []string{hexID('c'), stopped} {
		os.MkdirAll(filepath.Join(bundles, id), 0o700)
		os.WriteFile(filepath.Join(bundles, id, "config.json"), []byte("{}"), 0o600)
	}
	if _, err := os.Stat(filepath.Join(bundles, running)); err != nil {
		t.Fatalf("the running container has no bundle where the test looks: %v", err)
	}

	e.start()
	for what, p := range map[string]string{"directory without a record": noRecord, "empty record": empty,
		"temporary record": tmpRecord, "half-removed container": halfDir, "half-removed container's snapshot": halfSnap,
		"bundle of no container": filepath.Join(bundles, hexID('c')), "bundle of a stopped container": filepath.Join(bundles, stopped)} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after start-up: %s (%v)", what, p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(bundles, running)); err != nil {
		t.Errorf("the running container's bundle went: %v", err)
	}
	ps := e.docker("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.State}}")
	want := map[string]bool{running + " running": true, stopped + " exited": true}
	for _, l := range strings.Split(strings.TrimSpace(ps), "\n") {
		if !want[l] {
			t.Errorf("ps -a after start-up lists %q", l)
		}
		delete(want, l)
	}
	if len(want) != 0 {
		t.Errorf("ps -a after start-up lacks %v:\n%s", want, ps)
	}
	if out := e.docker("exec", running, "echo", "alive"); out != "alive\n" {
		t.Errorf("exec in the running container after start-up: %q", out)
	}
	if out := e.docker("start", "-a", stopped); out != "" {
		t.Errorf("start of the stopped container after start-up: %q", out)
	}
}

// TestEngineProof2PullBusyboxThroughMirror: the talk's `docker pull
// busybox` (Docker Hub, bare name), served by a --registry-mirror on
// loopback.
func TestEngineProof2PullBusyboxThroughMirror(t *testing.T) {
	reg := testregistry.StartT(t, testregistry.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src, err := image.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var tb bytes.Buffer
	if err := busybox.WriteTar(&tb); err != nil {
		t.Skip(err)
	}
	ref := reg.Host + "/library/busybox:latest"
	if _, err := src.Import(&tb, ref, []string{`CMD ["sh"]`}, ""); err != nil {
		t.Fatal(err)
	}
	pushed, err := registry.Push(ctx, src, ref, registry.PushOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}

	e := newEngine(t, "--registry-mirror", "http://"+reg.Host)
	out, errs, code := e.dockerQuiet("pull", "busybox")
	if code != 0 {
		t.Fatalf("docker pull busybox: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"Using default tag: latest\n", "latest: Pulling from library/busybox\n",
		"Digest: " + pushed.Digest.String() + "\n", "Status: Downloaded newer image for busybox:latest\n", "docker.io/library/busybox:latest\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker pull busybox output lacks %q:\n%s", want, out)
		}
	}
	if imgs := e.docker("images", "--format", "{{.Repository}}:{{.Tag}}"); imgs != "busybox:latest\n" {
		t.Errorf("images after pull: %q", imgs)
	}
	if d := e.docker("image", "inspect", "-f", "{{index .RepoDigests 0}}", "busybox"); d != "busybox@"+pushed.Digest.String()+"\n" {
		t.Errorf("RepoDigests: %q, want busybox@%s", d, pushed.Digest)
	}
	if out := e.docker("run", "--rm", "busybox", "echo", "ok"); out != "ok\n" {
		t.Errorf("docker run --rm busybox echo ok: %q", out)
	}
}

// proof2Gate is a proxy in front of a registry that holds layer blob
// downloads to count how many the daemon runs at once: each waits until
// want are in flight (then all go on) or for hold; with giveUp, the first
// to wait that long lets every download go on.
type proof2Gate struct {
	proxy  http.Handler
	layers map[string]bool
	want   int
	hold   time.Duration
	giveUp bool

	mu       sync.Mutex
	inFlight int
	maxSeen  int
	timedOut int
	served   int
	reached  chan struct{}
}

func (g *proof2Gate) reset(want int, hold time.Duration, giveUp bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.want, g.hold, g.giveUp, g.maxSeen, g.timedOut, g.served, g.reached = want, hold, giveUp, 0, 0, 0, make(chan struct{})
}

func (g *proof2Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := strings.LastIndex(r.URL.Path, "/blobs/")
	if r.Method != http.MethodGet || i < 0 || !g.layers[r.URL.Path[i+len("/blobs/"):]] {
		g.proxy.ServeHTTP(w, r)
		return
	}
	g.mu.Lock()
	g.inFlight++
	g.served++
	g.maxSeen = max(g.maxSeen, g.inFlight)
	reached, hold := g.reached, g.hold
	if g.inFlight >= g.want {
		g.release()
	}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inFlight--
		g.mu.Unlock()
	}()
	select {
	case <-reached:
	case <-time.After(hold):
		g.mu.Lock()
		g.timedOut++
		if g.giveUp {
			g.release()
		}
		g.mu.Unlock()
	case <-r.Context().Done():
		return
	}
	g.proxy.ServeHTTP(w, r)
}

// release lets every held download go on; call with g.mu held.
func (g *proof2Gate) release() {
	select {
	case <-g.reached:
	default:
		close(g.reached)
	}
}

// TestEngineProof2MaxConcurrentDownloads: the daemon pulls the layers of
// an image in parallel (three at once by default) and one at a time with
// daemon.json's "max-concurrent-downloads": 1 or dockerd's flag of that
// name.
func TestEngineProof2MaxConcurrentDownloads(t *testing.T) {
	reg := testregistry.StartT(t, testregistry.Options{})
	img := mutate.MediaType(empty.Image, types.DockerManifestSchema2)
	for range 4 {
		l, err := random.Layer(4096, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.Host+"/berth-test/layers:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	g := &proof2Gate{proxy: httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: reg.Host}), layers: map[string]bool{}}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		g.layers[d.String()] = true
	}
	srv := httptest.NewServer(g)
	defer srv.Close()
	proxied := strings.TrimPrefix(srv.URL, "http://") + "/berth-test/layers:v1"

	e := newEngine(t)
	baseArgs := e.args
	for _, tc := range []struct {
		config        string
		flags         []string
		want, wantMax int
		hold          time.Duration
		wantTimedOut  int
	}{
		// Held until three are in flight: a daemon that never opens a
		// third fails after 5 s.
		{"{}", nil, 3, 3, 5 * time.Second, 0},
		// Each held 300 ms, time for a second to start if it would.
		{`{"max-concurrent-downloads": 1}`, nil, 2, 1, 300 * time.Millisecond, 4},
		{"{}", []string{"--max-concurrent-downloads", "1"}, 2, 1, 300 * time.Millisecond, 4},
	} {
		if err := os.WriteFile(filepath.Join(e.dir, "daemon.json"), []byte(tc.config), 0o644); err != nil {
			t.Fatal(err)
		}
		e.stop(syscall.SIGTERM)
		e.args = append(slices.Clip(baseArgs), tc.flags...)
		e.start()
		g.reset(tc.want, tc.hold, tc.wantTimedOut == 0)
		e.docker("pull", proxied)
		g.mu.Lock()
		got := fmt.Sprintf("max %d in flight, %d waited %s, %d layer downloads", g.maxSeen, g.timedOut, tc.hold, g.served)
		g.mu.Unlock()
		t.Logf("daemon.json %s, flags %v: %s", tc.config, tc.flags, got)
		if want := fmt.Sprintf("max %d in flight, %d waited %s, 4 layer downloads", tc.wantMax, tc.wantTimedOut, tc.hold); got != want {
			t.Errorf("daemon.json %s, flags %v: %s, want %s", tc.config, tc.flags, got, want)
		}
		if n := e.docker("image", "inspect", "-f", "{{len .RootFS.Layers}}", proxied); n != "4\n" {
			t.Errorf("pulled image has %q layers, want 4", n)
		}
		e.docker("rmi", proxied)
	}
}
