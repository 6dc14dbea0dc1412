// Package netns keeps network namespaces made ahead for containers: one
// spare at a time, with loopback up and nothing else, made on a thread of
// its own that ends with it. A container with a network namespace of its
// own and no user namespace (which must own it) joins the spare by path:
// creating one costs the clone of a container's init half a millisecond
// or more, and bringing its loopback up another step in the init. It
// touches nothing but the namespaces it makes.
package netns

import (
	"fmt"
	"github.com/berth-dev/berth/internal/loopback"
	"os"
	"runtime"
	"strconv"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Pool holds the spare. The zero value is ready to use.
type Pool struct {
	mu      sync.Mutex
	spare   *os.File
	filling bool
	off     bool // closed, or creating one failed: the kernel or its limits say no
}

// newNetns makes a network namespace with lo up, on a thread of its own
// that ends with it (the thread is never used again).
func newNetns() (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Not unlocked: the thread, now in the new namespace, exits with
		// this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("unshare network namespace: %w", err)}
			return
		}
		if err := loopback.Up(); err != nil {
			ch <- result{err: err}
			return
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		ch <- result{f, err}
	}()
	r := <-ch
	return r.f, r.err
}

// Fill makes the spare in the background unless there is one.
func (p *Pool) Fill() {
	p.mu.Lock()
	if p.spare != nil || p.filling || p.off {
		p.mu.Unlock()
		return
	}
	p.filling = true
	p.mu.Unlock()
	go func() {
		f, err := newNetns()
		p.mu.Lock()
		p.filling = false
		switch {
		case err != nil:
			p.off = true
		case p.off:
			f.Close()
		default:
			p.spare = f
		}
		p.mu.Unlock()
	}()
}

// Use points a spec's new network namespace at the spare, if the
// container gets one of its own and no user namespace, and starts making
// the next. The returned function lets go of it: call it once the
// container's init is in it (after the runtime's create).
func (p *Pool) Use(spec *specs.Spec) func() {
	if spec.Linux == nil {
		return func() {}
	}
	net := -1
	for i, n := range spec.Linux.Namespaces {
		switch {
		case n.Type == specs.UserNamespace:
			return func() {}
		case n.Type == specs.NetworkNamespace && n.Path == "":
			net = i
		}
	}
	if net < 0 {
		return func() {}
	}
	p.mu.Lock()
	f := p.spare
	p.spare = nil
	p.mu.Unlock()
	p.Fill()
	if f == nil {
		return func() {}
	}
	spec.Linux.Namespaces[net].Path = "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(int(f.Fd()))
	return func() { f.Close() }
}

// Close drops the spare and makes no more.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.off = true
	if p.spare != nil {
		p.spare.Close()
		p.spare = nil
	}
}
