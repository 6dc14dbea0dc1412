package proc

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/caps"
)

// Seccomp modes as /proc/PID/status prints them.
const (
	SeccompDisabled = 0
	SeccompStrict   = 1
	SeccompFilter   = 2
)

// Status is what berth uses of /proc/PID/status.
type Status struct {
	Name      string `json:"name"`
	State     string `json:"state,omitempty"`
	Tgid      int    `json:"tgid"`
	Pid       int    `json:"pid"`
	PPid      int    `json:"ppid"`
	TracerPid int    `json:"tracer_pid"`
	// Uid and Gid are real, effective, saved and filesystem IDs, as seen
	// from the reader's user namespace.
	Uid    [4]uint32 `json:"uid"`
	Gid    [4]uint32 `json:"gid"`
	Groups []uint32  `json:"groups"`
	// NStgid and NSpid list the process's ID in its PID namespace and every
	// ancestor, outermost (the reader's) first.
	NStgid  []int `json:"nstgid"`
	NSpid   []int `json:"nspid"`
	Threads int   `json:"threads"`
	Kthread bool  `json:"kthread"`

	CapInh caps.Set `json:"cap_inh"`
	CapPrm caps.Set `json:"cap_prm"`
	CapEff caps.Set `json:"cap_eff"`
	CapBnd caps.Set `json:"cap_bnd"`
	CapAmb caps.Set `json:"cap_amb"`

	NoNewPrivs bool `json:"no_new_privs"`
	// Seccomp is the mode (SeccompDisabled, SeccompStrict, SeccompFilter),
	// -1 when the kernel does not report it.
	Seccomp int `json:"seccomp"`
	// SeccompFilters is the number of filters attached, -1 when the kernel
	// does not report it (before 5.9).
	SeccompFilters int `json:"seccomp_filters"`
}

// maxStatus bounds what ParseStatus accepts; the kernel's file is a few KiB.
const maxStatus = 1 << 20

// ParseStatus parses the text of /proc/PID/status. Fields berth does not
// use are ignored; a field berth uses that is malformed is an error, and so
// is a file without Name, Pid or the capability sets.
func ParseStatus(data []byte) (*Status, error) {
	if len(data) > maxStatus {
		return nil, fmt.Errorf("status: %d bytes is too large", len(data))
	}
	s := &Status{Seccomp: -1, SeccompFilters: -1, Pid: -1}
	seen := map[string]bool{}
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		k := string(key)
		v := strings.TrimSpace(string(val))
		var err error
		switch k {
		case "Name":
			// The kernel escapes "\n" and "\\" in comm; keep it as printed.
			s.Name = v
		case "State":
			s.State = v
		case "Tgid":
			s.Tgid, err = atoi(v)
		case "Pid":
			s.Pid, err = atoi(v)
		case "PPid":
			s.PPid, err = atoi(v)
		case "TracerPid":
			s.TracerPid, err = atoi(v)
		case "Uid":
			s.Uid, err = ids4(v)
		case "Gid":
			s.Gid, err = ids4(v)
		case "Groups":
			s.Groups, err = uints(v)
		case "NStgid":
			s.NStgid, err = ints(v)
		case "NSpid":
			s.NSpid, err = ints(v)
		case "Threads":
			s.Threads, err = atoi(v)
		case "Kthread":
			var n int
			n, err = atoi(v)
			s.Kthread = n == 1
		case "CapInh":
			s.CapInh, err = caps.ParseHex(v)
		case "CapPrm":
			s.CapPrm, err = caps.ParseHex(v)
		case "CapEff":
			s.CapEff, err = caps.ParseHex(v)
		case "CapBnd":
			s.CapBnd, err = caps.ParseHex(v)
		case "CapAmb":
			s.CapAmb, err = caps.ParseHex(v)
		case "NoNewPrivs":
			var n int
			n, err = atoi(v)
			s.NoNewPrivs = n == 1
		case "Seccomp":
			s.Seccomp, err = atoi(v)
			if err == nil && (s.Seccomp < 0 || s.Seccomp > 2) {
				err = fmt.Errorf("unknown mode %d", s.Seccomp)
			}
		case "Seccomp_filters":
			s.SeccompFilters, err = atoi(v)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("status: field %s: %w", k, err)
		}
		seen[k] = true
	}
	for _, k := range []string{"Name", "Pid", "CapInh", "CapPrm", "CapEff", "CapBnd"} {
		if !seen[k] {
			return nil, fmt.Errorf("status: no %s field", k)
		}
	}
	return s, nil
}

// ReadStatus reads and parses /proc/PID/status.
func ReadStatus(pid int) (*Status, error) {
	b, err := readFile(pid, "status")
	if err != nil {
		return nil, err
	}
	s, err := ParseStatus(b)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	return s, nil
}

func atoi(s string) (int, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	return int(n), nil
}

func ints(s string) ([]int, error) {
	f := strings.Fields(s)
	out := make([]int, 0, len(f))
	for _, x := range f {
		n, err := atoi(x)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func uints(s string) ([]uint32, error) {
	f := strings.Fields(s)
	out := make([]uint32, 0, len(f))
	for _, x := range f {
		n, err := strconv.ParseUint(x, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("not an ID: %q", x)
		}
		out = append(out, uint32(n))
	}
	return out, nil
}

func ids4(s string) ([4]uint32, error) {
	var out [4]uint32
	v, err := uints(s)
	if err != nil {
		return out, err
	}
	if len(v) != 4 {
		return out, fmt.Errorf("want 4 IDs (real, effective, saved, fs), got %q", s)
	}
	copy(out[:], v)
	return out, nil
}
