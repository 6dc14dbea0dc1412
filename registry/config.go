package registry

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/distribution/reference"
)

// Docker Hub's names.
const (
	dockerHubDomain   = "docker.io"            // in references
	dockerHubRegistry = "registry-1.docker.io" // the API endpoint
	dockerHubAuthKey  = "https://index.docker.io/v1/"
)

// Defaults of daemon.json's max-concurrent-downloads and -uploads.
const (
	DefaultMaxConcurrentDownloads = 3
	DefaultMaxConcurrentUploads   = 5
)

// Config is the daemon's registry configuration, the daemon.json keys
// insecure-registries, registry-mirrors, max-concurrent-downloads and
// max-concurrent-uploads. The zero value is dockerd's default.
type Config struct {
	// Insecure lists registries (host or host:port) and networks (CIDR)
	// reached over plain HTTP or HTTPS without certificate checks. As in
	// dockerd, 127.0.0.0/8 is always insecure.
	Insecure []string `json:"insecure-registries,omitempty"`
	// Mirrors are pull-through mirrors of Docker Hub (URLs, tried in order
	// before Docker Hub itself; other registries are never mirrored).
	Mirrors []string `json:"registry-mirrors,omitempty"`
	// MaxConcurrentDownloads bounds the layers downloaded at once per pull.
	MaxConcurrentDownloads int `json:"max-concurrent-downloads,omitempty"`
	// MaxConcurrentUploads bounds the layers uploaded at once per push.
	MaxConcurrentUploads int `json:"max-concurrent-uploads,omitempty"`
}

// Validate checks the configuration as dockerd does when it starts.
func (c *Config) Validate() error {
	for _, s := range c.Insecure {
		if strings.Contains(s, "://") {
			return fmt.Errorf("insecure-registries: %q: give a host[:port] or CIDR, without a scheme", s)
		}
		if _, _, err := net.ParseCIDR(s); err == nil {
			continue
		}
		if s == "" || strings.ContainsAny(s, "/ ") {
			return fmt.Errorf("insecure-registries: %q is neither a host[:port] nor a CIDR", s)
		}
	}
	for _, m := range c.Mirrors {
		if _, _, err := parseMirror(m); err != nil {
			return err
		}
	}
	if c.MaxConcurrentDownloads < 0 || c.MaxConcurrentUploads < 0 {
		return fmt.Errorf("max-concurrent-downloads and max-concurrent-uploads must not be negative")
	}
	return nil
}

// InsecureCIDRs are the networks treated as insecure (dockerd's
// RegistryConfig.InsecureRegistryCIDRs in `docker info`).
func (c *Config) InsecureCIDRs() []string {
	out := []string{"127.0.0.0/8"}
	for _, s := range c.Insecure {
		if _, n, err := net.ParseCIDR(s); err == nil && n.String() != "127.0.0.0/8" {
			out = append(out, n.String())
		}
	}
	return out
}

func (c *Config) downloads() int {
	if c == nil || c.MaxConcurrentDownloads <= 0 {
		return DefaultMaxConcurrentDownloads
	}
	return c.MaxConcurrentDownloads
}

func (c *Config) uploads() int {
	if c == nil || c.MaxConcurrentUploads <= 0 {
		return DefaultMaxConcurrentUploads
	}
	return c.MaxConcurrentUploads
}

// IsInsecure tells whether a registry host (host or host:port) may be
// reached without TLS verification: listed by name, or an address in a
// listed network or in 127.0.0.0/8 (names are resolved for the check).
func (c *Config) IsInsecure(host string) bool {
	var cidrs []string
	if c != nil {
		for _, s := range c.Insecure {
			if _, _, err := net.ParseCIDR(s); err == nil {
				cidrs = append(cidrs, s)
			} else if strings.EqualFold(s, host) {
				return true
			}
		}
	}
	cidrs = append(cidrs, "127.0.0.0/8", "::1/128")
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	var ips []net.IP
	if ip := net.ParseIP(h); ip != nil {
		ips = []net.IP{ip}
	} else if strings.EqualFold(h, "localhost") {
		return true
	} else if len(cidrs) > 2 {
		ips, _ = net.LookupIP(h)
	}
	for _, ip := range ips {
		for _, s := range cidrs {
			if _, n, err := net.ParseCIDR(s); err == nil && n.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// parseMirror checks a registry-mirrors entry: an http(s) URL with no path.
func parseMirror(s string) (host string, plainHTTP bool, err error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false, fmt.Errorf("registry-mirrors: %q is not an http(s) URL", s)
	}
	if u.Path != "" || u.RawQuery != "" || u.User != nil {
		return "", false, fmt.Errorf("registry-mirrors: %q: a mirror URL has no path, query or user", s)
	}
	return u.Host, u.Scheme == "http", nil
}

// endpoint is one registry to try for a repository.
type endpoint struct {
	host     string // host[:port] of the API
	insecure bool   // plain HTTP allowed, TLS not verified
	mirror   bool
}

// endpoints lists where to pull a repository from: Docker Hub's mirrors
// first, then the registry the reference names.
func (c *Config) endpoints(named reference.Named, forPush bool) []endpoint {
	domain := reference.Domain(named)
	var out []endpoint
	if domain == dockerHubDomain {
		if !forPush && c != nil {
			for _, m := range c.Mirrors {
				if h, plain, err := parseMirror(m); err == nil {
					out = append(out, endpoint{host: h, insecure: plain || c.IsInsecure(h), mirror: true})
				}
			}
		}
		return append(out, endpoint{host: dockerHubRegistry})
	}
	return append(out, endpoint{host: domain, insecure: c.IsInsecure(domain)})
}
