package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/engine/monitor"
)

// load reads every container record and reconciles it with reality: a
// container recorded as running whose monitor answers is watched again; one
// whose monitor is gone gets the exit status the monitor recorded (or 255);
// leftovers of interrupted operations (temporary files, half-removed
// containers, bundles of stopped containers) are removed.
func (e *Engine) load() error {
	root := filepath.Join(e.dataRoot, "containers")
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, ent := range entries {
		dir := filepath.Join(root, ent.Name())
		os.Remove(filepath.Join(dir, configFile+".tmp"))
		c, err := loadContainer(dir)
		if err != nil {
			// A crash between mkdir and the first save leaves a directory
			// without a record: nothing refers to it; so does a removal
			// interrupted after the record went, and a crash that lost
			// an --rm container's unsynced record (empty).
			if fi, serr := os.Stat(filepath.Join(dir, configFile)); os.IsNotExist(err) || (serr == nil && fi.Size() == 0) {
				os.RemoveAll(dir)
				e.opts.RootFS.Remove(ent.Name())
			} else {
				fmt.Fprintf(os.Stderr, "berth: skipping container %s: %v\n", ent.Name(), err)
			}
			continue
		}
		if c.State.Status == "removing" {
			e.opts.RootFS.Remove(c.ID)
			os.RemoveAll(e.bundleDir(c.ID))
			os.RemoveAll(dir)
			continue
		}
		e.byID[c.ID] = c
		e.names[c.Name] = c.ID
	}
	for _, c := range e.byID {
		e.reconcile(c)
	}
	// Bundles of containers that no longer exist.
	if ents, err := os.ReadDir(filepath.Join(e.execRoot, "containers")); err == nil {
		for _, ent := range ents {
			if _, ok := e.byID[ent.Name()]; !ok && !strings.HasPrefix(ent.Name(), ".") {
				os.RemoveAll(filepath.Join(e.execRoot, "containers", ent.Name()))
			}
		}
	}
	return nil
}

func (e *Engine) reconcile(c *Container) {
	if c.State.Running() || c.State.Status == "restarting" {
		if waitCh, err := monitor.Wait(e.socketPath(c.ID)); err == nil {
			e.wg.Add(1)
			go e.watch(c, waitCh)
			return
		}
		ex, err := monitor.ReadExit(e.exitPath(c.ID))
		if err != nil {
			ex = monitor.Exit{ExitCode: 255, FinishedAt: time.Now().UTC(), Error: "container monitor died while the daemon was down"}
		}
		// Make sure nothing of it is left in the runtime.
		e.runtime("delete", "--force", c.ID)
		go e.handleExit(c, ex)
		return
	}
	if c.HostConfig.AutoRemove {
		// --rm: the daemon stopped before it could remove it.
		c.op.Lock()
		e.removeLocked(c, true)
		c.op.Unlock()
		return
	}
	// A daemon that stopped between an exit and deleting the runtime's
	// state (its job when the monitor leaves it) deletes it now.
	if _, err := os.Stat(filepath.Join(e.rtRoot, c.ID)); err == nil {
		e.runtime("delete", "--force", c.ID)
	}
	e.opts.RootFS.Unmount(c.ID)
	os.RemoveAll(e.bundleDir(c.ID))
}
