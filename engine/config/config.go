// Package config owns berth daemon's configuration: the daemon.json keys
// users know from dockerd, their defaults, flag overrides, and the
// userns-remap setting resolved to id mappings from /etc/subuid and
// /etc/subgid. It reads files and, for `userns-remap: default`, creates the
// berth-remap user; it touches nothing else.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/docker/go-units"

	"github.com/berth-dev/berth/registry"
)

// Defaults of a daemon run as root.
const (
	DefaultConfigFile = "/etc/berth/daemon.json"
	DefaultDataRoot   = "/var/lib/berth"
	DefaultExecRoot   = "/run/berth"
	DefaultSocket     = "/run/berth/berth.sock"
	DefaultHost       = "unix://" + DefaultSocket
	// DefaultGroup owns the socket, as with dockerd: the talk adds its user
	// to the docker group to use the daemon without sudo.
	DefaultGroup = "docker"
)

// Config is daemon.json. Unknown keys are an error, as dockerd does.
type Config struct {
	UsernsRemap    string                   `json:"userns-remap,omitempty"`
	SeccompProfile string                   `json:"seccomp-profile,omitempty"`
	DefaultUlimits map[string]*units.Ulimit `json:"default-ulimits,omitempty"`
	DataRoot       string                   `json:"data-root,omitempty"`
	ExecRoot       string                   `json:"exec-root,omitempty"`
	Group          string                   `json:"group,omitempty"`
	LiveRestore    bool                     `json:"live-restore,omitempty"`
	liveRestoreSet bool
	LogLevel       string   `json:"log-level,omitempty"`
	Hosts          []string `json:"hosts,omitempty"`
	Debug          bool     `json:"debug,omitempty"`
	// Runtime is the OCI runtime binary; empty means berth-runtime beside
	// the berth binary.
	Runtime string `json:"runtime,omitempty"`
	// CgroupParent is the cgroup containers are made under when they do
	// not name one (default /berth), as dockerd's cgroup-parent.
	CgroupParent string `json:"cgroup-parent,omitempty"`
	// registry.Config holds insecure-registries, registry-mirrors and
	// max-concurrent-downloads/-uploads (its fields are daemon.json keys).
	registry.Config
}

// known lists the accepted keys, for the "did you mean" hint.
var known = []string{"userns-remap", "seccomp-profile", "default-ulimits", "data-root",
	"exec-root", "group", "live-restore", "log-level", "hosts", "debug", "runtime", "cgroup-parent",
	"insecure-registries", "registry-mirrors", "max-concurrent-downloads", "max-concurrent-uploads"}

// Load reads a daemon.json. A missing file at the default path is not an
// error (dockerd starts without one); a missing file named explicitly is.
func Load(path string, explicit bool) (*Config, error) {
	c := &Config{}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !explicit {
			return c, c.fill()
		}
		return nil, fmt.Errorf("unable to configure the berth daemon with file %s: %w", path, err)
	}
	if err := Parse(data, c); err != nil {
		return nil, fmt.Errorf("unable to configure the berth daemon with file %s: %w", path, err)
	}
	return c, c.fill()
}

// Parse decodes daemon.json into c, refusing unknown keys and values of
// the wrong type.
func Parse(data []byte, c *Config) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	var unknown []string
	for k := range raw {
		if !isKnown(k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		msg := "the following directives don't match any configuration option: " + strings.Join(unknown, ", ")
		for _, u := range unknown {
			if s := suggest(u); s != "" {
				msg += fmt.Sprintf(" (did you mean %q for %q?)", s, u)
			}
		}
		return errors.New(msg)
	}
	_, c.liveRestoreSet = raw["live-restore"]
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("invalid value: %w", err)
	}
	return c.Validate()
}

func isKnown(k string) bool {
	for _, n := range known {
		if n == k {
			return true
		}
	}
	return false
}

// suggest finds the known key closest to a misspelt one (the talk's
// "users-remap" is one).
func suggest(k string) string {
	best, bestD := "", 4
	for _, n := range known {
		if d := distance(k, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the Levenshtein distance of two short keys.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// Validate checks values that JSON types alone do not.
func (c *Config) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error", "fatal":
	default:
		return fmt.Errorf("invalid log-level %q: use debug, info, warn, error or fatal", c.LogLevel)
	}
	for name, u := range c.DefaultUlimits {
		if u == nil {
			return fmt.Errorf("default-ulimits: %s has no value", name)
		}
		if u.Name == "" {
			u.Name = name
		}
		if u.Name != name {
			return fmt.Errorf("default-ulimits: key %q names ulimit %q", name, u.Name)
		}
		if _, err := units.ParseUlimit(fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard)); err != nil {
			return fmt.Errorf("default-ulimits: %w", err)
		}
	}
	if p := c.CgroupParent; p != "" {
		for _, el := range strings.Split(p, "/") {
			if el == ".." {
				return fmt.Errorf("cgroup-parent %q: \"..\" would leave the cgroup tree: give a path like /berth", p)
			}
		}
		if strings.ContainsRune(p, 0) || strings.HasSuffix(p, ".slice") {
			return fmt.Errorf("cgroup-parent %q: give a cgroupfs path like /berth (the systemd driver is not supported by the daemon)", p)
		}
	}
	for _, h := range c.Hosts {
		if !strings.HasPrefix(h, "unix://") {
			return fmt.Errorf("hosts: %q: only unix:// sockets are supported", h)
		}
	}
	if c.UsernsRemap != "" {
		if _, _, err := SplitRemap(c.UsernsRemap); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) fill() error {
	if c.DataRoot == "" {
		c.DataRoot = DefaultDataRoot
	}
	if c.ExecRoot == "" {
		c.ExecRoot = DefaultExecRoot
	}
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if len(c.Hosts) == 0 {
		c.Hosts = []string{DefaultHost}
	}
	return nil
}

// LiveRestoreSet reports whether daemon.json set live-restore.
func (c *Config) LiveRestoreSet() bool { return c.liveRestoreSet }

// SetLiveRestore sets live-restore (berth's default is true: monitors
// keep containers running across daemon restarts at no cost).
func (c *Config) SetLiveRestore(v bool) { c.LiveRestore, c.liveRestoreSet = v, true }

// SocketPath is the path of the first unix host.
func (c *Config) SocketPath() string {
	return strings.TrimPrefix(c.Hosts[0], "unix://")
}
