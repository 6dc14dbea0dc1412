package main

// Flag value types with docker's names in --help (list, bytes, decimal,
// ulimit, mount, map) and the parsers of docker's small option formats.

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/mount"
	units "github.com/docker/go-units"
)

// listOpt collects a repeatable flag (-e A -e B).
type listOpt struct {
	vals  []string
	check func(string) (string, error)
}

func (l *listOpt) String() string { return "[" + strings.Join(l.vals, " ") + "]" }
func (l *listOpt) Type() string   { return "list" }
func (l *listOpt) Set(s string) error {
	if l.check != nil {
		v, err := l.check(s)
		if err != nil {
			return err
		}
		s = v
	}
	l.vals = append(l.vals, s)
	return nil
}

// mapOpt is a repeatable KEY=VALUE flag (--sysctl, --storage-opt).
type mapOpt struct{ m map[string]string }

func (o *mapOpt) String() string { return "map[]" }
func (o *mapOpt) Type() string   { return "map" }
func (o *mapOpt) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("invalid value %q: want KEY=VALUE", s)
	}
	if o.m == nil {
		o.m = map[string]string{}
	}
	o.m[k] = v
	return nil
}

// bytesOpt is a size (-m 64m); 0 when unset. withMinusOne lets -1 mean
// unlimited (--memory-swap).
type bytesOpt struct {
	v            int64
	withMinusOne bool
}

func (b *bytesOpt) String() string {
	if b.v == 0 {
		return "0"
	}
	return units.BytesSize(float64(b.v))
}
func (b *bytesOpt) Type() string { return "bytes" }
func (b *bytesOpt) Set(s string) error {
	if b.withMinusOne && s == "-1" {
		b.v = -1
		return nil
	}
	v, err := units.RAMInBytes(s)
	if err != nil {
		return err
	}
	b.v = v
	return nil
}

// decimalOpt is --cpus: a number of CPUs, kept as nano CPUs.
type decimalOpt struct{ nano int64 }

func (d *decimalOpt) String() string {
	if d.nano == 0 {
		return ""
	}
	return strconv.FormatFloat(float64(d.nano)/1e9, 'f', -1, 64)
}
func (d *decimalOpt) Type() string { return "decimal" }
func (d *decimalOpt) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1e6 {
		return fmt.Errorf("failed to parse %v as a rational number", s)
	}
	d.nano = int64(f * 1e9)
	return nil
}

// ulimitOpt is a repeatable --ulimit NAME=SOFT[:HARD].
type ulimitOpt struct{ vals []*units.Ulimit }

func (u *ulimitOpt) String() string { return "[]" }
func (u *ulimitOpt) Type() string   { return "ulimit" }
func (u *ulimitOpt) Set(s string) error {
	l, err := units.ParseUlimit(s)
	if err != nil {
		return err
	}
	for i, o := range u.vals {
		if o.Name == l.Name {
			u.vals[i] = l
			return nil
		}
	}
	u.vals = append(u.vals, l)
	return nil
}

// mountOpt is a repeatable --mount type=bind,source=…,target=…[,readonly].
type mountOpt struct{ vals []mount.Mount }

func (m *mountOpt) String() string { return "" }
func (m *mountOpt) Type() string   { return "mount" }
func (m *mountOpt) Set(s string) error {
	mt := mount.Mount{Type: mount.TypeVolume}
	for _, field := range strings.Split(s, ",") {
		k, v, hasValue := strings.Cut(field, "=")
		switch strings.ToLower(k) {
		case "type":
			mt.Type = mount.Type(strings.ToLower(v))
		case "source", "src":
			mt.Source = v
		case "target", "destination", "dst":
			mt.Target = v
		case "readonly", "ro":
			ro := true
			if hasValue {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return fmt.Errorf("invalid value for %s: %s", k, v)
				}
				ro = b
			}
			mt.ReadOnly = ro
		case "consistency":
			mt.Consistency = mount.Consistency(v)
		case "bind-propagation":
			if mt.BindOptions == nil {
				mt.BindOptions = &mount.BindOptions{}
			}
			mt.BindOptions.Propagation = mount.Propagation(v)
		case "tmpfs-size":
			n, err := units.RAMInBytes(v)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %s", k, v)
			}
			if mt.TmpfsOptions == nil {
				mt.TmpfsOptions = &mount.TmpfsOptions{}
			}
			mt.TmpfsOptions.SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(v, 8, 32)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %s", k, v)
			}
			if mt.TmpfsOptions == nil {
				mt.TmpfsOptions = &mount.TmpfsOptions{}
			}
			mt.TmpfsOptions.Mode = os.FileMode(n)
		case "volume-nocopy", "volume-label", "volume-driver", "volume-opt", "bind-recursive", "bind-nonrecursive", "volume-subpath":
			// accepted; the daemon decides
		default:
			return fmt.Errorf("unexpected key '%s' in '%s'", k, field)
		}
	}
	if mt.Target == "" {
		return fmt.Errorf("target is required")
	}
	m.vals = append(m.vals, mt)
	return nil
}

// readKVFile reads an --env-file or --label-file: KEY=VALUE lines, # for
// comments; a bare KEY takes the value from the environment (env only).
func readKVFile(path string, fromEnv bool) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid variable in %s line %d: no name", path, n)
		}
		if strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("variable '%s' contains whitespaces", k)
		}
		if !ok && fromEnv {
			if v, set := os.LookupEnv(k); set {
				line = k + "=" + v
			} else {
				continue
			}
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

// envValue is -e: KEY=VALUE as given, a bare KEY from the environment
// (dropped when unset).
func envValue(s string) (string, bool) {
	if strings.Contains(s, "=") {
		return s, true
	}
	if v, ok := os.LookupEnv(s); ok {
		return s + "=" + v, true
	}
	return "", false
}
