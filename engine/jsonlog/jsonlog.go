// Package jsonlog reads Docker json-file logs (one JSON object per line:
// {"log":…,"stream":"stdout"|"stderr","time":…}) for `docker logs` and
// attach?logs=1: it finds where the last N lines start (--tail), filters
// entries by stream and time (--since/--until), and writes them as a logs
// client reads them: stdcopy frames, or raw for a tty container, with
// optional timestamps. It is pure: it owns no files and no containers;
// the log is written by package monitor, and following a live container's
// log (which needs its state) belongs to package engine.
package jsonlog

import (
	"encoding/json"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/docker/docker/pkg/stdcopy"
)

// Options choose which entries are written, and how.
type Options struct {
	Stdout, Stderr bool
	Timestamps     bool
	Since, Until   time.Time // zero: unbounded
}

type logEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Writer writes json-file lines to a logs client.
type Writer struct {
	w        io.Writer
	tty      bool
	o        Options
	out, err io.Writer
}

// NewWriter returns a Writer onto w: raw for a tty container, else stdcopy
// frames that keep stdout and stderr apart.
func NewWriter(w io.Writer, tty bool, o Options) *Writer {
	lw := &Writer{w: w, tty: tty, o: o}
	if tty {
		lw.out, lw.err = w, w
	} else {
		lw.out, lw.err = stdcopy.NewStdWriter(w, stdcopy.Stdout), stdcopy.NewStdWriter(w, stdcopy.Stderr)
	}
	return lw
}

// Entry writes one json-file line; it reports true when past Until.
// A line that is not a json-file entry is skipped.
func (lw *Writer) Entry(line []byte) bool {
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

// SeekTail positions f at the start of the last n lines.
func SeekTail(f *os.File, n int) error {
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

// ParseTail parses tail=all|N; all (or empty) is -1.
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
