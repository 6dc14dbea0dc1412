package main

import (
	"context"
	"io"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

func init() {
	register(&command{name: "logs", summary: "Fetch the logs of a container", run: logsMain})
}

// parseSince accepts RFC 3339 times, unix timestamps and durations
// ("10m": that long ago), as docker does.
func parseSince(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return strconv.FormatInt(time.Now().Add(-d).Unix(), 10), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return strconv.FormatInt(t.Unix(), 10), nil
		}
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s, nil
	}
	return "", &timeError{s}
}

type timeError struct{ v string }

func (e *timeError) Error() string {
	return "invalid value for \"since\"/\"until\": " + e.v + " (use a duration like 10m, RFC 3339 or a unix timestamp)"
}

func logsMain(args []string) int {
	v := newVerb("logs", "[OPTIONS] CONTAINER", "Fetch the logs of a container", true)
	follow := v.fs.BoolP("follow", "f", false, "Follow log output")
	ts := v.fs.BoolP("timestamps", "t", false, "Show timestamps")
	tail := v.fs.StringP("tail", "n", "all", "Number of lines to show from the end of the logs")
	since := v.fs.String("since", "", "Show logs since timestamp or relative (e.g. 42m)")
	until := v.fs.String("until", "", "Show logs before a timestamp or relative (e.g. 42m)")
	v.fs.Bool("details", false, "Show extra details provided to logs")
	rest, code, done := v.parse(args, 1)
	if done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	var info container.InspectResponse
	if err := c.JSON(context.Background(), "GET", "/containers/"+rest[0]+"/json", nil, nil, &info); err != nil {
		return cliError(err, 1)
	}
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "tail": {*tail}}
	if *follow {
		q.Set("follow", "1")
	}
	if *ts {
		q.Set("timestamps", "1")
	}
	for k, val := range map[string]string{"since": *since, "until": *until} {
		s, err := parseSince(val)
		if err != nil {
			return cliError(err, 1)
		}
		if s != "" {
			q.Set(k, s)
		}
	}
	resp, err := c.Do(context.Background(), "GET", "/containers/"+rest[0]+"/logs", q, nil, nil)
	if err != nil {
		return cliError(err, 1)
	}
	defer resp.Body.Close()
	if info.Config != nil && info.Config.Tty {
		io.Copy(os.Stdout, resp.Body)
	} else {
		stdcopy.StdCopy(os.Stdout, os.Stderr, resp.Body)
	}
	return 0
}
