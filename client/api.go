package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
)

// Typed calls for the requests the CLI makes more than once. Paths are
// escaped here; ids and names are passed as the user typed them (the
// daemon resolves names, ID prefixes and image references).

func esc(s string) string { return url.PathEscape(s) }

// Version is GET /version.
func (c *Client) Version(ctx context.Context) (types.Version, error) {
	var v types.Version
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/version"}, &v)
	return v, err
}

// Info is GET /info.
func (c *Client) Info(ctx context.Context) (system.Info, error) {
	var v system.Info
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/info"}, &v)
	return v, err
}

// CreateBody is what POST /containers/create takes.
type CreateBody struct {
	*container.Config
	HostConfig       *container.HostConfig     `json:"HostConfig,omitempty"`
	NetworkingConfig *network.NetworkingConfig `json:"NetworkingConfig,omitempty"`
}

// ContainerCreate is POST /containers/create?name=&platform=.
func (c *Client) ContainerCreate(ctx context.Context, body CreateBody, name, platform string) (container.CreateResponse, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	if platform != "" {
		q.Set("platform", platform)
	}
	var r container.CreateResponse
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: "/containers/create", Query: q, JSON: body}, &r)
	return r, err
}

// ContainerInspect is GET /containers/{id}/json.
func (c *Client) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	var r container.InspectResponse
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/containers/" + esc(id) + "/json"}, &r)
	return r, err
}

// ContainerPost sends POST /containers/{id}/{verb} with a query and no body.
func (c *Client) ContainerPost(ctx context.Context, id, verb string, q url.Values) error {
	return c.Call(ctx, Request{Method: http.MethodPost, Path: "/containers/" + esc(id) + "/" + verb, Query: q}, nil)
}

// ContainerStart is POST /containers/{id}/start.
func (c *Client) ContainerStart(ctx context.Context, id string) error {
	return c.ContainerPost(ctx, id, "start", nil)
}

// ContainerResize is POST /containers/{id}/resize?h=&w=.
func (c *Client) ContainerResize(ctx context.Context, id string, h, w uint) error {
	return c.ContainerPost(ctx, id, "resize", url.Values{"h": {strconv.Itoa(int(h))}, "w": {strconv.Itoa(int(w))}})
}

// ExecResize is POST /exec/{id}/resize?h=&w=.
func (c *Client) ExecResize(ctx context.Context, id string, h, w uint) error {
	return c.Call(ctx, Request{Method: http.MethodPost, Path: "/exec/" + esc(id) + "/resize",
		Query: url.Values{"h": {strconv.Itoa(int(h))}, "w": {strconv.Itoa(int(w))}}}, nil)
}

// Waiter is a pending POST /containers/{id}/wait: the daemon has answered
// with its headers (so the container may be started now) and will send the
// exit status when the condition holds.
type Waiter struct {
	C <-chan WaitResult
}

// WaitResult is the end of a wait.
type WaitResult struct {
	StatusCode int64
	Err        error
}

// ContainerWait sends the wait request and returns once the daemon has
// answered its headers; the result arrives on the Waiter's channel.
func (c *Client) ContainerWait(ctx context.Context, id, condition string) (*Waiter, error) {
	q := url.Values{}
	if condition != "" {
		q.Set("condition", condition)
	}
	resp, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/containers/" + esc(id) + "/wait", Query: q})
	if err != nil {
		return nil, err
	}
	ch := make(chan WaitResult, 1)
	go func() {
		defer resp.Body.Close()
		var w container.WaitResponse
		if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
			ch <- WaitResult{StatusCode: -1, Err: fmt.Errorf("wait for container %s: %w", id, err)}
			return
		}
		if w.Error != nil && w.Error.Message != "" {
			ch <- WaitResult{StatusCode: w.StatusCode, Err: fmt.Errorf("%s", w.Error.Message)}
			return
		}
		ch <- WaitResult{StatusCode: w.StatusCode}
	}()
	return &Waiter{C: ch}, nil
}

// ExecCreate is POST /containers/{id}/exec.
func (c *Client) ExecCreate(ctx context.Context, id string, opts container.ExecOptions) (string, error) {
	var r container.ExecCreateResponse
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: "/containers/" + esc(id) + "/exec", JSON: opts}, &r)
	return r.ID, err
}

// ExecInspect is GET /exec/{id}/json.
func (c *Client) ExecInspect(ctx context.Context, id string) (container.ExecInspect, error) {
	var r container.ExecInspect
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/exec/" + esc(id) + "/json"}, &r)
	return r, err
}

// Stream sends a request whose answer is a stream (logs, events, pull,
// export); the caller closes it.
func (c *Client) Stream(ctx context.Context, r Request) (io.ReadCloser, http.Header, error) {
	resp, err := c.Do(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	return resp.Body, resp.Header, nil
}
