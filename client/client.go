// Package client is the berth CLI's side of the Docker Engine API: a small
// HTTP/1.1 client over the daemon's unix socket (or tcp://), API version
// 1.41, with the daemon's JSON errors as *Error, hijacked streams for
// attach and exec, and typed calls for the requests the CLI makes (the
// structures are Docker's own, github.com/docker/docker/api/types).
//
// It owns nothing on disk and starts nothing: finding or starting a daemon
// is the CLI's business (cmd/berth). It is kept free of heavy dependencies
// (no OpenTelemetry, no docker/client) so that the berth binary, which is
// also the container's init stage, starts fast.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultHost is where berth daemon listens unless told otherwise.
const DefaultHost = "unix:///run/berth/berth.sock"

// APIVersion is the version the CLI speaks (and berth daemon advertises).
const APIVersion = "1.41"

// Client talks to one daemon.
type Client struct {
	host    string
	network string // "unix" or "tcp"
	addr    string
	version string
	hc      *http.Client
}

// Host returns the daemon address as given (unix:///path, tcp://h:p).
func (c *Client) Host() string { return c.host }

// ResolveHost picks the daemon address as the docker CLI does: the flag,
// else $DOCKER_HOST, else DefaultHost.
func ResolveHost(flag string) string {
	if flag != "" {
		return flag
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return DefaultHost
}

// ParseHost splits a daemon address into a network and an address.
func ParseHost(host string) (network, addr string, err error) {
	switch {
	case strings.HasPrefix(host, "unix://"):
		addr = strings.TrimPrefix(host, "unix://")
		if addr == "" {
			return "", "", fmt.Errorf("invalid daemon host %q: unix:// needs a socket path", host)
		}
		return "unix", addr, nil
	case strings.HasPrefix(host, "tcp://"):
		u, err := url.Parse(host)
		if err != nil || u.Host == "" {
			return "", "", fmt.Errorf("invalid daemon host %q: want tcp://HOST:PORT", host)
		}
		if u.Port() == "" {
			u.Host += ":2375"
		}
		return "tcp", u.Host, nil
	case strings.HasPrefix(host, "/"):
		return "unix", host, nil
	}
	return "", "", fmt.Errorf("invalid daemon host %q: want unix:///path/to/socket or tcp://HOST:PORT", host)
}

// New returns a client of the daemon at host (see ResolveHost).
func New(host string) (*Client, error) {
	network, addr, err := ParseHost(host)
	if err != nil {
		return nil, err
	}
	c := &Client{host: host, network: network, addr: addr, version: APIVersion}
	if v := os.Getenv("DOCKER_API_VERSION"); v != "" {
		c.version = v
	}
	c.hc = &http.Client{Transport: &http.Transport{
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return c.dial(ctx) },
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}}
	return c, nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	return (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, c.network, c.addr)
}

// Error is a non-2xx answer of the daemon. Its text is what the docker
// CLI prints: "Error response from daemon: MESSAGE".
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return "Error response from daemon: " + e.Message }

// StatusOf returns the HTTP status of a daemon error, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// IsNotFound says whether the daemon answered 404.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// ConnectError says that no daemon answered at the host.
type ConnectError struct {
	Host string
	Err  error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("Cannot connect to the berth daemon at %s. Is the berth daemon running?", e.Host)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// IsConnectError says whether err means no daemon answered.
func IsConnectError(err error) bool {
	var e *ConnectError
	return errors.As(err, &e)
}

func (c *Client) url(path string, q url.Values) string {
	u := "http://berth/v" + c.version + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// Request is one API call.
type Request struct {
	Method string
	Path   string // without the version prefix: /containers/json
	Query  url.Values
	Body   io.Reader
	JSON   any // marshalled as the body when Body is nil
	Header http.Header
}

// Do sends a request and returns the response of a 2xx status (the
// caller closes its body); any other status is an *Error.
func (c *Client) Do(ctx context.Context, r Request) (*http.Response, error) {
	body := r.Body
	hdr := http.Header{}
	for k, v := range r.Header {
		hdr[k] = v
	}
	if body == nil && r.JSON != nil {
		b, err := json.Marshal(r.JSON)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
		hdr.Set("Content-Type", "application/json")
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, c.url(r.Path, r.Query), body)
	if err != nil {
		return nil, err
	}
	req.Header = hdr
	req.Header.Set("User-Agent", "berth-cli")
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &ConnectError{Host: c.host, Err: err}
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readError(resp)
}

func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &m) != nil || m.Message == "" {
		m.Message = strings.TrimSpace(string(b))
	}
	if m.Message == "" {
		m.Message = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return &Error{Status: resp.StatusCode, Message: m.Message}
}

// Call sends a request and decodes a JSON answer into out (nil: discard).
func (c *Client) Call(ctx context.Context, r Request, out any) error {
	resp, err := c.Do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		*raw = b
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode the daemon's answer to %s %s: %w", r.Method, r.Path, err)
	}
	return nil
}

// Ping asks HEAD /_ping and returns the API version the daemon advertises.
func (c *Client) Ping(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, "http://berth/_ping", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", &ConnectError{Host: c.host, Err: err}
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", &Error{Status: resp.StatusCode, Message: "ping: " + resp.Status}
	}
	return resp.Header.Get("Api-Version"), nil
}

// Conn is a hijacked connection: the raw stream of attach or exec start.
type Conn struct {
	net.Conn
	r *bufio.Reader
}

// Read reads the stream (bytes the HTTP reader buffered come first).
func (h *Conn) Read(p []byte) (int, error) { return h.r.Read(p) }

// CloseWrite half-closes the connection: the container's stdin ends.
func (h *Conn) CloseWrite() error {
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Hijack sends a request asking to upgrade the connection to a raw
// stream (POST …/attach, POST /exec/{id}/start) and returns the stream.
func (c *Client) Hijack(ctx context.Context, r Request) (*Conn, error) {
	var body []byte
	if r.JSON != nil {
		var err error
		if body, err = json.Marshal(r.JSON); err != nil {
			return nil, err
		}
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, &ConnectError{Host: c.host, Err: err}
	}
	req, err := http.NewRequest(r.Method, c.url(r.Path, r.Query), bytes.NewReader(body))
	if err != nil {
		conn.Close()
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	req.Header.Set("User-Agent", "berth-cli")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, &ConnectError{Host: c.host, Err: err}
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s %s: read the daemon's answer: %w", r.Method, r.Path, err)
	}
	switch resp.StatusCode {
	case http.StatusSwitchingProtocols:
	case http.StatusOK: // old daemons answer 200 and stream on
	default:
		err := readError(resp)
		conn.Close()
		return nil, err
	}
	return &Conn{Conn: conn, r: br}, nil
}
