// Package profile owns Docker's seccomp profile format (the JSON of
// `docker run --security-opt seccomp=profile.json` and of moby's
// default.json: names/name, archMap/architectures, includes/excludes by
// caps, arches and minKernel, comment) and Docker's default profile,
// embedded. It converts a profile into the OCI linux.seccomp a container
// gets, for given capabilities, architecture and kernel, exactly as
// dockerd does, and reports malformed profiles with the location of the
// mistake. It does not compile or load filters (package seccomp does).
package profile

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

//go:embed default.json
var defaultJSON []byte

// DefaultJSON returns Docker's default profile as berth embeds it.
func DefaultJSON() []byte { return append([]byte(nil), defaultJSON...) }

// Profile is a parsed Docker seccomp profile.
type Profile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	ArchMap          *[]ArchMapEntry          `json:"archMap,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	Syscalls         []Syscall                `json:"syscalls"`
	Comment          string                   `json:"comment,omitempty"`
}

// ArchMapEntry maps a native architecture to the sub-architectures a
// container on it may also use.
type ArchMapEntry struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

// Syscall is one rule of a Docker profile.
type Syscall struct {
	Names    []string                 `json:"names,omitempty"`
	Name     string                   `json:"name,omitempty"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []specs.LinuxSeccompArg  `json:"args"`
	Comment  string                   `json:"comment"`
	Includes *Filter                  `json:"includes,omitempty"`
	Excludes *Filter                  `json:"excludes,omitempty"`
}

// Filter is a rule's includes or excludes condition.
type Filter struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

// Env is what a profile is resolved against.
type Env struct {
	// Arch is the native architecture (Docker compares its GOARCH name
	// with includes/excludes arches).
	Arch *syscalls.Arch
	// Caps is the container's bounding set, canonical names.
	Caps []string
	// Kernel is the running kernel's version, major and minor.
	Kernel [2]int
}

var actions = map[specs.LinuxSeccompAction]bool{
	specs.ActKill: true, specs.ActKillProcess: true, specs.ActKillThread: true, specs.ActTrap: true,
	specs.ActErrno: true, specs.ActTrace: true, specs.ActAllow: true, specs.ActLog: true, specs.ActNotify: true,
}

var ops = map[specs.LinuxSeccompOperator]bool{
	specs.OpNotEqual: true, specs.OpLessThan: true, specs.OpLessEqual: true, specs.OpEqualTo: true,
	specs.OpGreaterEqual: true, specs.OpGreaterThan: true, specs.OpMaskedEqual: true,
}

// Parse decodes and checks a Docker profile. Errors name the place in
// the profile: a line and column for JSON mistakes, a path such as
// syscalls[3].names[1] for wrong values.
func Parse(data []byte) (*Profile, error) {
	var p Profile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&p); err != nil {
		return nil, jsonError(data, err)
	}
	if dec.More() {
		off := dec.InputOffset()
		l, c := lineCol(data, off)
		return nil, fmt.Errorf("seccomp profile: line %d, column %d: unexpected data after the profile's closing brace", l, c)
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	return &p, nil
}

func (p *Profile) check() error {
	if p.DefaultAction != "" && !actions[p.DefaultAction] {
		return fmt.Errorf("defaultAction: unknown action %q", p.DefaultAction)
	}
	if len(p.Architectures) != 0 && p.ArchMap != nil {
		return errors.New("both 'architectures' and 'archMap' are specified, use either 'architectures' or 'archMap'")
	}
	for i, a := range p.Architectures {
		if err := checkArch(a); err != nil {
			return fmt.Errorf("architectures[%d]: %w", i, err)
		}
	}
	if p.ArchMap != nil {
		if len(*p.ArchMap) == 0 {
			return errors.New("archMap: empty list (remove archMap, or map each native architecture to its sub-architectures)")
		}
		for i, m := range *p.ArchMap {
			if m.Arch == "" {
				return fmt.Errorf("archMap[%d].architecture: missing", i)
			}
			if err := checkArch(m.Arch); err != nil {
				return fmt.Errorf("archMap[%d].architecture: %w", i, err)
			}
			for j, s := range m.SubArches {
				if err := checkArch(s); err != nil {
					return fmt.Errorf("archMap[%d].subArchitectures[%d]: %w", i, j, err)
				}
			}
		}
	}
	for i := range p.Syscalls {
		if err := p.Syscalls[i].check(); err != nil {
			return fmt.Errorf("syscalls[%d]%w", i, err)
		}
	}
	return nil
}

