package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
)

const module = "github.com/opencontainers/runtime-tools"

// Versions of the suite: the commit Debian packages (the default) and
// upstream's newest at the time of writing.
var versions = map[string]string{
	"debian": "v0.9.1-0.20220125021840-0105384f68e1",
	"newest": "v0.9.1-0.20251205004911-5e639034dcdc",
}

// goEnv is the environment for fetching and building the suite: its
// module is not in the checksum database under these pseudo-versions, and
// its go.mod predates module graph pruning, so go may rewrite it.
func goEnv() []string {
	return append(os.Environ(),
		"GONOSUMDB="+module, "GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOTOOLCHAIN=local")
}

// ensureSuite fetches the module at version into the Go module cache,
// copies it to dir (without its vendor/ directory, whose pins do not build
// with a current Go) and builds runtimetest and every validation/*/*.t.
// A finished build leaves a stamp and is reused.
func ensureSuite(dir, version string) error {
	stamp := filepath.Join(dir, ".berth-built")
	if b, err := os.ReadFile(stamp); err == nil && string(b) == version {
		return nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	var out bytes.Buffer
	dl := exec.Command(goBin, "mod", "download", "-json", module+"@"+version)
	dl.Env = goEnv()
	dl.Stdout, dl.Stderr = &out, os.Stderr
	// go mod download outside a module needs a working directory that is
	// not inside one.
	dl.Dir = os.TempDir()
	if err := dl.Run(); err != nil {
		return fmt.Errorf("go mod download %s@%s: %w", module, version, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out.Bytes(), &info); err != nil {
		return fmt.Errorf("go mod download: %w", err)
	}
	if info.Error != "" || info.Dir == "" {
		return fmt.Errorf("go mod download %s@%s: %s", module, version, info.Error)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := copyTree(info.Dir, dir); err != nil {
		return fmt.Errorf("copy %s: %w", info.Dir, err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "vendor")); err != nil {
		return err
	}
	jobs := runtime.NumCPU()
	mk := exec.Command("make", "-j"+strconv.Itoa(jobs), "runtimetest", "validation-executables")
	mk.Dir = dir
	mk.Env = goEnv()
	mk.Stdout, mk.Stderr = os.Stderr, os.Stderr
	if err := mk.Run(); err != nil {
		return fmt.Errorf("build the validation suite in %s: %w", dir, err)
	}
	return os.WriteFile(stamp, []byte(version), 0o644)
}

// copyTree copies a module directory (read-only in the cache) into a
// writable tree.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, info.Mode().Perm()|0o200)
		}
		return nil
	})
}
