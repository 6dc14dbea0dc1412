package snapshot

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/archive"
)

// ErrLayerInUse is returned when removing a layer a container still uses.
var ErrLayerInUse = errors.New("layer in use by a container")

// ErrNotFound is returned for an unknown container or layer.
var ErrNotFound = errors.New("not found")

// Snapshotter keeps unpacked layers and container root filesystems.
// Its methods are safe for concurrent use, also by several processes.
type Snapshotter struct {
	root   string
	mu     sync.Mutex // serializes container create/remove within the process
	maps   idmapCache
	spares []spare // root filesystems made ahead (spare_linux.go); mu
}

// Open prepares root and removes leftovers of interrupted unpacks.
func Open(root string) (*Snapshotter, error) {
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("open snapshots at %s: %w", root, err)
	}
	for _, d := range []string{"layers", "containers", "tmp", "idmapped", "spares"} {
		mode := os.FileMode(0o700)
		if d == "containers" {
			mode = 0o711 // see Prepare: runtimes in a user namespace reach rootfs
		}
		if err := os.MkdirAll(filepath.Join(root, d), mode); err != nil {
			return nil, fmt.Errorf("open snapshots at %s: %w", root, err)
		}
	}
	s := &Snapshotter{root: root}
	if err := s.cleanTmp(); err != nil {
		return nil, err
	}
	// Spares a crashed process left (only one process makes them: the
	// daemon, which holds its data root's lock).
	s.DropSpares()
	return s, nil
}

// Root is the directory the snapshotter owns.
func (s *Snapshotter) Root() string { return s.root }

// cleanTmp removes unpacks that no live process holds (each holds an
// exclusive flock on its tmp entry's lock file while working).
func (s *Snapshotter) cleanTmp() error {
	tmp := filepath.Join(s.root, "tmp")
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return fmt.Errorf("clean %s: %w", tmp, err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".lock") {
			continue
		}
		unlock, err := tryLock(filepath.Join(tmp, e.Name()+".lock"))
		if err != nil {
			continue // another process is unpacking into it
		}
		os.RemoveAll(filepath.Join(tmp, e.Name()))
		os.Remove(filepath.Join(tmp, e.Name()+".lock"))
		unlock()
	}
	return nil
}

func (s *Snapshotter) layerDir(chainID digest.Digest) string {
	return filepath.Join(s.root, "layers", chainID.Encoded())
}

// LayerPath is the directory holding the unpacked content of a layer.
func (s *Snapshotter) LayerPath(chainID digest.Digest) string {
	return filepath.Join(s.layerDir(chainID), "diff")
}

// HasLayer tells whether the layer is unpacked.
func (s *Snapshotter) HasLayer(chainID digest.Digest) bool {
	if chainID.Validate() != nil {
		return false
	}
	_, err := os.Stat(s.LayerPath(chainID))
	return err == nil
}

// LayerSize is the number of bytes of file content in an unpacked layer.
func (s *Snapshotter) LayerSize(chainID digest.Digest) (int64, error) {
	b, err := os.ReadFile(filepath.Join(s.layerDir(chainID), "size"))
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", chainID, ErrNotFound)
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// Layers lists the chain IDs of the unpacked layers.
func (s *Snapshotter) Layers() ([]digest.Digest, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "layers"))
	if err != nil {
		return nil, err
	}
	var out []digest.Digest
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

// LayerWriter unpacks one layer into a private directory until Commit
// publishes it under its chain ID.
type LayerWriter struct {
	s      *Snapshotter
	dir    string // tmp/<random>
	unlock func()
	stats  archive.Stats
	done   bool
}

