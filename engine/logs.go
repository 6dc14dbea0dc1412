package engine

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"time"

	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/berth-dev/berth/engine/jsonlog"
)

// LogsOptions are the logs query parameters.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Timestamps     bool
	Since, Until   time.Time // zero: unbounded
	Tail           int       // -1: all
}

// Logs writes the container's log to w: stdcopy frames, or raw for a tty
// container. With Follow it goes on until the container stops or ctx ends.
func (e *Engine) Logs(ctx context.Context, ref string, o LogsOptions, w io.Writer, flush func()) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	tty := c.Config.Tty
	path := c.LogPath
	logType := c.HostConfig.LogConfig.Type
	c.mu.Unlock()
	if logType == "none" {
		return errdefs.InvalidParameterf("configured logging driver does not support reading")
	}
	if !o.Stdout && !o.Stderr {
		return errdefs.InvalidParameterf("Bad parameters: you must choose at least one stream")
	}
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	defer f.Close()
	out := jsonlog.NewWriter(w, tty, jsonlog.Options{Stdout: o.Stdout, Stderr: o.Stderr, Timestamps: o.Timestamps,
		Since: o.Since, Until: o.Until})
	if o.Tail >= 0 {
		if err := jsonlog.SeekTail(f, o.Tail); err != nil {
			return err
		}
	}
	br := bufio.NewReaderSize(f, 64*1024)
	var partial []byte
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			line = append(partial, line...)
			partial = nil
			if stop := out.Entry(line); stop {
				return nil
			}
			continue
		}
		partial = append(partial, line...)
		if err != nil && err != io.EOF {
			return err
		}
		if !o.Follow {
			return nil
		}
		if flush != nil {
			flush()
		}
		c.mu.Lock()
		running := c.State.Running() || c.State.Status == "restarting"
		ch := c.changed
		c.mu.Unlock()
		if !running {
			// Drain what the monitor wrote before it went.
			rest, _ := io.ReadAll(br)
			for _, l := range bytes.SplitAfter(append(partial, rest...), []byte("\n")) {
				if len(l) > 0 {
					out.Entry(l)
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// copyLogs replays the log for attach?logs=1.
func (e *Engine) copyLogs(c *Container, w io.Writer, tty bool, o AttachOptions) {
	e.Logs(context.Background(), c.ID, LogsOptions{Stdout: o.Stdout, Stderr: o.Stderr, Tail: -1}, w, nil)
}
