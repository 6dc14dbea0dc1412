package main

// The image verbs: images (image ls), import, load, save, tag, rmi
// (image rm), history, image prune.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	units "github.com/docker/go-units"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/berth-dev/berth/client"
)

func init() {
	registerVerb(&verb{name: "images", group: "image", under: []string{"ls", "list"}, use: "[OPTIONS] [REPOSITORY[:TAG]]",
		summary: "List images", maxArgs: 1, setup: imagesSetup})
	registerVerb(&verb{name: "import", group: "image", under: []string{"import"}, use: "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		summary: "Import the contents from a tarball to create a filesystem image", minArgs: 1, maxArgs: 2, setup: importSetup})
	registerVerb(&verb{name: "load", group: "image", under: []string{"load"}, use: "[OPTIONS]",
		summary: "Load an image from a tar archive or STDIN", maxArgs: 0, setup: loadSetup})
	registerVerb(&verb{name: "save", group: "image", under: []string{"save"}, use: "[OPTIONS] IMAGE [IMAGE...]",
		summary: "Save one or more images to a tar archive (streamed to STDOUT by default)", minArgs: 1, maxArgs: -1, setup: saveSetup})
	registerVerb(&verb{name: "tag", group: "image", under: []string{"tag"}, use: "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		summary: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", minArgs: 2, maxArgs: 2, setup: tagSetup})
	registerVerb(&verb{name: "rmi", group: "image", under: []string{"rm", "remove"}, use: "[OPTIONS] IMAGE [IMAGE...]",
		summary: "Remove one or more images", minArgs: 1, maxArgs: -1, setup: rmiSetup})
	registerVerb(&verb{name: "history", group: "image", under: []string{"history"}, use: "[OPTIONS] IMAGE",
		summary: "Show the history of an image", minArgs: 1, maxArgs: 1, setup: historySetup})
	registerVerb(&verb{group: "image", under: []string{"prune"}, use: "[OPTIONS]",
		summary: "Remove unused images", maxArgs: 0, setup: imagePruneSetup})
}

const imagesTable = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"

var imagesHeader = map[string]string{
	"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST", "CreatedSince": "CREATED",
	"CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
	"UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
}

type imageRow struct {
	s          image.Summary
	Repository string
	Tag        string
	Digest     string
	trunc      bool
}

func (r *imageRow) ID() string {
	if !r.trunc {
		return r.s.ID
	}
	return shortID(r.s.ID, true)
}
func (r *imageRow) CreatedSince() string { return humanSince(time.Unix(r.s.Created, 0)) }
func (r *imageRow) CreatedAt() string    { return time.Unix(r.s.Created, 0).String() }
func (r *imageRow) Size() string         { return units.HumanSizeWithPrecision(float64(r.s.Size), 3) }
func (r *imageRow) VirtualSize() string  { return r.Size() }
func (r *imageRow) SharedSize() string {
	if r.s.SharedSize < 0 {
		return "N/A"
	}
	return units.HumanSizeWithPrecision(float64(r.s.SharedSize), 3)
}
func (r *imageRow) UniqueSize() string {
	if r.s.SharedSize < 0 {
		return "N/A"
	}
	return units.HumanSizeWithPrecision(float64(r.s.Size-r.s.SharedSize), 3)
}
func (r *imageRow) Containers() string {
	if r.s.Containers < 0 {
		return "N/A"
	}
	return strconv.FormatInt(r.s.Containers, 10)
}

func (r *imageRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"Containers": r.Containers(), "CreatedAt": r.CreatedAt(),
		"CreatedSince": r.CreatedSince(), "Digest": r.Digest, "ID": r.ID(), "Repository": r.Repository,
		"SharedSize": r.SharedSize(), "Size": r.Size(), "Tag": r.Tag, "UniqueSize": r.UniqueSize(), "VirtualSize": r.VirtualSize()})
}

