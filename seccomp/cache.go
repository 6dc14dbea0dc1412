package seccomp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/seccomp/bpf"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

// CacheDir holds compiled programs across processes: every
// `berth-runtime create` is a fresh process, so an in-memory cache alone
// would recompile on every start. It lives on tmpfs (/run), so a reboot
// (maybe into another kernel or berth) starts empty; entries are keyed by
// the configuration, the architecture and CompilerVersion, so a new berth
// never reads an old entry. The directory must belong to the caller's
// user and not be writable by anyone else, or it is not used.
// Empty disables the disk cache. $BERTH_SECCOMP_CACHE overrides it.
var CacheDir = "/run/berth/seccomp"

func init() {
	if d, ok := os.LookupEnv("BERTH_SECCOMP_CACHE"); ok {
		CacheDir = d
	}
}

const maxCacheEntry = 1 << 20

var memCache sync.Map // key -> *Program

// cacheKey hashes what the program depends on.
func cacheKey(cfg *specs.LinuxSeccomp, arch *syscalls.Arch) (string, error) {
	if cfg == nil {
		return "", fmt.Errorf("seccomp: no seccomp configuration")
	}
	body, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("seccomp: encode configuration: %w", err)
	}
	h := sha256.New()
	io.WriteString(h, CompilerVersion)
	h.Write([]byte{0})
	io.WriteString(h, binaryIdentity())
	h.Write([]byte{0})
	io.WriteString(h, arch.SCMP)
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil)), nil
}

var (
	identityOnce sync.Once
	identity     string
)

// binaryIdentity names the running executable (device, inode, size and
// modification time of /proc/self/exe): a rebuilt berth never reads the
// programs an older build cached, even if CompilerVersion was not bumped.
func binaryIdentity() string {
	identityOnce.Do(func() {
		var st syscall.Stat_t
		if err := syscall.Stat("/proc/self/exe", &st); err != nil {
			identity = "unknown"
			return
		}
		identity = fmt.Sprintf("%d:%d:%d:%d.%d", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	})
	return identity
}

type cacheEntry struct {
	Key     string   `json:"key"`
	Program *Program `json:"program"`
}

func cacheGet(key string) *Program {
	if p, ok := memCache.Load(key); ok {
		return p.(*Program).clone()
	}
	dir := CacheDir
	if dir == "" || !trustedDir(dir) {
		return nil
	}
	f, err := os.Open(filepath.Join(dir, key+".json"))
	if err != nil {
		return nil
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, maxCacheEntry+1))
	if err != nil || len(body) > maxCacheEntry {
		return nil
	}
	var e cacheEntry
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(&e) != nil || e.Key != key || e.Program == nil || bpf.Validate(e.Program.Instructions) != nil {
		return nil
	}
	memCache.Store(key, e.Program)
	return e.Program.clone()
}

func cachePut(key string, p *Program) {
	memCache.Store(key, p.clone())
	dir := CacheDir
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o700); err != nil || !trustedDir(dir) {
		return
	}
	body, err := json.Marshal(cacheEntry{Key: key, Program: p})
	if err != nil {
		return
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(body)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), filepath.Join(dir, key+".json")) != nil {
		os.Remove(tmp.Name())
		return
	}
	prune(dir)
}

// maxCacheEntries bounds the disk cache; older entries go first.
const maxCacheEntries = 256

func prune(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) <= maxCacheEntries {
		return
	}
	type aged struct {
		name string
		mod  int64
	}
	var files []aged
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			files = append(files, aged{e.Name(), fi.ModTime().UnixNano()})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod < files[j].mod })
	for _, f := range files[:max(0, len(files)-maxCacheEntries)] {
		os.Remove(filepath.Join(dir, f.name))
	}
}

// trustedDir accepts a cache directory only if it is a real directory of
// the caller's user that nobody else can write.
func trustedDir(dir string) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o022 != 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}

// ResetMemoryCache forgets programs compiled by this process (tests and
// benchmarks use it to measure the disk cache).
func ResetMemoryCache() { memCache.Clear() }

func (p *Program) clone() *Program {
	q := *p
	q.Instructions = append(bpf.Program(nil), p.Instructions...)
	q.Actions = append([]uint32(nil), p.Actions...)
	q.Warnings = append([]string(nil), p.Warnings...)
	return &q
}
