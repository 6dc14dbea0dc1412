package main

// berth inspect CONTAINER|IMAGE (Docker's low-level inspect; the
// instruments keep `berth inspect ns|caps|cgroup|isolation`), top, stats,
// info.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/system"
	units "github.com/docker/go-units"
)

func init() {
	inspectObjects = objectsInspectMain
	register(&command{name: "top", summary: "Display the running processes of a container", run: topMain})
	register(&command{name: "stats", summary: "Display a live stream of container(s) resource usage statistics", run: statsMain})
	register(&command{name: "info", summary: "Display system-wide information", run: infoMain})
}

func objectsInspectMain(args []string) int {
	v := newVerb("inspect", "[OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on containers and images", true)
	format := v.fs.StringP("format", "f", "", "Format output using a custom template")
	typ := v.fs.String("type", "", "Only inspect objects of the given type (container, image)")
	v.fs.BoolP("size", "s", false, "Display total file sizes if the type is container")
	ids, code, done := v.parse(args, 1)
	if done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	var docs []json.RawMessage
	rc := 0
	for _, id := range ids {
		var raw json.RawMessage
		err := fmt.Errorf("no such object")
		if *typ == "" || *typ == "container" {
			err = c.JSON(context.Background(), "GET", "/containers/"+id+"/json", nil, nil, &raw)
		}
		if err != nil && (*typ == "" || *typ == "image") {
			err = c.JSON(context.Background(), "GET", "/images/"+id+"/json", nil, nil, &raw)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "Error: No such object: %s\n", id)
			rc = 1
			continue
		}
		docs = append(docs, raw)
	}
	if *format != "" {
		tmpl, err := formatTemplate(*format)
		if err != nil {
			fmt.Fprintln(os.Stderr, "template parsing error:", err)
			return 1
		}
		for _, d := range docs {
			var v any
			json.Unmarshal(d, &v)
			if err := tmpl.Execute(os.Stdout, v); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			fmt.Println()
		}
		return rc
	}
	out, _ := json.MarshalIndent(docs, "", "    ")
	if len(docs) == 0 {
		out = []byte("[]")
	}
	fmt.Println(string(out))
	return rc
}

func topMain(args []string) int {
	v := newVerb("top", "CONTAINER [ps OPTIONS]", "Display the running processes of a container", false)
	rest, code, done := v.parse(args, 1)
	if done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	q := url.Values{}
	if len(rest) > 1 {
		q.Set("ps_args", strings.Join(rest[1:], " "))
	}
	var top container.TopResponse
	if err := c.JSON(context.Background(), "GET", "/containers/"+rest[0]+"/top", q, nil, &top); err != nil {
		return cliError(err, 1)
	}
	tw := tabwriter.NewWriter(os.Stdout, 20, 1, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(top.Titles, "\t"))
	for _, p := range top.Processes {
		fmt.Fprintln(tw, strings.Join(p, "\t"))
	}
	tw.Flush()
	return 0
}

func cpuPercent(s *container.StatsResponse) float64 {
	cpu := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sys := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	n := float64(s.CPUStats.OnlineCPUs)
	if sys > 0 && cpu > 0 {
		return cpu / sys * n * 100
	}
	return 0
}

func statsLine(s *container.StatsResponse) string {
	mem := float64(s.MemoryStats.Usage)
	if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && float64(v) < mem {
		mem -= float64(v)
	} else if v, ok := s.MemoryStats.Stats["inactive_file"]; ok && float64(v) < mem {
		mem -= float64(v)
	}
	limit := float64(s.MemoryStats.Limit)
	pct := 0.0
	if limit > 0 {
		pct = mem / limit * 100
	}
	var rd, wr uint64
	for _, b := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(b.Op) {
		case "read":
			rd += b.Value
		case "write":
			wr += b.Value
		}
	}
	var rx, tx uint64
	for _, n := range s.Networks {
		rx += n.RxBytes
		tx += n.TxBytes
	}
	id := s.ID
	if len(id) > 12 {
		id = id[:12]
	}
	return fmt.Sprintf("%s\t%s\t%.2f%%\t%s / %s\t%.2f%%\t%s / %s\t%s / %s\t%d", id, strings.TrimPrefix(s.Name, "/"), cpuPercent(s),
		units.BytesSize(mem), units.BytesSize(limit), pct, units.HumanSizeWithPrecision(float64(rx), 3), units.HumanSizeWithPrecision(float64(tx), 3),
		units.HumanSizeWithPrecision(float64(rd), 3), units.HumanSizeWithPrecision(float64(wr), 3), s.PidsStats.Current)
}

const statsHeader = "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS"