// locErr prefixes a location that continues the caller's path.
type locErr struct {
	loc string
	err error
}

func (e *locErr) Error() string { return e.loc + ": " + e.err.Error() }
func (e *locErr) Unwrap() error { return e.err }

func at(loc string, format string, a ...any) error {
	return &locErr{loc: loc, err: fmt.Errorf(format, a...)}
}

func (s *Syscall) check() error {
	if s.Name != "" && len(s.Names) != 0 {
		return at("", "both 'name' and 'names' are specified, use either 'name' or 'names'")
	}
	names := s.Names
	if s.Name != "" {
		names = []string{s.Name}
	}
	if len(names) == 0 {
		return at("", "no syscall names (set 'names')")
	}
	for j, n := range names {
		loc := fmt.Sprintf(".names[%d]", j)
		if s.Name != "" {
			loc = ".name"
		}
		if n == "" {
			return at(loc, "empty syscall name")
		}
		if !syscalls.Known(n) {
			return at(loc, "unknown syscall %q (not a syscall on any architecture in berth's tables, %s)", n, syscalls.TablesSource)
		}
	}
	switch {
	case s.Action == "":
		return at(".action", "missing")
	case !actions[s.Action]:
		return at(".action", "unknown action %q", s.Action)
	}
	if s.ErrnoRet != nil && s.Action != specs.ActErrno && s.Action != specs.ActTrace {
		return at(".errnoRet", "set, but action %s takes no errno", s.Action)
	}
	for k, a := range s.Args {
		loc := fmt.Sprintf(".args[%d]", k)
		if a.Index >= 6 {
			return at(loc+".index", "%d is out of range (a syscall has arguments 0 to 5)", a.Index)
		}
		if !ops[a.Op] {
			return at(loc+".op", "unknown operator %q (want SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT or _MASKED_EQ)", a.Op)
		}
	}
	for _, f := range []struct {
		name string
		f    *Filter
	}{{"includes", s.Includes}, {"excludes", s.Excludes}} {
		if f.f == nil {
			continue
		}
		for k, c := range f.f.Caps {
			if n, err := caps.Number(c); err != nil || caps.Name(n) != c {
				return at(fmt.Sprintf(".%s.caps[%d]", f.name, k), "%q is not a capability name like CAP_SYS_ADMIN (Docker compares names exactly)", c)
			}
		}
		if f.f.MinKernel != "" {
			if _, err := ParseKernel(f.f.MinKernel); err != nil {
				return at("."+f.name+".minKernel", "%v", err)
			}
		}
	}
	return nil
}

func checkArch(a specs.Arch) error {
	if !strings.HasPrefix(string(a), "SCMP_ARCH_") {
		return fmt.Errorf("%q is not an architecture (want a name like SCMP_ARCH_X86_64)", a)
	}
	return nil
}

// ParseKernel parses "major.minor" (as Docker's minKernel).
func ParseKernel(s string) ([2]int, error) {
	var v [2]int
	var rest string
	n, _ := fmt.Sscanf(s, "%d.%d%s", &v[0], &v[1], &rest)
	if n < 2 || v[0] < 0 || v[1] < 0 {
		return v, fmt.Errorf("invalid kernel version %q (want major.minor, like 4.8)", s)
	}
	return v, nil
}