// NewLayer starts unpacking a layer.
func (s *Snapshotter) NewLayer() (*LayerWriter, error) {
	name := randomName()
	dir := filepath.Join(s.root, "tmp", name)
	unlock, err := tryLock(dir + ".lock")
	if err != nil {
		return nil, fmt.Errorf("new layer: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "diff"), 0o755); err != nil {
		unlock()
		return nil, fmt.Errorf("new layer: %w", err)
	}
	return &LayerWriter{s: s, dir: dir, unlock: unlock}, nil
}

// Dir is where the layer is being unpacked.
func (w *LayerWriter) Dir() string { return filepath.Join(w.dir, "diff") }

// Apply unpacks the uncompressed layer tar r, with overlayfs whiteouts.
func (w *LayerWriter) Apply(r io.Reader) (archive.Stats, error) {
	opts := archive.DefaultOptions()
	opts.Whiteouts = archive.WhiteoutOverlay
	st, err := archive.Apply(w.Dir(), r, opts)
	w.stats.Entries += st.Entries
	w.stats.Size += st.Size
	return st, err
}

// Commit publishes the layer as chainID. If another writer published the
// same layer first, this one is discarded and Commit succeeds.
func (w *LayerWriter) Commit(chainID digest.Digest) error {
	if err := chainID.Validate(); err != nil {
		w.Abort()
		return fmt.Errorf("commit layer: %w", err)
	}
	defer w.Abort()
	if err := os.WriteFile(filepath.Join(w.dir, "size"), []byte(strconv.FormatInt(w.stats.Size, 10)), 0o600); err != nil {
		return fmt.Errorf("commit layer %s: %w", chainID, err)
	}
	err := unix.Renameat2(unix.AT_FDCWD, w.dir, unix.AT_FDCWD, w.s.layerDir(chainID), unix.RENAME_NOREPLACE)
	if err != nil && !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENOTEMPTY) {
		return fmt.Errorf("commit layer %s: %w", chainID, err)
	}
	return nil
}

// Abort discards the unpack (no-op after a successful Commit).
func (w *LayerWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	os.RemoveAll(w.dir)
	os.Remove(w.dir + ".lock")
	w.unlock()
}

// RemoveLayer deletes an unpacked layer unless a container uses it.
func (s *Snapshotter) RemoveLayer(chainID digest.Digest) error {
	if err := chainID.Validate(); err != nil {
		return fmt.Errorf("remove layer: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := lock(filepath.Join(s.root, "containers.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	ids, err := s.containersUsing(chainID)
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		return fmt.Errorf("remove layer %s: %w (%s)", chainID, ErrLayerInUse, strings.Join(ids, ", "))
	}
	s.dropSparesUsing(chainID)
	// Rename away first so a concurrent reader never sees half a layer.
	gone := filepath.Join(s.root, "tmp", randomName())
	if err := os.Rename(s.layerDir(chainID), gone); err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("remove layer %s: %w", chainID, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove layer %s: %w", chainID, err)
	}
	return nil
}

func randomName() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var containerIDRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

func (s *Snapshotter) containerDir(id string) (string, error) {
	if !containerIDRe.MatchString(id) {
		return "", fmt.Errorf("invalid container id %q", id)
	}
	return filepath.Join(s.root, "containers", id), nil
}

type containerMeta struct {
	Chain    []digest.Digest `json:"chain"`
	IDMap    *IDMap          `json:"idmap,omitempty"`
	Volatile bool            `json:"volatile,omitempty"`
}

func (s *Snapshotter) containersUsing(chainID digest.Digest) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "containers"))
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		m, err := readMeta(filepath.Join(s.root, "containers", e.Name()))
		if err != nil {
			continue
		}
		for _, c := range m.Chain {
			if c == chainID {
				ids = append(ids, e.Name())
				break
			}
		}
	}
	return ids, nil
}

func readMeta(dir string) (*containerMeta, error) {
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return nil, err
	}
	var m containerMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s/meta.json: %w", dir, err)
	}
	return &m, nil
}

// lock takes an exclusive flock on path (created if missing).
func lock(path string) (func(), error) {
	return flock(path, unix.LOCK_EX)
}

func tryLock(path string) (func(), error) {
	return flock(path, unix.LOCK_EX|unix.LOCK_NB)
}

func flock(path string, how int) (func(), error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(fd, how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { unix.Close(fd) }, nil
}
