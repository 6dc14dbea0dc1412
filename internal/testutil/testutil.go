// Package testutil holds what berth's tests share: the root requirement,
// the berth binary under test, and the busybox root filesystem fixture.
// It is imported by tests only.
package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/busybox"
)

// RequiresRoot skips the test unless it runs as root; berth's integration
// tests use the real kernel and need it.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test uses real namespaces, mounts and cgroups")
	}
}

// RepoRoot is the top of the source tree.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// BerthBinary returns the path of the berth binary under test: $BERTH_BIN
// when set (make test sets it to bin/berth), otherwise a binary built once
// per test process with `make build`'s flags into a temporary directory.
func BerthBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BERTH_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		// Built in a directory of this process's own inside the
		// repository's build/, then renamed into build/test-bin: test
		// packages run in parallel and each builds once, and nothing is
		// left in /tmp. A rename replaces the file a running test may be
		// executing without disturbing it.
		binDir := filepath.Join(RepoRoot(), "build", "test-bin")
		if buildErr = os.MkdirAll(binDir, 0o755); buildErr != nil {
			return
		}
		dir, err := os.MkdirTemp(filepath.Dir(binDir), "test-bin-tmp-")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(dir)
		defer func() {
			for _, name := range []string{"berth", "berth-runtime"} {
				if buildErr == nil {
					buildErr = os.Rename(filepath.Join(dir, name), filepath.Join(binDir, name))
				}
			}
			builtPath = filepath.Join(binDir, "berth")
		}()
		builtPath = filepath.Join(dir, "berth")
		helper := filepath.Join(RepoRoot(), "internal/nsjoin/embedded/berth-nsenter")
		os.MkdirAll(filepath.Dir(helper), 0o755)
		gcc := exec.Command("gcc", "-static", "-Os", "-s", "-o", helper, "internal/nsjoin/csrc/nsenter.c")
		gcc.Dir = RepoRoot()
		if out, err := gcc.CombinedOutput(); err != nil {
			buildErr = &buildError{out: string(out), err: err}
			return
		}
		initBin := exec.Command("go", "build", "-trimpath", "-tags", "netgo osusergo", "-o", "internal/initbin/embedded/berth-init", "./cmd/berth-init")
		initBin.Dir = RepoRoot()
		initBin.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := initBin.CombinedOutput(); err != nil {
			buildErr = &buildError{out: string(out), err: err}
			return
		}
		// As make build: the init's content hash names its sealed copy.
		initPath := filepath.Join(RepoRoot(), "internal/initbin/embedded/berth-init")
		if b, err := os.ReadFile(initPath); err == nil {
			sum := sha256.Sum256(b)
			buildErr = os.WriteFile(initPath+".id", []byte(hex.EncodeToString(sum[:])[:16]+"\n"), 0o644)
		} else {
			buildErr = err
		}
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-tags", "netgo osusergo nsenter_embedded init_embedded", "-o", builtPath, "./cmd/berth")
		cmd.Dir = RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{out: string(out), err: err}
			return
		}
		rt := exec.Command("go", "build", "-trimpath", "-tags", "netgo osusergo nsenter_embedded init_embedded", "-o", filepath.Join(dir, "berth-runtime"), "./cmd/berth-runtime")
		rt.Dir = RepoRoot()
		rt.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := rt.CombinedOutput(); err != nil {
			buildErr = &buildError{out: string(out), err: err}
		}
	})
	if buildErr != nil {
		t.Fatalf("build berth: %v", buildErr)
	}
	return builtPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// RuntimeBinary is the berth-runtime binary next to BerthBinary.
func RuntimeBinary(t testing.TB) string {
	return filepath.Join(filepath.Dir(BerthBinary(t)), "berth-runtime")
}

// BusyboxRootfs builds a fresh busybox root filesystem in a temporary
// directory removed at the end of the test.
func BusyboxRootfs(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := busybox.Build(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}
