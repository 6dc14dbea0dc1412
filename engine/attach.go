package engine

import (
	"context"
	"encoding/binary"
	"io"
	"slices"
	"sync"

	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/berth-dev/berth/engine/monitor"
	"github.com/docker/docker/api/types/events"
)

// AttachOptions are the attach query parameters.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
	Logs, Stream          bool
}

// Stream is the client side of a hijacked connection.
type Stream interface {
	io.ReadWriteCloser
}

type pendingAttach struct {
	opts   AttachOptions
	connCh chan Stream // the client's stream, once hijacked (nil: gone)
	done   chan struct{}
	// m is its registration with the monitor of a start made ahead
	// (registerAhead), made before the start comes; guarded by c.mu.
	m *monitor.AttachConn
}

// Attach connects a client's stream to the container's stdio until the
// container exits (or the client goes away). Output is in stdcopy frames
// unless the container has a tty (then raw). The attach is registered
// before hijack is called (which answers 101 to the client): the docker
// CLI starts the container as soon as it has the 101, and not a byte of
// output may be lost. Attaching to a created container waits for its
// start; the client's input waits in the socket buffer meanwhile.
func (e *Engine) Attach(ctx context.Context, ref string, o AttachOptions, hijack func() (Stream, error)) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	p := &pendingAttach{opts: o, connCh: make(chan Stream, 1), done: make(chan struct{})}
	c.mu.Lock()
	tty := c.Config.Tty
	status := c.State.Status
	switch {
	case !o.Stream:
	case status == "running" || status == "paused":
		c.mu.Unlock()
		e.connectAttach(c, p)
		c.mu.Lock()
	case status == "created" || status == "restarting" || status == "exited":
		c.pending = append(c.pending, p)
	default:
		c.mu.Unlock()
		return errdefs.Conflictf("container %s is %s", c.ID[:12], status)
	}
	ahead := o.Stream && c.aheadReady
	c.mu.Unlock()
	if ahead {
		// The start was made ahead: the monitor is there, register now
		// rather than when the start comes.
		e.registerAhead(c, []*pendingAttach{p})
	}
	conn, err := hijack()
	if err != nil {
		p.connCh <- nil
		e.dropPending(c, p)
		return nil
	}
	if o.Logs {
		e.copyLogs(c, conn, tty, o)
	}
	if !o.Stream {
		return nil
	}
	p.connCh <- conn
	c.mu.Lock()
	e.containerEvent(c, events.ActionAttach, nil)
	c.mu.Unlock()
	select {
	case <-p.done:
	case <-ctx.Done():
		e.dropPending(c, p)
	}
	return nil
}

func (e *Engine) dropPending(c *Container, p *pendingAttach) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range c.pending {
		if q == p {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return
		}
	}
}

// connectAttach joins a client stream to the monitor's attach socket: it
// connects at once (so a start that follows cannot miss output: the
// monitor buffers in the socket) and pumps in the background once the
// client's stream is there.
func (e *Engine) connectAttach(c *Container, p *pendingAttach) {
	c.mu.Lock()
	tty := c.Config.Tty
	m := p.m
	p.m = nil
	c.mu.Unlock()
	if m == nil {
		var err error
		if m, err = monitor.Attach(e.socketPath(c.ID), p.opts.Stdin, p.opts.Stdout, p.opts.Stderr); err != nil {
			close(p.done)
			return
		}
	}
	go func() {
		defer close(p.done)
		defer m.Close()
		conn := <-p.connCh
		if conn == nil {
			return
		}
		if p.opts.Stdin {
			go func() {
				io.Copy(m, conn)
				m.CloseWrite()
			}()
		}
		copyFrames(conn, m, tty)
	}()
}

// copyFrames forwards monitor frames to a client: as they are (stdcopy)
// or, for a tty, the payloads only.
func copyFrames(dst io.Writer, src io.Reader, tty bool) {
	var hdr [8]byte
	buf := make([]byte, 32*1024)
	var mu sync.Mutex
	for {
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[4:]))
		if n > len(buf) {
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(src, buf[:n]); err != nil {
			return
		}
		mu.Lock()
		var werr error
		if tty {
			_, werr = dst.Write(buf[:n])
		} else {
			_, werr = dst.Write(append(hdr[:], buf[:n]...))
		}
		mu.Unlock()
		if werr != nil {
			return
		}
	}
}

// Resize sets the container's terminal size.
func (e *Engine) Resize(ref string, h, w uint) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running := c.State.Running()
	c.mu.Unlock()
	if !running {
		return errdefs.Conflictf("Container %s is not running", c.ID)
	}
	return monitor.Resize(e.socketPath(c.ID), h, w)
}

// registerAhead registers pending attach requests with the monitor of a
// start made ahead, so the start need not: the monitor buffers nothing
// before the start, so nothing is missed either way. One the start took
// meanwhile, or already registered, is left alone.
func (e *Engine) registerAhead(c *Container, list []*pendingAttach) {
	socket := e.socketPath(c.ID)
	for _, p := range list {
		m, err := monitor.Attach(socket, p.opts.Stdin, p.opts.Stdout, p.opts.Stderr)
		if err != nil {
			continue // the start registers it
		}
		c.mu.Lock()
		keep := c.aheadReady && p.m == nil && slices.Contains(c.pending, p)
		if keep {
			p.m = m
		}
		c.mu.Unlock()
		if !keep {
			m.Close()
		}
	}
}

// unregisterAhead drops the registrations of pending attach requests with
// the monitor of a start made ahead that is being undone: they wait for
// the start, which registers them with its own monitor.
func (e *Engine) unregisterAhead(c *Container) {
	c.mu.Lock()
	c.aheadReady = false
	var ms []*monitor.AttachConn
	for _, p := range c.pending {
		if p.m != nil {
			ms = append(ms, p.m)
			p.m = nil
		}
	}
	c.mu.Unlock()
	for _, m := range ms {
		m.Close()
	}
}
