package integration

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestEngineConcurrentRunRm: 20 parallel `docker run --rm` all succeed and
// leave nothing behind (containers, mounts, monitors' sockets, bundles).
func TestEngineConcurrentRunRm(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, stderr, code := e.dockerQuiet("run", "--rm", "busybox", "sh", "-c", fmt.Sprintf("echo %d", i))
			if code != 0 || out != fmt.Sprintf("%d\n", i) {
				errs <- fmt.Sprintf("run %d: exit %d out %q err %q", i, code, out, stderr)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	if out := e.docker("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Fatalf("containers left: %q", out)
	}
	// A removed container's files go in the background, right after.
	for _, d := range []string{"data/containers", "x/containers", "x/m", "data/snapshots/containers", "data/snapshots/tmp", "x/runtime"} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			ents, _ := os.ReadDir(filepath.Join(e.dir, d))
			var left []string
			for _, en := range ents {
				if !strings.HasSuffix(en.Name(), ".lock") {
					left = append(left, en.Name())
				}
			}
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s not empty: %v", d, left)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestEngineDaemonRestart: running containers survive the daemon's
// SIGTERM and SIGKILL; the new daemon finds them (ps, logs, exec, stop),
// and records the exit of one that ended while no daemon ran.
func TestEngineDaemonRestart(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			id := strings.TrimSpace(e.docker("run", "-d", "busybox", "sh", "-c", "echo started; trap 'exit 5' TERM; while true; do sleep 0.1; done"))
			quick := strings.TrimSpace(e.docker("run", "-d", "busybox", "sh", "-c", "sleep 1; exit 9"))
			pid := strings.TrimSpace(e.docker("inspect", "-f", "{{.State.Pid}}", id))
			quickPid := atoi(strings.TrimSpace(e.docker("inspect", "-f", "{{.State.Pid}}", quick)))
			e.stop(sig)
			if err := syscall.Kill(atoi(pid), 0); err != nil {
				t.Fatalf("container process %s died with the daemon: %v", pid, err)
			}
			// The quick one exits while no daemon runs (its init is
			// gone within its second of sleep, however loaded the host).
			for deadline := time.Now().Add(20 * time.Second); syscall.Kill(quickPid, 0) == nil; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the quick container (pid %d) still runs after 20 s", quickPid)
				}
			}
			e.start()
			if out := e.docker("ps", "-q", "--no-trunc"); !strings.Contains(out, id) || strings.Contains(out, quick) {
				t.Fatalf("ps after restart:\n%s", out)
			}
			if out := e.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", quick); out != "exited 9\n" {
				t.Fatalf("container that exited while the daemon was down: %q", out)
			}
			if out := e.docker("logs", id); out != "started\n" {
				t.Fatalf("logs after restart: %q", out)
			}
			if out := e.docker("exec", id, "echo", "still here"); out != "still here\n" {
				t.Fatalf("exec after restart: %q", out)
			}
			e.docker("stop", id)
			if out := e.docker("inspect", "-f", "{{.State.ExitCode}}", id); out != "5\n" {
				t.Fatalf("stop after restart: exit %q", out)
			}
			e.docker("rm", id, quick)
		})
	}
	// --rm containers are removed even when they end while no daemon runs.
	id := strings.TrimSpace(e.docker("run", "-d", "--rm", "busybox", "sleep", "1"))
	e.stop(syscall.SIGKILL)
	time.Sleep(1500 * time.Millisecond)
	e.start()
	waitFor(t, func() bool { return !strings.Contains(e.docker("ps", "-aq", "--no-trunc"), id) })
}

func atoi(s string) int {
	n := 0
	fmt.Sscanf(s, "%d", &n)
	return n
}

