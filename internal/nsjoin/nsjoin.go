// Package nsjoin owns joining a running container: it finds the
// berth-nsenter helper (nsenter.c, the only C in berth, because a
// multi-threaded Go process cannot setns() into user or mount
// namespaces) and describes which namespaces to join. The helper is
// embedded in release builds (tag nsenter_embedded, set by `make build`)
// and sealed read-only like the berth binary; development builds find it
// next to the berth binary or at $BERTH_NSENTER.
package nsjoin

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/berth-dev/berth/internal/sealed"
	"github.com/berth-dev/berth/ns"
)

var helperOnce struct {
	sync.Once
	path string
	keep *os.File
	err  error
}

// Helper returns the path of the berth-nsenter helper.
func Helper() (string, error) {
	helperOnce.Do(func() {
		helperOnce.path, helperOnce.keep, helperOnce.err = findHelper()
	})
	return helperOnce.path, helperOnce.err
}

func findHelper() (string, *os.File, error) {
	if len(embedded) > 0 {
		sum := sha256.Sum256(embedded)
		return sealed.Path(sealed.Source{
			Name: fmt.Sprintf("berth-nsenter-%x", sum[:8]),
			Size: int64(len(embedded)),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(embedded)), nil },
		})
	}
	if p := os.Getenv("BERTH_NSENTER"); p != "" {
		return p, nil, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "berth-nsenter")
		if _, err := os.Stat(p); err == nil {
			return p, nil, nil
		}
	}
	return "", nil, errors.New("joining a container needs the berth-nsenter helper, which this build lacks: build with `make build`")
}

// Flags returns the CLONE_NEW* flags of every namespace in which pid
// differs from the caller: those are the ones to join (setns refuses to
// "join" one's own user namespace).
func Flags(pid int) (uintptr, bool, error) {
	var flags uintptr
	userns := false
	for _, t := range ns.Types {
		mine, err1 := os.Stat("/proc/self/ns/" + t.Proc)
		theirs, err2 := os.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, t.Proc))
		if errors.Is(err1, os.ErrNotExist) || errors.Is(err2, os.ErrNotExist) {
			continue // a namespace type this kernel lacks
		}
		if err2 != nil {
			return 0, false, fmt.Errorf("namespaces of %d: %w", pid, err2)
		}
		if err1 != nil {
			return 0, false, err1
		}
		if !os.SameFile(mine, theirs) {
			flags |= t.Clone
			if t.Proc == "user" {
				userns = true
			}
		}
	}
	return flags, userns, nil
}