// imageRows is one row per repository:tag, as docker images shows them.
func imageRows(list []image.Summary, trunc bool) []*imageRow {
	var rows []*imageRow
	for _, s := range list {
		digests := map[string]string{}
		for _, d := range s.RepoDigests {
			repo, dig, _ := strings.Cut(d, "@")
			digests[repo] = dig
		}
		if len(s.RepoTags) == 0 {
			repo, dig := "<none>", "<none>"
			for r, d := range digests {
				repo, dig = r, d
			}
			rows = append(rows, &imageRow{s: s, Repository: repo, Tag: "<none>", Digest: dig, trunc: trunc})
			continue
		}
		for _, rt := range s.RepoTags {
			repo, tag := "<none>", "<none>"
			if named, err := reference.ParseNormalizedNamed(rt); err == nil {
				repo = reference.FamiliarName(named)
				if t, ok := named.(reference.Tagged); ok {
					tag = t.Tag()
				}
			}
			dig := digests[repo]
			if dig == "" {
				dig = "<none>"
			}
			rows = append(rows, &imageRow{s: s, Repository: repo, Tag: tag, Digest: dig, trunc: trunc})
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].s.Created > rows[j].s.Created })
	return rows
}

func imagesSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	all := fs.BoolP("all", "a", false, "Show all images (default hides intermediate images)")
	digests := fs.Bool("digests", false, "Show digests")
	var filter listOpt
	fs.VarP(&filter, "filter", "f", "Filter output based on conditions provided")
	format := fs.String("format", "", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.")
	noTrunc := fs.Bool("no-trunc", false, "Don't truncate output")
	quiet := fs.BoolP("quiet", "q", false, "Only show image IDs")
	return func(c *cli, args []string) int {
		q := url.Values{}
		if *all {
			q.Set("all", "1")
		}
		fl := filter.vals
		if len(args) == 1 {
			fl = append(fl, "reference="+args[0])
		}
		f, err := filtersQuery(fl)
		if err != nil {
			return c.errorf(125, "%v", err)
		}
		if f != "" {
			q.Set("filters", f)
		}
		api := c.client()
		if api == nil {
			return 1
		}
		var list []image.Summary
		if err := api.Call(c.ctxt(), client.Request{Method: http.MethodGet, Path: "/images/json", Query: q}, &list); err != nil {
			return c.fail(err, 1)
		}
		rows := imageRows(list, !*noTrunc)
		if *quiet && *format == "" {
			seen := map[string]bool{}
			for _, r := range rows {
				if !seen[r.s.ID] {
					seen[r.s.ID] = true
					fmt.Fprintln(c.stdout, r.ID())
				}
			}
			return 0
		}
		tbl := imagesTable
		if *digests {
			tbl = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
		}
		fm, err := newFormatter(c.stdout, *format, tbl, imagesHeader)
		if err != nil {
			return c.errorf(125, "%v", err)
		}
		for _, r := range rows {
			if err := fm.row(r); err != nil {
				return c.errorf(125, "%v", err)
			}
		}
		fm.flush()
		return 0
	}
}

// jsonStream reads a JSON-message stream (import, load, prune) and
// returns the messages, printing "stream" texts; an errorDetail is an
// error.
func jsonStream(r io.Reader, onMessage func(status, stream string)) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Status      string `json:"status"`
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		onMessage(m.Status, m.Stream)
	}
}

func importSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	var changes listOpt
	fs.VarP(&changes, "change", "c", "Apply Dockerfile instruction to the created image")
	message := fs.StringP("message", "m", "", "Set commit message for imported image")
	platform := fs.String("platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	return func(c *cli, args []string) int {
		q := url.Values{}
		if len(args) == 2 {
			if _, err := reference.ParseNormalizedNamed(args[1]); err != nil {
				return c.errorf(1, "invalid reference format: %v", err)
			}
			q.Set("repo", args[1])
		}
		for _, ch := range changes.vals {
			q.Add("changes", ch)
		}
		if *message != "" {
			q.Set("message", *message)
		}
		if *platform != "" {
			q.Set("platform", *platform)
		}
		var body io.Reader
		src := args[0]
		switch {
		case src == "-":
			q.Set("fromSrc", "-")
			body = os.Stdin
		case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
			q.Set("fromSrc", src)
		default:
			f, err := os.Open(src)
			if err != nil {
				return c.errorf(1, "%v", err)
			}
			defer f.Close()
			q.Set("fromSrc", "-")
			body = bufio.NewReaderSize(f, 1<<20)
		}
		api := c.client()
		if api == nil {
			return 1
		}
		resp, _, err := api.Stream(c.ctxt(), client.Request{Method: http.MethodPost, Path: "/images/create", Query: q,
			Body: body, Header: http.Header{"Content-Type": {"text/plain"}}})
		if err != nil {
			return c.fail(err, 1)
		}
		defer resp.Close()
		if err := jsonStream(resp, func(status, _ string) {
			if status != "" {
				fmt.Fprintln(c.stdout, status)
			}
		}); err != nil {
			return c.errorf(1, "%v", err)
		}
		return 0
	}
}

func loadSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	input := fs.StringP("input", "i", "", "Read from tar archive file, instead of STDIN")
	quiet := fs.BoolP("quiet", "q", false, "Suppress the load output")
	fs.String("platform", "", "Load only the given platform variant")
	return func(c *cli, _ []string) int {
		var in io.Reader = os.Stdin
		if *input != "" {
			f, err := os.Open(*input)
			if err != nil {
				return c.errorf(1, "%v", err)
			}
			defer f.Close()
			in = bufio.NewReaderSize(f, 1<<20)
		} else if term.IsTerminal(int(os.Stdin.Fd())) {
			return c.errorf(1, "requested load from stdin, but stdin is empty")
		}
		q := url.Values{"quiet": {"1"}}
		if !*quiet && term.IsTerminal(int(os.Stdout.Fd())) {
			q.Set("quiet", "0")
		}
		api := c.client()
		if api == nil {
			return 1
		}
		resp, _, err := api.Stream(c.ctxt(), client.Request{Method: http.MethodPost, Path: "/images/load", Query: q,
			Body: in, Header: http.Header{"Content-Type": {"application/x-tar"}}})
		if err != nil {
			return c.fail(err, 1)
		}
		defer resp.Close()
		if err := jsonStream(resp, func(_, stream string) {
			if !*quiet {
				fmt.Fprint(c.stdout, stream)
			}
		}); err != nil {
			return c.errorf(1, "%v", err)
		}
		return 0
	}
}

func saveSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	output := fs.StringP("output", "o", "", "Write to a file, instead of STDOUT")
	fs.String("platform", "", "Save only the given platform variant")
	return func(c *cli, args []string) int {
		out, code := outputFile(c, *output, "save")
		if out == nil {
			return code
		}
		if c.client() == nil {
			out.Close()
			return 1
		}
		body, _, err := c.api.Stream(c.ctxt(), client.Request{Method: http.MethodGet, Path: "/images/get", Query: url.Values{"names": args}})
		if err != nil {
			out.Close()
			if *output != "" {
				os.Remove(*output + ".berth-tmp")
			}
			return c.fail(err, 1)
		}
		defer body.Close()
		return copyToOutput(c, out, body, *output)
	}
}

func tagSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	return func(c *cli, args []string) int {
		named, err := reference.ParseNormalizedNamed(args[1])
		if err != nil {
			return c.errorf(1, "invalid reference format: %v", err)
		}
		if _, ok := named.(reference.Digested); ok {
			return c.errorf(1, "refusing to create a tag with a digest reference")
		}
		named = reference.TagNameOnly(named)
		q := url.Values{"repo": {reference.TrimNamed(named).String()}, "tag": {named.(reference.Tagged).Tag()}}
		if c.client() == nil {
			return 1
		}
		if err := c.api.Call(c.ctxt(), client.Request{Method: http.MethodPost, Path: "/images/" + args[0] + "/tag", Query: q}, nil); err != nil {
			return c.fail(err, 1)
		}
		return 0
	}
}

func rmiSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	force := fs.BoolP("force", "f", false, "Force removal of the image")
	noPrune := fs.Bool("no-prune", false, "Do not delete untagged parents")
	return func(c *cli, args []string) int {
		q := url.Values{}
		if *force {
			q.Set("force", "1")
		}
		if *noPrune {
			q.Set("noprune", "1")
		}
		return c.eachArg(args, func(a string) error {
			var dels []image.DeleteResponse
			if err := c.api.Call(c.ctxt(), client.Request{Method: http.MethodDelete, Path: "/images/" + a, Query: q}, &dels); err != nil {
				return err
			}
			for _, d := range dels {
				if d.Untagged != "" {
					fmt.Fprintln(c.stdout, "Untagged:", d.Untagged)
				} else if d.Deleted != "" {
					fmt.Fprintln(c.stdout, "Deleted:", d.Deleted)
				}
			}
			return nil
		})
	}
}

