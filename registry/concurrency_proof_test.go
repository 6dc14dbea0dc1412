package registry

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// blobGate holds layer downloads in the fake registry's blob handler to
// see how many the puller runs at once.
type blobGate struct {
	layers map[digest.Digest]bool
	// want is the number of downloads in flight that releases them all;
	// hold is how long a download waits for it before going on alone;
	// with giveUp, the first to wait that long releases every download
	// (the test fails at once rather than after a hold per layer).
	want   int
	hold   time.Duration
	giveUp bool

	mu       sync.Mutex
	inFlight int
	maxSeen  int
	served   map[digest.Digest]int
	timedOut int
	reached  chan struct{}
	once     sync.Once
}

func newBlobGate(ti *testImage, want int, hold time.Duration, giveUp bool) *blobGate {
	g := &blobGate{layers: map[digest.Digest]bool{}, want: want, hold: hold, giveUp: giveUp,
		served: map[digest.Digest]int{}, reached: make(chan struct{})}
	for _, l := range ti.m.Layers {
		g.layers[l.Digest] = true
	}
	return g
}

func (g *blobGate) blob(w http.ResponseWriter, r *http.Request, d digest.Digest, b []byte) bool {
	if !g.layers[d] || r.Method != http.MethodGet {
		return false
	}
	g.mu.Lock()
	g.inFlight++
	g.served[d]++
	g.maxSeen = max(g.maxSeen, g.inFlight)
	if g.inFlight >= g.want {
		g.once.Do(func() { close(g.reached) })
	}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inFlight--
		g.mu.Unlock()
	}()
	select {
	case <-g.reached:
	case <-time.After(g.hold):
		g.mu.Lock()
		g.timedOut++
		g.mu.Unlock()
		if g.giveUp {
			g.once.Do(func() { close(g.reached) })
		}
	case <-r.Context().Done():
		return true
	}
	http.ServeContent(w, r, "", zeroTime, bytes.NewReader(b))
	return true
}

// fourLayers is an image of four small layers with distinct content.
func fourLayers(t *testing.T) *testImage {
	var tars [][]byte
	for i := range 4 {
		tars = append(tars, layerTar(t, tarEntry{name: fmt.Sprintf("layer%d", i), body: randomBytes(4 << 10)}))
	}
	return makeImage(t, "amd64", tars...)
}

// TestProofParallelLayerDownloads: with dockerd's default
// max-concurrent-downloads (3), a pull of four layers has three blob
// downloads in flight at once (the registry holds each download until
// three are open; if they never are, the first to wait 5 s releases them
// all and the test fails); with max-concurrent-downloads 1 it
// never has two (each download is held 300 ms to give a second the
// chance to start).
func TestProofParallelLayerDownloads(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       *Config
		want      int
		hold      time.Duration
		wantMax   int
		wantStall int // downloads that waited the whole hold
	}{
		{"default", nil, DefaultMaxConcurrentDownloads, 5 * time.Second, DefaultMaxConcurrentDownloads, 0},
		{"max-concurrent-downloads=1", &Config{MaxConcurrentDownloads: 1}, 2, 300 * time.Millisecond, 1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeRegistry(t)
			ti := fourLayers(t)
			f.add("berth-test/layers", "latest", ti)
			g := newBlobGate(ti, tc.want, tc.hold, tc.cfg == nil)
			f.blob = g.blob
			s := newStore(t)
			t0 := time.Now()
			img, err := Pull(ctxT(t), s, f.host()+"/berth-test/layers", PullOptions{Config: tc.cfg}, nil)
			if err != nil {
				t.Fatal(err)
			}
			g.mu.Lock()
			defer g.mu.Unlock()
			t.Logf("max %d blob downloads at once, %d held to the end, pull took %s", g.maxSeen, g.timedOut, time.Since(t0).Round(time.Millisecond))
			if g.maxSeen != tc.wantMax {
				t.Errorf("at most %d layer downloads were in flight at once, want %d", g.maxSeen, tc.wantMax)
			}
			if g.timedOut != tc.wantStall {
				t.Errorf("%d downloads waited %s for another to start, want %d", g.timedOut, tc.hold, tc.wantStall)
			}
			if len(g.served) != 4 {
				t.Errorf("%d distinct layers downloaded, want 4", len(g.served))
			}
			if len(img.DiffIDs()) != 4 {
				t.Errorf("image has %d layers", len(img.DiffIDs()))
			}
		})
	}
}