func statsMain(args []string) int {
	v := newVerb("stats", "[OPTIONS] [CONTAINER...]", "Display a live stream of container(s) resource usage statistics", true)
	noStream := v.fs.Bool("no-stream", false, "Disable streaming stats and only pull the first result")
	all := v.fs.BoolP("all", "a", false, "Show all containers (default shows just running)")
	ids, code, done := v.parse(args, 0)
	if done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	if len(ids) == 0 {
		q := url.Values{}
		if *all {
			q.Set("all", "1")
		}
		var list []container.Summary
		if err := c.JSON(context.Background(), "GET", "/containers/json", q, nil, &list); err != nil {
			return cliError(err, 1)
		}
		for _, s := range list {
			ids = append(ids, s.ID)
		}
	}
	if *noStream {
		tw := tabwriter.NewWriter(os.Stdout, 10, 1, 3, ' ', 0)
		fmt.Fprintln(tw, statsHeader)
		rc := 0
		for _, id := range ids {
			var s container.StatsResponse
			if err := c.JSON(context.Background(), "GET", "/containers/"+id+"/stats", url.Values{"stream": {"0"}}, nil, &s); err != nil {
				cliError(err, 1)
				rc = 1
				continue
			}
			fmt.Fprintln(tw, statsLine(&s))
		}
		tw.Flush()
		return rc
	}
	// Streaming: redraw the table once a second from each container's stream.
	type upd struct {
		i int
		s *container.StatsResponse
	}
	ch := make(chan upd)
	for i, id := range ids {
		go func(i int, id string) {
			resp, err := c.Do(context.Background(), "GET", "/containers/"+id+"/stats", nil, nil, nil)
			if err != nil {
				cliError(err, 1)
				return
			}
			defer resp.Body.Close()
			dec := json.NewDecoder(resp.Body)
			for {
				var s container.StatsResponse
				if err := dec.Decode(&s); err != nil {
					return
				}
				ch <- upd{i, &s}
			}
		}(i, id)
	}
	cur := make([]*container.StatsResponse, len(ids))
	for u := range ch {
		cur[u.i] = u.s
		var buf bytes.Buffer
		tw := tabwriter.NewWriter(&buf, 10, 1, 3, ' ', 0)
		fmt.Fprintln(tw, statsHeader)
		for _, s := range cur {
			if s != nil {
				fmt.Fprintln(tw, statsLine(s))
			}
		}
		tw.Flush()
		fmt.Print("\033[2J\033[H")
		io.Copy(os.Stdout, &buf)
	}
	return 0
}

func infoMain(args []string) int {
	v := newVerb("info", "[OPTIONS]", "Display system-wide information", true)
	format := v.fs.StringP("format", "f", "", "Format output using a custom template")
	if _, code, done := v.parse(args, 0); done {
		return code
	}
	c, err := v.client()
	if err != nil {
		return cliError(err, 1)
	}
	var info system.Info
	if err := c.JSON(context.Background(), "GET", "/info", nil, nil, &info); err != nil {
		return cliError(err, 1)
	}
	if *format != "" {
		tmpl, err := formatTemplate(*format)
		if err != nil {
			return cliError(err, 1)
		}
		tmpl.Execute(os.Stdout, info)
		fmt.Println()
		return 0
	}
	p := func(k string, v any) { fmt.Printf(" %s: %v\n", k, v) }
	fmt.Println("Server:")
	p("Containers", info.Containers)
	fmt.Printf("  Running: %d\n  Paused: %d\n  Stopped: %d\n", info.ContainersRunning, info.ContainersPaused, info.ContainersStopped)
	p("Images", info.Images)
	p("Server Version", info.ServerVersion)
	p("Storage Driver", info.Driver)
	p("Logging Driver", info.LoggingDriver)
	p("Cgroup Driver", info.CgroupDriver)
	p("Cgroup Version", info.CgroupVersion)
	p("Default Runtime", info.DefaultRuntime)
	fmt.Println(" Security Options:")
	for _, o := range info.SecurityOptions {
		fmt.Printf("  %s\n", o)
	}
	p("Kernel Version", info.KernelVersion)
	p("Operating System", info.OperatingSystem)
	p("Architecture", info.Architecture)
	p("CPUs", info.NCPU)
	p("Total Memory", units.BytesSize(float64(info.MemTotal)))
	p("Name", info.Name)
	p("ID", info.ID)
	p("Docker Root Dir", info.DockerRootDir)
	p("Live Restore Enabled", info.LiveRestoreEnabled)
	for _, w := range info.Warnings {
		fmt.Fprintln(os.Stderr, w)
	}
	return 0
}
