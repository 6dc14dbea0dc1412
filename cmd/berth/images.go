package main

// images, import, load, save, tag, rmi: the image verbs, through the API.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	imagetypes "github.com/docker/docker/api/types/image"
	units "github.com/docker/go-units"
)

func init() {
	register(&command{name: "images", summary: "List images", run: imagesMain})
	register(&command{name: "import", summary: "Import the contents from a tarball to create a filesystem image", run: importMain})
	register(&command{name: "load", summary: "Load an image from a tar archive or STDIN", run: loadMain})
	register(&command{name: "save", summary: "Save one or more images to a tar archive (streamed to STDOUT by default)", run: saveMain})
	register(&command{name: "tag", summary: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", run: tagMain})
	register(&command{name: "rmi", summary: "Remove one or more images", run: rmiMain})
}

type imageRow struct {
	Repository, Tag, ID, CreatedSince, CreatedAt, Size, Digest string
}

func imagesMain(args []string) int {
	v := newVerb("images", "[OPTIONS] [REPOSITORY[:TAG]]", "List images", true)
	quiet := v.fs.BoolP("quiet", "q", false, "Only show image IDs")
	noTrunc := v.fs.Bool("no-trunc", false, "Don't truncate output")
	format := v.fs.String("format", "", "Format output using a custom template")
	all := v.fs.BoolP("all", "a", false, "Show all images")
	rest, code, done := v.parse(args, 0)
	if done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	q := url.Values{}
	if *all {
		q.Set("all", "1")
	}
	if len(rest) > 0 {
		q.Set("filters", fmt.Sprintf(`{"reference":{%q:true}}`, rest[0]))
	}
	var list []imagetypes.Summary
	if err := c.JSON(context.Background(), "GET", "/images/json", q, nil, &list); err != nil {
		return cliError(err, 1)
	}
	var rows []imageRow
	for _, img := range list {
		id := img.ID
		if !*noTrunc {
			id = strings.TrimPrefix(id, "sha256:")[:12]
		}
		tags := img.RepoTags
		if len(tags) == 0 {
			tags = []string{"<none>:<none>"}
		}
		for _, t := range tags {
			i := strings.LastIndex(t, ":")
			rows = append(rows, imageRow{Repository: t[:i], Tag: t[i+1:], ID: id,
				CreatedSince: units.HumanDuration(time.Since(time.Unix(img.Created, 0))) + " ago",
				CreatedAt:    time.Unix(img.Created, 0).Format("2006-01-02 15:04:05 -0700 MST"),
				Size:         units.HumanSizeWithPrecision(float64(img.Size), 3)})
		}
	}
	if *quiet {
		seen := map[string]bool{}
		for _, r := range rows {
			if !seen[r.ID] {
				seen[r.ID] = true
				fmt.Println(r.ID)
			}
		}
		return 0
	}
	if *format != "" {
		tmpl, err := formatTemplate(strings.TrimPrefix(*format, "table "))
		if err != nil {
			return cliError(err, 1)
		}
		for _, r := range rows {
			tmpl.Execute(os.Stdout, r)
			fmt.Println()
		}
		return 0
	}
	tw := tabwriter.NewWriter(os.Stdout, 10, 1, 3, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size)
	}
	tw.Flush()
	return 0
}

// printStream prints a JSON message stream's status/stream lines and
// returns its error message, if any.
func printStream(r io.Reader, statusToo bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var m struct {
			Stream, Status, Error string
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if m.Error != "" {
			return fmt.Errorf("%s", m.Error)
		}
		if m.Stream != "" {
			fmt.Print(m.Stream)
		}
		if statusToo && m.Status != "" {
			fmt.Println(m.Status)
		}
	}
	return sc.Err()
}

func importMain(args []string) int {
	v := newVerb("import", "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]", "Import the contents from a tarball to create a filesystem image", true)
	changes := v.fs.StringArrayP("change", "c", nil, "Apply Dockerfile instruction to the created image")
	message := v.fs.StringP("message", "m", "", "Set commit message for imported image")
	v.fs.String("platform", "", "Set platform if server is multi-platform capable")
	rest, code, done := v.parse(args, 1)
	if done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	var in io.Reader = os.Stdin
	if rest[0] != "-" {
		f, err := os.Open(rest[0])
		if err != nil {
			return cliError(err, 1)
		}
		defer f.Close()
		in = f
	}
	q := url.Values{"fromSrc": {"-"}, "changes": *changes}
	if *message != "" {
		q.Set("message", *message)
	}
	if len(rest) > 1 {
		q.Set("repo", rest[1])
	}
	resp, err := c.Do(context.Background(), "POST", "/images/create", q, in, map[string][]string{"Content-Type": {"text/plain"}})
	if err != nil {
		return cliError(err, 1)
	}
	defer resp.Body.Close()
	return cliError(printStream(resp.Body, true), 1)
}

func loadMain(args []string) int {
	v := newVerb("load", "[OPTIONS]", "Load an image from a tar archive or STDIN", true)
	input := v.fs.StringP("input", "i", "", "Read from tar archive file, instead of STDIN")
	quiet := v.fs.BoolP("quiet", "q", false, "Suppress the load output")
	if _, code, done := v.parse(args, 0); done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	var in io.Reader = os.Stdin
	if *input != "" {
		f, err := os.Open(*input)
		if err != nil {
			return cliError(err, 1)
		}
		defer f.Close()
		in = f
	}
	resp, err := c.Do(context.Background(), "POST", "/images/load", url.Values{"quiet": {"1"}}, in, map[string][]string{"Content-Type": {"application/x-tar"}})
	if err != nil {
		return cliError(err, 1)
	}
	defer resp.Body.Close()
	if *quiet {
		var sink strings.Builder
		_ = sink
	}
	return cliError(printStream(resp.Body, false), 1)
}

func saveMain(args []string) int {
	v := newVerb("save", "[OPTIONS] IMAGE [IMAGE...]", "Save one or more images to a tar archive (streamed to STDOUT by default)", true)
	output := v.fs.StringP("output", "o", "", "Write to a file, instead of STDOUT")
	rest, code, done := v.parse(args, 1)
	if done {
		return code
	}
	if *output == "" {
		if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintln(os.Stderr, "cowardly refusing to save to a terminal. Use the -o flag or redirect")
			return 1
		}
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	resp, err := c.Do(context.Background(), "GET", "/images/get", url.Values{"names": rest}, nil, nil)
	if err != nil {
		return cliError(err, 1)
	}
	defer resp.Body.Close()
	var out io.Writer = os.Stdout
	if *output != "" {
		tmp := *output + ".berth-tmp"
		f, err := os.Create(tmp)
		if err != nil {
			return cliError(err, 1)
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			os.Remove(tmp)
			return cliError(err, 1)
		}
		f.Close()
		return cliError(os.Rename(tmp, *output), 1)
	}
	_, err = io.Copy(out, resp.Body)
	return cliError(err, 1)
}

func tagMain(args []string) int {
	v := newVerb("tag", "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", true)
	rest, code, done := v.parse(args, 2)
	if done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	repo, tag := rest[1], ""
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo, tag = repo[:i], repo[i+1:]
	}
	q := url.Values{"repo": {repo}}
	if tag != "" {
		q.Set("tag", tag)
	}
	return cliError(c.JSON(context.Background(), "POST", "/images/"+rest[0]+"/tag", q, nil, nil), 1)
}

func rmiMain(args []string) int {
	v := newVerb("rmi", "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images", true)
	force := v.fs.BoolP("force", "f", false, "Force removal of the image")
	noPrune := v.fs.Bool("no-prune", false, "Do not delete untagged parents")
	rest, code, done := v.parse(args, 1)
	if done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	q := url.Values{}
	if *force {
		q.Set("force", "1")
	}
	if *noPrune {
		q.Set("noprune", "1")
	}
	rc := 0
	for _, name := range rest {
		var out []imagetypes.DeleteResponse
		if err := c.JSON(context.Background(), "DELETE", "/images/"+name, q, nil, &out); err != nil {
			cliError(err, 1)
			rc = 1
			continue
		}
		for _, d := range out {
			if d.Untagged != "" {
				fmt.Println("Untagged:", d.Untagged)
			}
			if d.Deleted != "" {
				fmt.Println("Deleted:", d.Deleted)
			}
		}
	}
	return rc
}
