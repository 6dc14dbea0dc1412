package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	units "github.com/docker/go-units"
)

func init() {
	register(&command{name: "ps", summary: "List containers", run: psMain})
}

// psRow is what --format templates see, with docker's field names.
type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Ports, State, Status, Names, Networks, Mounts string
	Labels                                                                                   string
	c                                                                                        container.Summary
}

// Label returns one label's value ({{.Label "k"}}).
func (r psRow) Label(k string) string { return r.c.Labels[k] }

func psMain(args []string) int {
	v := newVerb("ps", "[OPTIONS]", "List containers", true)
	all := v.fs.BoolP("all", "a", false, "Show all containers (default shows just running)")
	quiet := v.fs.BoolP("quiet", "q", false, "Only display container IDs")
	noTrunc := v.fs.Bool("no-trunc", false, "Don't truncate output")
	last := v.fs.IntP("last", "n", -1, "Show n last created containers (includes all states)")
	latest := v.fs.BoolP("latest", "l", false, "Show the latest created container (includes all states)")
	format := v.fs.String("format", "", "Format output using a custom template")
	filt := v.fs.StringArrayP("filter", "f", nil, "Filter output based on conditions provided")
	v.fs.BoolP("size", "s", false, "Display total file sizes")
	if _, code, done := v.parse(args, 0); done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	q := url.Values{}
	if *all || *last > 0 || *latest {
		q.Set("all", "1")
	}
	if *latest {
		*last = 1
	}
	if *last > 0 {
		q.Set("limit", fmt.Sprint(*last))
	}
	if len(*filt) > 0 {
		args := filters.NewArgs()
		for _, f := range *filt {
			k, val, ok := strings.Cut(f, "=")
			if !ok {
				fmt.Fprintf(os.Stderr, "invalid argument %q for \"-f, --filter\" flag: bad format of filter (expected name=value)\n", f)
				return 125
			}
			args.Add(k, val)
		}
		js, _ := filters.ToJSON(args)
		q.Set("filters", js)
	}
	var list []container.Summary
	if err := c.JSON(context.Background(), "GET", "/containers/json", q, nil, &list); err != nil {
		return cliError(err, 1)
	}
	rows := make([]psRow, 0, len(list))
	for _, s := range list {
		id, cmd := s.ID, s.Command
		if !*noTrunc {
			id = id[:12]
			if len(cmd) > 20 {
				cmd = cmd[:19] + "…"
			}
		}
		names := make([]string, len(s.Names))
		for i, n := range s.Names {
			names[i] = strings.TrimPrefix(n, "/")
		}
		var labels []string
		for k, val := range s.Labels {
			labels = append(labels, k+"="+val)
		}
		rows = append(rows, psRow{
			ID: id, Image: s.Image, Command: `"` + cmd + `"`, CreatedAt: time.Unix(s.Created, 0).Format("2006-01-02 15:04:05 -0700 MST"),
			RunningFor: units.HumanDuration(time.Since(time.Unix(s.Created, 0))) + " ago", State: s.State, Status: s.Status,
			Names: strings.Join(names, ","), Labels: strings.Join(labels, ","), c: s,
		})
	}
	if *quiet {
		for _, r := range rows {
			fmt.Println(r.ID)
		}
		return 0
	}
	if *format != "" && *format != "table" {
		tf := strings.TrimPrefix(*format, "table ")
		tmpl, err := formatTemplate(tf)
		if err != nil {
			fmt.Fprintln(os.Stderr, "template parsing error:", err)
			return 1
		}
		tw := tabwriter.NewWriter(os.Stdout, 10, 1, 3, ' ', 0)
		for _, r := range rows {
			if err := tmpl.Execute(tw, r); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
		return 0
	}
	tw := tabwriter.NewWriter(os.Stdout, 10, 1, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Ports, r.Names)
	}
	tw.Flush()
	return 0
}
