package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

func init() {
	register(&command{name: "events", summary: "Get real time events from the server", run: eventsMain})
}

func eventsMain(args []string) int {
	v := newVerb("events", "[OPTIONS]", "Get real time events from the server", true)
	since := v.fs.String("since", "", "Show all events created since timestamp")
	until := v.fs.String("until", "", "Stream events until this timestamp")
	filt := v.fs.StringArrayP("filter", "f", nil, "Filter output based on conditions provided")
	format := v.fs.String("format", "", "Format the output using the given Go template")
	if _, code, done := v.parse(args, 0); done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	q := url.Values{}
	for k, val := range map[string]string{"since": *since, "until": *until} {
		s, err := parseSince(val)
		if err != nil {
			return cliError(err, 1)
		}
		if s != "" {
			q.Set(k, s)
		}
	}
	if len(*filt) > 0 {
		fa := filters.NewArgs()
		for _, f := range *filt {
			k, val, _ := strings.Cut(f, "=")
			fa.Add(k, val)
		}
		js, _ := filters.ToJSON(fa)
		q.Set("filters", js)
	}
	resp, err := c.Do(context.Background(), "GET", "/events", q, nil, nil)
	if err != nil {
		return cliError(err, 1)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m events.Message
		if err := dec.Decode(&m); err != nil {
			return 0
		}
		if *format != "" {
			tmpl, err := formatTemplate(*format)
			if err != nil {
				return cliError(err, 1)
			}
			tmpl.Execute(os.Stdout, m)
			fmt.Println()
			continue
		}
		var attrs []string
		for k, val := range m.Actor.Attributes {
			attrs = append(attrs, k+"="+val)
		}
		sort.Strings(attrs)
		fmt.Printf("%s %s %s %s (%s)\n", time.Unix(0, m.TimeNano).Format("2006-01-02T15:04:05.000000000-07:00"),
			m.Type, m.Action, m.Actor.ID, strings.Join(attrs, ", "))
	}
}