// TestEngineBadInput: hostile or malformed requests get Docker-style
// errors, nothing is written outside the data root, and the daemon keeps
// serving.
func TestEngineBadInput(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	c := e.httpClient()
	post := func(path, ctype string, body io.Reader) (int, string) {
		resp, err := c.Post("http://berth/v1.41"+path, ctype, body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	jsonMsg := func(body string) string {
		var m struct{ Message string }
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("error body is not JSON: %q", body)
		}
		return m.Message
	}
	for _, b := range []string{`{`, `[1,2]`, `{"Image": 5}`, ``, `{"Image":"busybox","HostConfig":{"Memory":"lots"}}`} {
		code, body := post("/containers/create", "application/json", strings.NewReader(b))
		if code != 400 || jsonMsg(body) == "" {
			t.Errorf("create %q: %d %s", b, code, body)
		}
	}
	code, body := post("/containers/create", "application/json", strings.NewReader(`{"Image":"busybox","Cmd":["true"],"HostConfig":{"CpuPeriod":5}}`))
	if code != 400 || !strings.Contains(jsonMsg(body), "CPU cfs period") {
		t.Errorf("bad cpu period: %d %s", code, body)
	}
	for _, p := range []string{"/containers/nosuch/start", "/containers/nosuch/stop", "/exec/nosuch/start"} {
		code, body := post(p, "application/json", strings.NewReader("{}"))
		if code != 404 || !strings.Contains(jsonMsg(body), "No such") {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	resp, err := c.Get("http://berth/v1.41/no/such/route")
	if err != nil || resp.StatusCode != 404 {
		t.Errorf("unknown route: %v %v", resp, err)
	}
	if _, errs, code := e.dockerQuiet("logs", "nosuch"); code != 1 || !strings.Contains(errs, "No such container: nosuch") {
		t.Errorf("logs nosuch: %d %s", code, errs)
	}

	// Hostile tarballs: import and cp. Nothing may appear outside.
	outside := filepath.Join(e.dir, "escaped")
	hostile := map[string]func(*tar.Writer){
		"dotdot": func(tw *tar.Writer) {
			writeEntry(tw, &tar.Header{Name: "../../../../../../" + outside[1:], Mode: 0o644, Size: 3, Typeflag: tar.TypeReg}, "bad")
		},
		"absolute": func(tw *tar.Writer) {
			writeEntry(tw, &tar.Header{Name: outside, Mode: 0o644, Size: 3, Typeflag: tar.TypeReg}, "bad")
		},
		"symlink": func(tw *tar.Writer) {
			writeEntry(tw, &tar.Header{Name: "link", Linkname: filepath.Dir(outside), Typeflag: tar.TypeSymlink}, "")
			writeEntry(tw, &tar.Header{Name: "link/escaped", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg}, "bad")
		},
		"device": func(tw *tar.Writer) {
			writeEntry(tw, &tar.Header{Name: "dev/evil", Mode: 0o600, Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1}, "")
		},
		"huge header": func(tw *tar.Writer) {
			writeEntry(tw, &tar.Header{Name: strings.Repeat("a/", 3000) + "f", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg}, "x")
		},
	}
	id := strings.TrimSpace(e.docker("run", "-d", "busybox", "sleep", "1000"))
	for name, build := range hostile {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		build(tw)
		tw.Close()
		post("/images/create?fromSrc=-&repo=hostile", "text/plain", bytes.NewReader(buf.Bytes()))
		req, _ := http.NewRequest(http.MethodPut, "http://berth/v1.41/containers/"+id+"/archive?path=/tmp", bytes.NewReader(buf.Bytes()))
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
		if _, err := os.Lstat(outside); err == nil {
			t.Fatalf("%s tarball wrote %s", name, outside)
		}
	}
	// The device node never reaches the container as a usable device.
	if out, _, _ := e.dockerQuiet("exec", id, "sh", "-c", "test -c /tmp/dev/evil && echo present"); out == "present\n" {
		// mknod of a character device inside /tmp is allowed for root;
		// check it is not the host's /dev/mem (1,1) by being unusable.
		if o, _, code := e.dockerQuiet("exec", id, "head", "-c", "1", "/tmp/dev/evil"); code == 0 {
			t.Errorf("the device from a cp tarball is readable: %q", o)
		}
	}
	// Still serving.
	if out := e.docker("run", "--rm", "busybox", "echo", "alive"); out != "alive\n" {
		t.Fatalf("daemon after hostile input: %q", out)
	}
}

func writeEntry(tw *tar.Writer, h *tar.Header, body string) {
	h.Format = tar.FormatPAX
	tw.WriteHeader(h)
	if body != "" {
		tw.Write([]byte(body))
	}
}
