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
			// without a record: nothing refers to it.
			if os.IsNotExist(err) {
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
	e.opts.RootFS.Unmount(c.ID)
	os.RemoveAll(e.bundleDir(c.ID))
}
