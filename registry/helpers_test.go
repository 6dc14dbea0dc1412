package registry

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/internal/busybox"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/snapshot"
)

var (
	busyboxOnce sync.Once
	busyboxTar  []byte
	busyboxErr  error
)

func busyboxRootfsTar(t testing.TB) []byte {
	t.Helper()
	busyboxOnce.Do(func() {
		var b bytes.Buffer
		busyboxErr = busybox.WriteTar(&b)
		busyboxTar = b.Bytes()
	})
	if busyboxErr != nil {
		t.Fatal(busyboxErr)
	}
	return busyboxTar
}

// newStore opens a store with a snapshotter in a fresh data root.
func newStore(t testing.TB) *image.Store {
	t.Helper()
	testutil.RequiresRoot(t)
	root := t.TempDir()
	snaps, err := snapshot.Open(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := image.Open(filepath.Join(root, "image"), snaps)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func importBusybox(t testing.TB, s *image.Store, ref string) *image.Image {
	t.Helper()
	img, err := s.Import(bytes.NewReader(busyboxRootfsTar(t)), ref, []string{`CMD ["sh"]`}, "")
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// collect gathers a progress stream.
type collect struct {
	mu   sync.Mutex
	msgs []ProgressMessage
}

func (c *collect) fn(m ProgressMessage) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func (c *collect) statuses() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		s := m.Status
		if m.ID != "" {
			s = m.ID + ": " + s
		}
		out = append(out, s)
	}
	return out
}

func (c *collect) has(status string) bool {
	for _, s := range c.statuses() {
		if s == status || strings.HasSuffix(s, ": "+status) {
			return true
		}
	}
	return false
}

// runIn runs argv in a chroot of rootfs and returns its output: the
// pulled image is a working root filesystem.
func runIn(t *testing.T, rootfs string, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/bin:/usr/bin:/sbin:/usr/sbin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v in %s: %v: %s", argv, rootfs, err, out)
	}
	return string(out)
}

// prepare mounts a container rootfs of img and removes it at the end.
func prepare(t *testing.T, s *image.Store, img *image.Image) string {
	t.Helper()
	if err := s.EnsureUnpacked(img); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("berth-test-%d", time.Now().UnixNano())
	rootfs, err := s.Snapshotter().Prepare(id, img.ChainIDs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Snapshotter().Remove(id) })
	return rootfs
}

// storeLeftovers lists files in the store's ingest/ and the snapshotter's
// tmp/ (what a failed pull must not leave).
func storeLeftovers(t *testing.T, s *image.Store) []string {
	t.Helper()
	var out []string
	for _, d := range []string{filepath.Join(s.Root(), "ingest"), filepath.Join(s.Snapshotter().Root(), "tmp")} {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			out = append(out, filepath.Join(d, e.Name()))
		}
	}
	return out
}
