package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/distribution/reference"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/registry"
)

// berth pull and berth push: the docker CLI's verbs, through the daemon's
// Docker API (POST /images/create?fromImage=…, POST /images/{name}/push),
// with credentials from ~/.docker/config.json sent as X-Registry-Auth and
// the progress drawn as the docker CLI draws it.

func init() {
	registerVerb(&verb{name: "pull", group: "image", under: []string{"pull"}, use: "[OPTIONS] NAME[:TAG|@DIGEST]",
		summary: "Download an image from a registry", minArgs: 1, maxArgs: 1, setup: pullSetup})
	registerVerb(&verb{name: "push", group: "image", under: []string{"push"}, use: "[OPTIONS] NAME[:TAG]",
		summary: "Upload an image to a registry", minArgs: 1, maxArgs: 1, setup: pushSetup})
}

// credentials reads the docker CLI's credentials for the reference's
// registry (none: anonymous).
func credentials(named reference.Named, stderr io.Writer) *registry.AuthConfig {
	a, err := registry.DockerConfigAuth("", reference.Domain(named))
	if err != nil {
		fmt.Fprintln(stderr, "WARNING:", err)
		return nil
	}
	return a
}

// showStream draws a message stream on out (quiet: only errors count).
func showStream(r io.Reader, out io.Writer, quiet bool) error {
	if quiet {
		out = io.Discard
	}
	tty := false
	width := 200
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		tty = true
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			width = w
		}
	}
	return registry.Display(r, out, tty, width, nil)
}

// pullImage pulls named through the daemon, drawing the progress on out.
func pullImage(c *cli, named reference.Named, platform string, out io.Writer, quiet bool) error {
	api, err := c.connect()
	if err != nil {
		return err
	}
	named = reference.TagNameOnly(named)
	q := url.Values{"fromImage": {reference.TrimNamed(named).String()}}
	if d, ok := named.(reference.Digested); ok {
		q.Set("tag", d.Digest().String())
	} else if t, ok := named.(reference.Tagged); ok {
		q.Set("tag", t.Tag())
	}
	if platform != "" {
		q.Set("platform", platform)
	}
	body, _, err := api.Stream(c.ctxt(), client.Request{Method: http.MethodPost, Path: "/images/create", Query: q,
		Header: http.Header{"X-Registry-Auth": {registry.EncodeAuthHeader(credentials(named, c.stderr))}}})
	if err != nil {
		return err
	}
	defer body.Close()
	return showStream(body, out, quiet)
}

func pullSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	platform := fs.String("platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	quiet := fs.BoolP("quiet", "q", false, "Suppress verbose output")
	allTags := fs.BoolP("all-tags", "a", false, "Download all tagged images in the repository")
	fs.Bool("disable-content-trust", true, "Skip image verification")
	return func(c *cli, args []string) int {
		if *allTags {
			return c.errorf(1, "berth pull: --all-tags is not supported yet: pull each tag")
		}
		named, err := reference.ParseNormalizedNamed(args[0])
		if err != nil {
			return c.errorf(1, "invalid reference format: %v", err)
		}
		named = reference.TagNameOnly(named)
		if err := pullImage(c, named, *platform, c.stdout, *quiet); err != nil {
			return c.fail(err, 1)
		}
		fmt.Fprintln(c.stdout, named.String())
		return 0
	}
}

func pushSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	quiet := fs.BoolP("quiet", "q", false, "Suppress verbose output")
	allTags := fs.BoolP("all-tags", "a", false, "Push all tags of an image to the repository")
	fs.Bool("disable-content-trust", true, "Skip image signing")
	return func(c *cli, args []string) int {
		named, err := reference.ParseNormalizedNamed(args[0])
		if err != nil {
			return c.errorf(1, "invalid reference format: %v", err)
		}
		if _, ok := named.(reference.Digested); ok {
			return c.errorf(1, "invalid reference format: push a tag, not a digest")
		}
		q := url.Values{}
		if t, ok := named.(reference.Tagged); ok {
			if *allTags {
				return c.errorf(1, "tag can't be used with --all-tags/-a")
			}
			q.Set("tag", t.Tag())
		} else if !*allTags {
			q.Set("tag", "latest")
			fmt.Fprintln(c.stdout, "Using default tag: latest")
		}
		api := c.client()
		if api == nil {
			return 1
		}
		body, _, err := api.Stream(c.ctxt(), client.Request{Method: http.MethodPost,
			Path: "/images/" + reference.TrimNamed(named).String() + "/push", Query: q,
			Header: http.Header{"X-Registry-Auth": {registry.EncodeAuthHeader(credentials(named, c.stderr))}}})
		if err != nil {
			return c.fail(err, 1)
		}
		defer body.Close()
		if err := showStream(body, c.stdout, *quiet); err != nil {
			return c.fail(err, 1)
		}
		if *quiet {
			fmt.Fprintln(c.stdout, named.String())
		}
		return 0
	}
}
