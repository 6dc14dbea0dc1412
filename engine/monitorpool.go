package engine

import (
	"os"
	"path/filepath"
	"sync"

	"github.com/berth-dev/berth/engine/monitor"
)

// monitorPool keeps one monitor started and waiting, so that a
// container's start does not wait for a process to be forked, exec'd and
// initialised (a few milliseconds); it is replaced once used, after the
// start that used it. It costs one idle monitor per daemon.
type monitorPool struct {
	mu      sync.Mutex
	idle    *monitor.Pooled
	filling bool
	closed  bool
	// rootfsFilling: a spare root filesystem is being made.
	rootfsFilling bool
}

// take returns the waiting monitor, if there is one.
func (p *monitorPool) take() *monitor.Pooled {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.idle
	p.idle = nil
	return m
}

// refill starts a monitor in the background unless one waits or starts.
func (e *Engine) refillMonitors() {
	p := &e.pool
	p.mu.Lock()
	if p.idle != nil || p.filling || p.closed {
		p.mu.Unlock()
		return
	}
	p.filling = true
	p.mu.Unlock()
	go func() {
		m, err := monitor.StartPooled(e.opts.MonitorArgv, filepath.Join(e.execRoot, "m"))
		p.mu.Lock()
		p.filling = false
		if err == nil {
			if p.closed {
				defer m.Close()
			} else {
				p.idle = m
			}
		}
		p.mu.Unlock()
	}()
}

// closeMonitors ends the waiting monitor.
func (e *Engine) closeMonitors() {
	p := &e.pool
	p.mu.Lock()
	p.closed = true
	m := p.idle
	p.idle = nil
	p.mu.Unlock()
	if m != nil {
		m.Close()
	}
}

// spawnMonitor starts c's monitor: the waiting one when there is one
// (one that turns out dead is replaced by a new process), else a new one.
func (e *Engine) spawnMonitor(cfgPath string, cfg monitor.Config) (*os.Process, int, error) {
	if m := e.pool.take(); m != nil {
		proc, pid, err := m.Use(cfg)
		if err == nil || !monitor.IsGone(err) {
			return proc, pid, err
		}
	}
	return monitor.Spawn(e.opts.MonitorArgv, cfgPath, cfg)
}

// prepareRootfsAhead makes, in the background, a root filesystem like c's
// for the next container of its image (one at a time).
func (e *Engine) prepareRootfsAhead(c *Container) {
	e.pool.mu.Lock()
	if e.pool.rootfsFilling || e.pool.closed {
		e.pool.mu.Unlock()
		return
	}
	e.pool.rootfsFilling = true
	e.pool.mu.Unlock()
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		e.opts.RootFS.PrepareAhead(c.ImageChain, c.UIDMaps, c.GIDMaps, c.HostConfig.AutoRemove)
		e.pool.mu.Lock()
		e.pool.rootfsFilling = false
		e.pool.mu.Unlock()
	}()
}
