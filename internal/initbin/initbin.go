// Package initbin finds the program the runtime runs as a container's
// init stage: the small berth-init (cmd/berth-init) embedded in release
// builds (tag init_embedded, set by `make build`), else the berth binary
// itself re-executed as `berth init`. Either way the program runs from a
// read-only sealed copy (package sealed), so a container cannot overwrite
// it through /proc/PID/exe (CVE-2019-5736). It owns nothing else.
package initbin

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/sealed"
	"golang.org/x/sys/unix"
)

// Args is the argument vector the init stage is started with (berth-init
// ignores it; the berth binary dispatches on it).
var Args = []string{"berth", "init"}

var once struct {
	sync.Once
	path string
	keep *os.File // the memfd, in the fallback
	err  error
}

// Path returns a path to execute the init stage from, sealing it on
// first use.
func Path() (string, error) {
	once.Do(func() {
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/exe", &st); err != nil {
			once.err = fmt.Errorf("stat own binary: %w", err)
			return
		}
		// The embedded program's content is named by the hash the build
		// wrote; else, as part of this binary, by this binary's identity.
		// Either way nothing is hashed per start.
		id := fmt.Sprintf("%x-%x-%x-%x", st.Dev, st.Ino, st.Size, st.Mtim.Nano())
		src := sealed.Source{
			Name: "berth-" + id,
			Size: st.Size,
			Open: func() (io.ReadCloser, error) { return os.Open("/proc/self/exe") },
		}
		if len(embedded) > 0 {
			if h := strings.TrimSpace(embeddedID); h != "" {
				id = h
			}
			src = sealed.Source{
				Name: "berth-init-" + id,
				Size: int64(len(embedded)),
				Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(embedded)), nil },
			}
		}
		once.path, once.keep, once.err = sealed.Path(src)
	})
	return once.path, once.err
}

// Embedded reports whether this build carries the small init program.
func Embedded() bool { return len(embedded) > 0 }
