package runtime

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/berth-dev/berth/internal/sealed"
	"golang.org/x/sys/unix"
)

var sealedOnce struct {
	sync.Once
	path string
	keep *os.File // the memfd, in the fallback
	err  error
}

// sealedExe returns a path to execute the init stage from: a read-only
// copy of this binary (see package sealed for why).
func sealedExe() (string, error) {
	sealedOnce.Do(func() {
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/exe", &st); err != nil {
			sealedOnce.err = fmt.Errorf("stat own binary: %w", err)
			return
		}
		sealedOnce.path, sealedOnce.keep, sealedOnce.err = sealed.Path(sealed.Source{
			Name: fmt.Sprintf("berth-%x-%x-%x-%x", st.Dev, st.Ino, st.Size, st.Mtim.Nano()),
			Size: st.Size,
			Open: func() (io.ReadCloser, error) { return os.Open("/proc/self/exe") },
		})
	})
	return sealedOnce.path, sealedOnce.err
}