// Resolve converts the profile into the OCI configuration of a container
// in env, as dockerd does (moby's profiles/seccomp setupSeccomp): the
// archMap entry of the native architecture gives the architectures; a
// rule is kept when its includes all hold and its excludes do not; name
// becomes names. A profile with neither defaultAction nor syscalls means
// no filter: Resolve returns nil.
func (p *Profile) Resolve(env Env) (*specs.LinuxSeccomp, error) {
	if p.DefaultAction == "" && len(p.Syscalls) == 0 {
		return nil, nil
	}
	if env.Arch == nil {
		return nil, errors.New("seccomp profile: no architecture to resolve for")
	}
	out := &specs.LinuxSeccomp{
		DefaultAction:    p.DefaultAction,
		DefaultErrnoRet:  p.DefaultErrnoRet,
		Architectures:    append([]specs.Arch(nil), p.Architectures...),
		Flags:            append([]specs.LinuxSeccompFlag(nil), p.Flags...),
		ListenerPath:     p.ListenerPath,
		ListenerMetadata: p.ListenerMetadata,
	}
	if p.ArchMap != nil {
		for _, m := range *p.ArchMap {
			if string(m.Arch) == env.Arch.SCMP {
				out.Architectures = append(out.Architectures, m.Arch)
				out.Architectures = append(out.Architectures, m.SubArches...)
			}
		}
	}
	has := map[string]bool{}
	for _, c := range env.Caps {
		if n, err := caps.Number(c); err == nil {
			has[caps.Name(n)] = true
		}
	}
	arch := env.Arch.DockerName
	kernelAtLeast := func(v string) bool {
		k, _ := ParseKernel(v) // checked by Parse
		return env.Kernel[0] > k[0] || (env.Kernel[0] == k[0] && env.Kernel[1] >= k[1])
	}
next:
	for _, s := range p.Syscalls {
		if ex := s.Excludes; ex != nil {
			if contains(ex.Arches, arch) {
				continue
			}
			for _, c := range ex.Caps {
				if has[c] {
					continue next
				}
			}
			if ex.MinKernel != "" && kernelAtLeast(ex.MinKernel) {
				continue
			}
		}
		if in := s.Includes; in != nil {
			if len(in.Arches) > 0 && !contains(in.Arches, arch) {
				continue
			}
			for _, c := range in.Caps {
				if !has[c] {
					continue next
				}
			}
			if in.MinKernel != "" && !kernelAtLeast(in.MinKernel) {
				continue
			}
		}
		names := s.Names
		if s.Name != "" {
			names = []string{s.Name}
		}
		out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{
			Names:    append([]string(nil), names...),
			Action:   s.Action,
			ErrnoRet: s.ErrnoRet,
			Args:     append([]specs.LinuxSeccompArg(nil), s.Args...),
		})
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// jsonError turns a decoding error into one with a line and column.
func jsonError(data []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		l, c := lineCol(data, se.Offset)
		return fmt.Errorf("seccomp profile: line %d, column %d: %v", l, c, se)
	case errors.As(err, &te):
		l, c := lineCol(data, te.Offset)
		field := pathAt(data, te.Offset)
		if field == "" {
			field = "profile"
		}
		return fmt.Errorf("seccomp profile: %s (line %d, column %d): a JSON %s is not valid here (want %s)", field, l, c, te.Value, kindName(te.Type))
	case errors.Is(err, io.EOF):
		return errors.New("seccomp profile: empty document")
	}
	return fmt.Errorf("seccomp profile: %w", err)
}

// kindName describes the JSON a Go type wants.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a number from 0 up"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a number"
	case reflect.Pointer:
		return kindName(t.Elem())
	}
	return t.String()
}

// pathAt returns the path (syscalls[3].args[0].index) of the value that
// ends at offset in data, by walking the document's tokens.
func pathAt(data []byte, offset int64) string {
	type frame struct {
		array bool
		key   string
		index int
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(data))
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.array {
				fmt.Fprintf(&b, "[%d]", f.index)
			} else if f.key != "" {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			}
		}
		return b.String()
	}
	expectKey := false
	for {
		if dec.InputOffset() >= offset {
			return path()
		}
		tok, err := dec.Token()
		if err != nil {
			return path()
		}
		// A value (or the start of one) was read in the current frame.
		value := func() {
			if n := len(stack); n > 0 {
				if stack[n-1].array {
					stack[n-1].index++
				} else {
					expectKey = true
				}
			}
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, frame{})
				expectKey = true
			case '[':
				stack = append(stack, frame{array: true, index: -1})
				stack[len(stack)-1].index = 0
			case '}', ']':
				stack = stack[:len(stack)-1]
				if dec.InputOffset() >= offset {
					return path()
				}
				value()
			}
			continue
		case string:
			if n := len(stack); n > 0 && !stack[n-1].array && expectKey {
				stack[n-1].key = v
				expectKey = false
				continue
			}
		}
		if dec.InputOffset() >= offset {
			return path()
		}
		value()
	}
}

func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col := 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
