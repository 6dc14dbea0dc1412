package main

import (
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

	"github.com/distribution/reference"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/berth-dev/berth/registry"
)

// berth pull and berth push: the docker CLI's verbs, through the daemon's
// Docker API (POST /images/create?fromImage=…, POST /images/{name}/push),
// with credentials from ~/.docker/config.json sent as X-Registry-Auth and
// the progress drawn as the docker CLI draws it.

func init() {
	register(&command{name: "pull", summary: "Download an image from a registry", run: pullMain})
	register(&command{name: "push", summary: "Upload an image to a registry", run: pushMain})
}

const pullUsage = `Usage:  berth pull [OPTIONS] NAME[:TAG|@DIGEST]

Download an image from a registry

Options:
  -H, --host string       daemon socket (default $DOCKER_HOST or ` + defaultHost + `)
      --platform string   Set platform if server is multi-platform capable
  -q, --quiet             Suppress verbose output
`

const pushUsage = `Usage:  berth push [OPTIONS] NAME[:TAG]

Upload an image to a registry

Options:
  -a, --all-tags          Push all tags of an image to the repository
  -H, --host string       daemon socket (default $DOCKER_HOST or ` + defaultHost + `)
  -q, --quiet             Suppress verbose output
`

// apiClient talks to the daemon's Docker API on a unix socket.
type apiClient struct {
	host string
	http *http.Client
}

func newAPIClient(host string) (*apiClient, error) {
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	if host == "" {
		host = defaultHost
	}
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "unix" || u.Path == "" {
		return nil, fmt.Errorf("daemon host %q: only unix:///path sockets are supported", host)
	}
	sock := u.Path
	return &apiClient{host: host, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}}, nil
}

// post sends a request and returns the response of a 2xx status; other
// statuses become the daemon's message, as the docker CLI prints it.
func (c *apiClient) post(path string, q url.Values, auth *registry.AuthConfig) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, "http://berth/"+dockerAPIVersion+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Registry-Auth", registry.EncodeAuthHeader(auth))
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("Cannot connect to the berth daemon at %s. Is the berth daemon running?", c.host)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var m struct{ Message string }
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(b, &m) != nil || m.Message == "" {
		m.Message = strings.TrimSpace(string(b))
	}
	return nil, fmt.Errorf("Error response from daemon: %s", m.Message)
}

// credentials reads the docker CLI's credentials for the reference's
// registry (none: anonymous).
func credentials(named reference.Named) *registry.AuthConfig {
	a, err := registry.DockerConfigAuth("", reference.Domain(named))
	if err != nil {
		fmt.Fprintln(os.Stderr, "WARNING:", err)
		return nil
	}
	return a
}

// showStream draws a message stream on stdout (quiet: only errors count).
func showStream(r io.Reader, quiet bool) error {
	out := io.Writer(os.Stdout)
	if quiet {
		out = io.Discard
	}
	tty := !quiet && term.IsTerminal(int(os.Stdout.Fd()))
	width := 200
	if tty {
		if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			width = w
		}
	}
	return registry.Display(r, out, tty, width, nil)
}

func pullMain(args []string) int {
	fs := pflag.NewFlagSet("pull", pflag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, pullUsage) }
	host := fs.StringP("host", "H", "", "")
	platform := fs.String("platform", "", "")
	quiet := fs.BoolP("quiet", "q", false, "")
	fs.BoolP("all-tags", "a", false, "")
	fs.Bool("disable-content-trust", true, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "berth pull: %v\nSee 'berth pull --help'.\n", err)
		return 125
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(os.Stderr, "\"berth pull\" requires exactly 1 argument.\nSee 'berth pull --help'.\n\n%s", pullUsage)
		return 1
	}
	if all, _ := fs.GetBool("all-tags"); all {
		fmt.Fprintln(os.Stderr, "berth pull: --all-tags is not supported yet: pull each tag")
		return 1
	}
	named, err := reference.ParseNormalizedNamed(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "invalid reference format: %v\n", err)
		return 1
	}
	named = reference.TagNameOnly(named)
	q := url.Values{"fromImage": {reference.TrimNamed(named).String()}}
	if d, ok := named.(reference.Digested); ok {
		q.Set("tag", d.Digest().String())
	} else if t, ok := named.(reference.Tagged); ok {
		q.Set("tag", t.Tag())
	}
	if *platform != "" {
		q.Set("platform", *platform)
	}
	c, err := newAPIClient(*host)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp, err := c.post("/images/create", q, credentials(named))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	if err := showStream(resp.Body, *quiet); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(named.String())
	return 0
}

func pushMain(args []string) int {
	fs := pflag.NewFlagSet("push", pflag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, pushUsage) }
	host := fs.StringP("host", "H", "", "")
	quiet := fs.BoolP("quiet", "q", false, "")
	allTags := fs.BoolP("all-tags", "a", false, "")
	fs.Bool("disable-content-trust", true, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "berth push: %v\nSee 'berth push --help'.\n", err)
		return 125
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(os.Stderr, "\"berth push\" requires exactly 1 argument.\nSee 'berth push --help'.\n\n%s", pushUsage)
		return 1
	}
	named, err := reference.ParseNormalizedNamed(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "invalid reference format: %v\n", err)
		return 1
	}
	if _, ok := named.(reference.Digested); ok {
		fmt.Fprintln(os.Stderr, "invalid reference format: push a tag, not a digest")
		return 1
	}
	q := url.Values{}
	if t, ok := named.(reference.Tagged); ok {
		if *allTags {
			fmt.Fprintln(os.Stderr, "tag can't be used with --all-tags/-a")
			return 1
		}
		q.Set("tag", t.Tag())
	} else if !*allTags {
		q.Set("tag", "latest")
		fmt.Println("Using default tag: latest")
	}
	c, err := newAPIClient(*host)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp, err := c.post("/images/"+reference.TrimNamed(named).String()+"/push", q, credentials(named))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	if err := showStream(resp.Body, *quiet); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if *quiet {
		fmt.Println(named.String())
	}
	return 0
}
