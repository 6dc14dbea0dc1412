package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/docker/docker/pkg/stdcopy"
)

// LogsOptions are the logs query parameters.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Timestamps     bool
	Since, Until   time.Time // zero: unbounded
	Tail           int       // -1: all
}

type logEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
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
	out := newLogWriter(w, tty, o)
	if o.Tail >= 0 {
		if err := seekTail(f, o.Tail); err != nil {
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
			if stop := out.entry(line); stop {
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
					out.entry(l)
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

type logWriter struct {
	w        io.Writer
	tty      bool
	o        LogsOptions
	out, err io.Writer
}

func newLogWriter(w io.Writer, tty bool, o LogsOptions) *logWriter {
	lw := &logWriter{w: w, tty: tty, o: o}
	if tty {
		lw.out, lw.err = w, w
	} else {
		lw.out, lw.err = stdcopy.NewStdWriter(w, stdcopy.Stdout), stdcopy.NewStdWriter(w, stdcopy.Stderr)
	}
	return lw
}

// entry writes one json-file line; it reports true when past Until.
func (lw *logWriter) entry(line []byte) bool {
	var le logEntry
	if json.Unmarshal(line, &le) != nil {
		return false
	}
	if !lw.o.Since.IsZero() && le.Time.Before(lw.o.Since) {
		return false
	}
	if !lw.o.Until.IsZero() && le.Time.After(lw.o.Until) {
		return true
	}
	dst := lw.out
	switch le.Stream {
	case "stdout":
		if !lw.o.Stdout {
			return false
		}
	case "stderr":
		if !lw.o.Stderr {
			return false
		}
		dst = lw.err
	}
	msg := le.Log
	if lw.o.Timestamps {
		msg = le.Time.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") + " " + msg
	}
	dst.Write([]byte(msg))
	return false
}

// copyLogs replays the log for attach?logs=1.
func (e *Engine) copyLogs(c *Container, w io.Writer, tty bool, o AttachOptions) {
	e.Logs(context.Background(), c.ID, LogsOptions{Stdout: o.Stdout, Stderr: o.Stderr, Tail: -1}, w, nil)
}

// seekTail positions f at the start of the last n lines.
func seekTail(f *os.File, n int) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if n == 0 {
		_, err := f.Seek(size, io.SeekStart)
		return err
	}
	const block = 32 * 1024
	count := 0
	pos := size
	buf := make([]byte, block)
	for pos > 0 {
		step := int64(block)
		if pos < step {
			step = pos
		}
		pos -= step
		if _, err := f.ReadAt(buf[:step], pos); err != nil && err != io.EOF {
			return err
		}
		for i := step - 1; i >= 0; i-- {
			if buf[i] == '\n' {
				if pos+i == size-1 {
					continue // the final newline ends the last line
				}
				count++
				if count == n {
					_, err := f.Seek(pos+i+1, io.SeekStart)
					return err
				}
			}
		}
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

// ParseTail parses tail=all|N.
func ParseTail(s string) (int, error) {
	if s == "" || s == "all" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errdefs.InvalidParameterf("invalid tail value %q", s)
	}
	return n, nil
}
