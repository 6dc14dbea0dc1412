package registry

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// ProgressDetail is the numeric progress of one layer (bytes).
type ProgressDetail struct {
	Current int64 `json:"current,omitempty"`
	Total   int64 `json:"total,omitempty"`
}

// ErrorDetail is the error of a failed stream.
type ErrorDetail struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// ProgressMessage is one line of the JSON stream dockerd sends for pull,
// push, import and load: it marshals exactly as dockerd's, field for field
// and in the same order, so the docker CLI draws it unchanged:
//
//	{"status":"Pulling from library/busybox","id":"latest"}
//	{"status":"Pulling fs layer","progressDetail":{},"id":"3f4d90098f5b"}
//	{"status":"Downloading","progressDetail":{"current":1048576,"total":2213400},"progress":"[=======================>                           ]  1.049MB/2.213MB","id":"3f4d90098f5b"}
//	{"status":"Digest: sha256:…"}
//	{"errorDetail":{"message":"…"},"error":"…"}
//
// Messages with an ID and a progressDetail (even an empty one) are drawn
// on one line per ID; the others end the per-layer block.
type ProgressMessage struct {
	Stream       string          `json:"stream,omitempty"`
	Status       string          `json:"status,omitempty"`
	Detail       *ProgressDetail `json:"progressDetail,omitempty"`
	Progress     string          `json:"progress,omitempty"`
	ID           string          `json:"id,omitempty"`
	Error        *ErrorDetail    `json:"errorDetail,omitempty"`
	ErrorMessage string          `json:"error,omitempty"`
	Aux          json.RawMessage `json:"aux,omitempty"`
}

// Line is the message as dockerd writes it on the wire: JSON and "\r\n".
func (m ProgressMessage) Line() []byte {
	b, _ := json.Marshal(m)
	return append(b, '\r', '\n')
}

// ErrorMessage is the stream's last line when an operation fails after
// the response has started.
func ErrorMessage(err error) ProgressMessage {
	return ProgressMessage{Error: &ErrorDetail{Message: err.Error()}, ErrorMessage: err.Error()}
}

// layerStatus is a per-layer status without numbers ("Pull complete").
func layerStatus(id, status string) ProgressMessage {
	return ProgressMessage{Status: status, Detail: &ProgressDetail{}, ID: id}
}

// layerProgress is a per-layer status with numbers ("Downloading").
func layerProgress(id, status string, current, total int64) ProgressMessage {
	return ProgressMessage{Status: status, Detail: &ProgressDetail{Current: current, Total: total},
		Progress: ProgressBar(current, total, 200), ID: id}
}

// HumanSize is Docker's size wording: decimal units, four significant
// digits (2213400 → "2.213MB").
func HumanSize(n float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"}
	i := 0
	for n >= 1000 && i < len(units)-1 {
		n /= 1000
		i++
	}
	return fmt.Sprintf("%.4g%s", n, units[i])
}

// ProgressBar draws a byte progress the way the docker CLI does for a
// terminal of the given width: "[=====>      ]  1.049MB/2.213MB" (the bar
// only when wider than 110 columns).
func ProgressBar(current, total int64, width int) string {
	if current <= 0 && total <= 0 {
		return ""
	}
	if total <= 0 {
		return fmt.Sprintf("%8v", HumanSize(float64(current)))
	}
	bars := int(float64(current)/float64(total)*100) / 2
	bars = max(0, min(bars, 50))
	var box string
	if width > 110 {
		box = "[" + strings.Repeat("=", bars) + ">" + strings.Repeat(" ", 50-bars) + "] "
	}
	if current > total {
		return box + fmt.Sprintf("%8v", HumanSize(float64(current)))
	}
	return box + fmt.Sprintf("%8v/%v", HumanSize(float64(current)), HumanSize(float64(total)))
}

// Display reads a JSON message stream (pull, push, load, import) from r
// and draws it on w as the docker CLI does: on a terminal, one line per
// layer redrawn in place with progress bars; otherwise one line per
// status change, without the byte counts. It returns the stream's error
// message as an error, and passes aux messages (a push's digest) to aux.
func Display(r io.Reader, w io.Writer, terminal bool, width int, aux func(json.RawMessage)) error {
	dec := json.NewDecoder(r)
	lines := map[string]int{} // layer ID → line index in the current block
	for {
		var m ProgressMessage
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("read progress stream: %w", err)
		}
		if m.Error != nil || m.ErrorMessage != "" {
			msg := m.ErrorMessage
			if m.Error != nil && m.Error.Message != "" {
				msg = m.Error.Message
			}
			return &StreamError{Message: msg}
		}
		if m.Aux != nil {
			if aux != nil {
				aux(m.Aux)
			}
			continue
		}
		perLayer := m.ID != "" && (m.Detail != nil || m.Progress != "")
		up := 0
		if perLayer {
			line, ok := lines[m.ID]
			if !ok {
				line = len(lines)
				lines[m.ID] = line
				if terminal {
					io.WriteString(w, "\n")
				}
			}
			up = len(lines) - line
			if terminal {
				fmt.Fprintf(w, "\x1b[%dA", up)
			}
		} else {
			lines = map[string]int{}
		}
		displayOne(w, &m, terminal, width)
		if perLayer && terminal {
			fmt.Fprintf(w, "\x1b[%dB", up)
		}
	}
}

func displayOne(w io.Writer, m *ProgressMessage, terminal bool, width int) {
	var bar string
	if m.Detail != nil {
		bar = ProgressBar(m.Detail.Current, m.Detail.Total, width)
	}
	end := "\n"
	if terminal && m.Stream == "" && m.Detail != nil {
		io.WriteString(w, "\x1b[2K\r") // clear the line
		end = "\r"
	} else if bar != "" {
		return // no byte counts off a terminal
	}
	if m.ID != "" {
		fmt.Fprintf(w, "%s: ", m.ID)
	}
	switch {
	case m.Detail != nil && terminal:
		fmt.Fprintf(w, "%s %s%s", m.Status, bar, end)
	case m.Progress != "":
		fmt.Fprintf(w, "%s %s%s", m.Status, m.Progress, end)
	case m.Stream != "":
		fmt.Fprintf(w, "%s%s", m.Stream, strings.TrimSuffix(end, "\n"))
	default:
		fmt.Fprintf(w, "%s%s", m.Status, end)
	}
}

// StreamError is an error the daemon reported inside a message stream.
type StreamError struct{ Message string }

func (e *StreamError) Error() string { return e.Message }

// progressSink serializes progress callbacks from parallel layer jobs and
// throttles byte counts to about ten a second per layer.
type progressSink struct {
	mu   sync.Mutex
	fn   func(ProgressMessage)
	last map[string]time.Time
}

func newProgressSink(fn func(ProgressMessage)) *progressSink {
	return &progressSink{fn: fn, last: map[string]time.Time{}}
}

func (p *progressSink) send(m ProgressMessage) {
	if p == nil || p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fn(m)
}

// bytes reports a byte count, at most every 100 ms per ID unless final.
func (p *progressSink) bytes(id, status string, current, total int64, final bool) {
	if p == nil || p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if !final && now.Sub(p.last[id]) < 100*time.Millisecond {
		return
	}
	p.last[id] = now
	p.fn(layerProgress(id, status, current, total))
}
