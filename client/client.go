// Package client is berth's thin Docker Engine API client: the calls the
// berth CLI makes, over the daemon's unix socket, at API version 1.41,
// including hijacked attach/exec streams. It starts a daemon on demand
// when none answers on the default socket. It owns no state beyond one
// HTTP connection pool.
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
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// APIVersion is the version the client speaks.
const APIVersion = "v1.41"

// DefaultHost is the daemon socket when neither -H nor DOCKER_HOST says.
const DefaultHost = "unix:///run/berth/berth.sock"

// Client talks to one daemon.
type Client struct {
	Host string
	sock string
	http *http.Client
}

// Error is a non-2xx answer: the daemon's message and status code.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// StatusOf returns the HTTP status of an API error (0 otherwise).
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// New makes a client for host ("" = $DOCKER_HOST or DefaultHost).
func New(host string) (*Client, error) {
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	if host == "" {
		host = DefaultHost
	}
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "unix" || u.Path == "" {
		return nil, fmt.Errorf("invalid daemon host %q: berth speaks unix:///path sockets only", host)
	}
	c := &Client{Host: host, sock: u.Path}
	c.http = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", c.sock)
		},
		MaxIdleConnsPerHost: 4,
	}}
	return c, nil
}

// Socket is the daemon's socket path.
func (c *Client) Socket() string { return c.sock }

// Ping checks that a daemon answers.
func (c *Client) Ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, "http://berth/_ping", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// EnsureDaemon pings the daemon and, when none answers and the caller is
// root, starts `berth daemon -H HOST` in the background (with
// $BERTH_DAEMON_CONFIG as its --config when set; its log beside the
// socket, daemon.log) and waits for it: one command works on a fresh
// machine.
func (c *Client) EnsureDaemon() error {
	if c.Ping() == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("Cannot connect to the berth daemon at %s. Is the berth daemon running?", c.Host)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	os.MkdirAll(filepath.Dir(c.sock), 0o755)
	log, err := os.OpenFile(filepath.Join(filepath.Dir(c.sock), "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	args := []string{"daemon", "-H", c.Host}
	if cfg := os.Getenv("BERTH_DAEMON_CONFIG"); cfg != "" {
		args = append(args, "--config", cfg)
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the berth daemon: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	for i := 0; i < 400; i++ {
		if c.Ping() == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("the berth daemon exited at start; see %s", log.Name())
		case <-time.After(25 * time.Millisecond):
		}
	}
	return fmt.Errorf("the berth daemon did not answer within 10 s; see %s", log.Name())
}

func (c *Client) url(path string, q url.Values) string {
	u := "http://berth/" + APIVersion + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// Do sends a request; a non-2xx answer is an *Error with the daemon's
// message. The caller closes the body.
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, body io.Reader, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("Cannot connect to the berth daemon at %s. Is the berth daemon running?", c.Host)
		}
		return nil, err
	}
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotModified {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var m struct{ Message string }
		if json.Unmarshal(data, &m) != nil || m.Message == "" {
			m.Message = strings.TrimSpace(string(data))
		}
		return nil, &Error{Status: resp.StatusCode, Message: m.Message}
	}
	return resp, nil
}

// JSON sends in (if not nil) as JSON and decodes the answer into out
// (if not nil).
func (c *Client) JSON(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	hdr := http.Header{}
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
		hdr.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(ctx, method, path, q, body, hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	io.Copy(io.Discard, resp.Body)
	return nil
}

// Conn is a hijacked stream: reads see what followed the 101 answer.
type Conn struct {
	net.Conn
	br *bufio.Reader
}

func (c *Conn) Read(p []byte) (int, error) { return c.br.Read(p) }

// CloseWrite ends the stream's input (stdin EOF).
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Hijack sends a POST that upgrades the connection to a raw stream
// (attach, exec start) and returns the stream.
func (c *Client) Hijack(path string, q url.Values, body any) (*Conn, error) {
	conn, err := net.Dial("unix", c.sock)
	if err != nil {
		return nil, fmt.Errorf("Cannot connect to the berth daemon at %s. Is the berth daemon running?", c.Host)
	}
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(http.MethodPost, c.url(path, q), bytes.NewReader(data))
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	req.Header.Set("Content-Type", "application/json")
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		defer conn.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var m struct{ Message string }
		if json.Unmarshal(data, &m) != nil || m.Message == "" {
			m.Message = strings.TrimSpace(string(data))
		}
		return nil, &Error{Status: resp.StatusCode, Message: m.Message}
	}
	return &Conn{Conn: conn, br: br}, nil
}
