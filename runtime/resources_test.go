package runtime_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestPauseResumePsUpdateEvents(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sh", "-c", "sleep 1000 & sleep 1000"}, func(s *specs.Spec) {
		lim := int64(50)
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &lim}
	})
	id := newID("res")
	if r := e.rt("run", "-d", "--bundle", b, id); r.code != 0 {
		t.Fatalf("run -d: %s", r.stderr)
	}
	var pids []int
	waitFor(t, "two sleeps", func() bool {
		r := e.rt("ps", "--format", "json", id)
		if json.Unmarshal([]byte(r.stdout), &pids) != nil || len(pids) != 2 {
			return false
		}
		for _, p := range pids {
			if c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p)); strings.TrimSpace(string(c)) != "sleep" {
				return false
			}
		}
		return true
	})
	if r := e.rt("ps", id); r.code != 0 || strings.Count(r.stdout, "sleep 1000") != 2 {
		t.Fatalf("ps table: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := e.rt("pause", id); r.code != 0 {
		t.Fatalf("pause: %s", r.stderr)
	}
	if st := e.state(id); st["status"] != "paused" {
		t.Fatalf("status after pause: %v", st["status"])
	}
	for _, p := range pids {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); f[0] != "D" && f[0] != "S" {
			t.Errorf("process %d state %s while frozen", p, f[0])
		}
	}
	if r := e.rt("pause", id); r.code == 0 {
		t.Error("pausing a paused container succeeded")
	}
	if r := e.rt("resume", id); r.code != 0 {
		t.Fatalf("resume: %s", r.stderr)
	}
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("status after resume: %v", st["status"])
	}
	if r := e.rt("update", "--pids-limit", "30", "--memory", "64m", id); r.code != 0 {
		t.Fatalf("update: %s", r.stderr)
	}
	r := e.rt("events", "--stats", id)
	var ev struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data struct {
			Pids struct {
				Current uint64 `json:"current"`
				Limit   uint64 `json:"limit"`
			} `json:"pids"`
			Memory struct {
				Usage struct {
					Limit uint64 `json:"limit"`
				} `json:"usage"`
			} `json:"memory"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil {
		t.Fatalf("events --stats: %v %q %q", err, r.stdout, r.stderr)
	}
	if ev.Type != "stats" || ev.ID != id || ev.Data.Pids.Current != 2 || ev.Data.Pids.Limit != 30 || ev.Data.Memory.Usage.Limit != 64<<20 {
		t.Fatalf("stats event: %+v", ev)
	}
	if r := e.rt("update", "--memory", "lots", id); r.code == 0 {
		t.Fatal("update with a bad size succeeded")
	}
	if r := e.rt("delete", "-f", id); r.code != 0 {
		t.Fatalf("delete -f: %s", r.stderr)
	}
}

func TestOOMEventAndExit137(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sh", "-c", "sleep 0.5; head -c 100m /dev/zero | tail"}, func(s *specs.Spec) {
		lim := int64(32 << 20)
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &lim, Swap: &lim}
	})
	id := newID("oom")
	if r := e.rt("create", "--bundle", b, id); r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	evCh := make(chan result, 1)
	go func() {
		// events ends when the container goes away.
		evCh <- e.rt("events", "--interval", "1h", id)
	}()
	time.Sleep(200 * time.Millisecond)
	if r := e.rt("start", id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	// events ends once the container has stopped, after a last look at
	// the OOM count.
	var ev result
	select {
	case ev = <-evCh:
	case <-time.After(20 * time.Second):
		t.Fatal("events did not end when the container stopped")
	}
	if st := e.state(id); st["status"] != "stopped" {
		t.Fatalf("container %v after events ended", st["status"])
	}
	e.rt("delete", id)
	if !strings.Contains(ev.stdout, `"type":"oom"`) {
		t.Fatalf("no oom event: %d %q %q", ev.code, ev.stdout, ev.stderr)
	}
}