func historySetup(fs *pflag.FlagSet) func(*cli, []string) int {
	human := fs.BoolP("human", "H", true, "Print sizes and dates in human readable format")
	format := fs.String("format", "", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.")
	noTrunc := fs.Bool("no-trunc", false, "Don't truncate output")
	quiet := fs.BoolP("quiet", "q", false, "Only show image IDs")
	fs.String("platform", "", "Show history for the given platform")
	return func(c *cli, args []string) int {
		if c.client() == nil {
			return 1
		}
		var hist []image.HistoryResponseItem
		if err := c.api.Call(c.ctxt(), client.Request{Method: http.MethodGet, Path: "/images/" + args[0] + "/history"}, &hist); err != nil {
			return c.fail(err, 1)
		}
		if *quiet && *format == "" {
			for _, h := range hist {
				fmt.Fprintln(c.stdout, historyID(h.ID, !*noTrunc))
			}
			return 0
		}
		fm, err := newFormatter(c.stdout, *format, "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
			map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"})
		if err != nil {
			return c.errorf(125, "%v", err)
		}
		for _, h := range hist {
			fm.row(&historyRow{h: h, trunc: !*noTrunc, human: *human})
		}
		fm.flush()
		return 0
	}
}

func historyID(id string, trunc bool) string {
	if id == "" || id == "<missing>" {
		return "<missing>"
	}
	return shortID(id, trunc)
}

type historyRow struct {
	h            image.HistoryResponseItem
	trunc, human bool
}

func (r *historyRow) ID() string { return historyID(r.h.ID, r.trunc) }
func (r *historyRow) CreatedSince() string {
	if !r.human {
		return r.CreatedAt()
	}
	return humanSince(time.Unix(r.h.Created, 0))
}
func (r *historyRow) CreatedAt() string { return time.Unix(r.h.Created, 0).Format(time.RFC3339) }
func (r *historyRow) CreatedBy() string {
	by := strings.ReplaceAll(r.h.CreatedBy, "\t", " ")
	if r.trunc {
		by = ellipsis(by, 45)
	}
	return by
}
func (r *historyRow) Size() string {
	if !r.human {
		return strconv.FormatInt(r.h.Size, 10)
	}
	return units.HumanSizeWithPrecision(float64(r.h.Size), 3)
}
func (r *historyRow) Comment() string { return r.h.Comment }
func (r *historyRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"Comment": r.Comment(), "CreatedAt": r.CreatedAt(), "CreatedBy": r.CreatedBy(),
		"CreatedSince": r.CreatedSince(), "ID": r.ID(), "Size": r.Size()})
}

func imagePruneSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	all := fs.BoolP("all", "a", false, "Remove all unused images, not just dangling ones")
	force := fs.BoolP("force", "f", false, "Do not prompt for confirmation")
	var filter listOpt
	fs.Var(&filter, "filter", "Provide filter values (e.g. \"until=<timestamp>\")")
	return func(c *cli, _ []string) int {
		warning := "WARNING! This will remove all dangling images."
		fl := filter.vals
		if *all {
			warning = "WARNING! This will remove all images without at least one container associated to them."
			fl = append(fl, "dangling=false")
		}
		if !*force && !confirm(c, warning) {
			return 0
		}
		q := url.Values{}
		if f, err := filtersQuery(fl); err != nil {
			return c.errorf(125, "%v", err)
		} else if f != "" {
			q.Set("filters", f)
		}
		if c.client() == nil {
			return 1
		}
		var rep image.PruneReport
		if err := c.api.Call(c.ctxt(), client.Request{Method: http.MethodPost, Path: "/images/prune", Query: q}, &rep); err != nil {
			return c.fail(err, 1)
		}
		if len(rep.ImagesDeleted) > 0 {
			fmt.Fprintln(c.stdout, "Deleted Images:")
			for _, d := range rep.ImagesDeleted {
				if d.Untagged != "" {
					fmt.Fprintln(c.stdout, "untagged:", d.Untagged)
				} else {
					fmt.Fprintln(c.stdout, "deleted:", d.Deleted)
				}
			}
			fmt.Fprintln(c.stdout)
		}
		fmt.Fprintf(c.stdout, "Total reclaimed space: %s\n", units.HumanSize(float64(rep.SpaceReclaimed)))
		return 0
	}
}
