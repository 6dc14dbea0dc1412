package engine

import (
	"os"
	"slices"
	"strings"
	"time"
)

// Starting ahead: the docker CLI's `run` sends create, then attach and
// wait, then start, each a round trip of its own. Between the create's
// answer and the start a few milliseconds pass in the client, and the
// start has ~10 ms of work before the container's process can be
// released (root filesystem, spec, monitor, the runtime's create with the
// init's namespaces and mounts). So right after a create the daemon does
// that work (prepare) in the background, up to the release: the
// container's process is not started, no event is sent, the container
// stays "created". The start then only releases it. Nothing of the user's
// runs before the start, as with dockerd.
//
// The work is undone if the container changes meanwhile (removal, update,
// a copy into it, which could change the users the spec resolved), when
// the daemon stops, and when no start comes within aheadTTL (`docker
// create` alone): then the start does it all as usual. Containers that
// join another container's namespaces, take volumes from one, or bind a
// host path that does not exist yet (the start creates it) are not
// started ahead, nor are they without the runtime in-process.
const aheadTTL = 3 * time.Second

// maxAhead bounds the starts prepared ahead at once (each holds an init
// and a monitor until its start comes): a burst of `docker create`s does
// not make a burst of processes.
const maxAhead = 8

// aheadPossible says whether c's start can be prepared ahead.
func (e *Engine) aheadPossible(c *Container) bool {
	return e.opts.Lib != nil && aheadEligible(c)
}

// startAhead prepares c's start in the background (aheadPossible).
func (e *Engine) startAhead(c *Container) {
	e.mu.Lock()
	if e.aheadCount >= maxAhead {
		e.mu.Unlock()
		return
	}
	e.aheadCount++
	e.mu.Unlock()
	e.ahead.Add(1)
	go func() {
		defer e.ahead.Done()
		held := false // the slot passes to the prepared start
		defer func() {
			if !held {
				e.aheadDone()
			}
		}()
		c.op.Lock()
		defer c.op.Unlock()
		e.mu.RLock()
		closing := e.closing
		e.mu.RUnlock()
		c.mu.Lock()
		ok := c.State.Status == "created" && !c.removed && c.prepared == nil && !closing
		snap := c.snapshot()
		c.mu.Unlock()
		if !ok {
			return
		}
		t0 := time.Now()
		p, err := e.prepare(c, snap, t0)
		if err != nil {
			// The start does it again, and reports what fails.
			e.trace(t0, "start %s ahead: %v", c.ID[:12], err)
			return
		}
		e.trace(t0, "start %s: prepared ahead", c.ID[:12])
		c.prepared = p
		held = true
		c.mu.Lock()
		c.aheadReady = true
		list := slices.Clone(c.pending)
		c.mu.Unlock()
		e.registerAhead(c, list)
		p.timer = time.AfterFunc(aheadTTL, func() {
			c.op.Lock()
			defer c.op.Unlock()
			if c.prepared == p {
				e.unprepare(c)
			}
		})
	}()
}

func aheadEligible(c *Container) bool {
	hc := c.HostConfig
	for _, mode := range []string{string(hc.NetworkMode), string(hc.IpcMode), string(hc.PidMode), string(hc.UTSMode)} {
		if strings.HasPrefix(mode, "container:") {
			return false
		}
	}
	if len(hc.VolumesFrom) > 0 || len(hc.Mounts) > 0 {
		return false
	}
	for _, b := range hc.Binds {
		src, _, _ := strings.Cut(b, ":")
		if !strings.HasPrefix(src, "/") {
			return false // a named volume
		}
		if _, err := os.Stat(src); err != nil {
			return false
		}
	}
	return true
}

// aheadDone frees a slot of maxAhead.
func (e *Engine) aheadDone() {
	e.mu.Lock()
	e.aheadCount--
	e.mu.Unlock()
}

// takePrepared returns the start made ahead for c, if any; c.op held.
func (e *Engine) takePrepared(c *Container) *preparedStart {
	p := c.prepared
	c.prepared = nil
	if p != nil {
		e.aheadDone()
	}
	c.mu.Lock()
	c.aheadReady = false
	c.mu.Unlock()
	if p != nil && p.timer != nil {
		p.timer.Stop()
	}
	return p
}

// unprepare undoes a start made ahead; c.op held.
func (e *Engine) unprepare(c *Container) {
	p := e.takePrepared(c)
	if p == nil {
		return
	}
	e.unregisterAhead(c)
	e.undoCreate(c.ID)
	select {
	case <-p.waitCh:
	case <-time.After(10 * time.Second):
	}
	os.RemoveAll(e.bundleDir(c.ID))
}

// unprepareAll undoes every start made ahead (the daemon stops).
func (e *Engine) unprepareAll() {
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
	e.ahead.Wait()
	for _, c := range e.List() {
		c.op.Lock()
		e.unprepare(c)
		c.op.Unlock()
	}
}
