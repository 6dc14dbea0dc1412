package engine

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// netnsPool keeps one network namespace made ahead (loopback up, nothing
// else), for a container with a network namespace of its own and no user
// namespace (--network none, and the default until bridge networking):
// creating one costs the clone of the container's init half a millisecond
// or more, and bringing its loopback up another round trip in the init.
// The container joins it by path; once its init is in it, the daemon lets
// go of it, and it lives as long as the container's processes.
type netnsPool struct {
	mu      sync.Mutex
	spare   *os.File
	filling bool
	off     bool // creating one failed: the kernel or its limits say no
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
		if err := loopbackUp(); err != nil {
			ch <- result{err: err}
			return
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		ch <- result{f, err}
	}()
	r := <-ch
	return r.f, r.err
}

// loopbackUp brings up lo in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: bring lo up: %w", err)
	}
	return nil
}

// fill makes the spare in the background unless there is one.
func (p *netnsPool) fill() {
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
		if err != nil {
			p.off = true
		} else {
			p.spare = f
		}
		p.mu.Unlock()
	}()
}

// useNetns points a spec's new network namespace at the spare one, if
// the container gets one of its own and no user namespace (which must own
// it). The returned function lets go of it, after the container's create.
func (e *Engine) useNetns(spec *specs.Spec) func() {
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
	p := &e.netns
	p.mu.Lock()
	f := p.spare
	p.spare = nil
	p.mu.Unlock()
	p.fill()
	if f == nil {
		return func() {}
	}
	spec.Linux.Namespaces[net].Path = "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(int(f.Fd()))
	return func() { f.Close() }
}

// closeNetns drops the spare.
func (p *netnsPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.off = true
	if p.spare != nil {
		p.spare.Close()
		p.spare = nil
	}
}
