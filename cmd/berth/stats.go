package main

// berth stats: GET /containers/{id}/stats, docker's table and its CPU
// and memory arithmetic; --no-stream prints one table, else the table is
// redrawn every second until interrupted.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	units "github.com/docker/go-units"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/berth-dev/berth/client"
)

func init() {
	registerVerb(&verb{name: "stats", group: "container", under: []string{"stats"}, use: "[OPTIONS] [CONTAINER...]",
		summary: "Display a live stream of container(s) resource usage statistics", maxArgs: -1, setup: statsSetup})
}

const statsTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsHeader = map[string]string{
	"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
	"MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

// statsRow is one container's line.
type statsRow struct {
	Container, Name, id             string
	cpu, mem, memLimit, memPerc     float64
	netRx, netTx, blkRead, blkWrite float64
	pids                            uint64
	err                             error
}

func (r *statsRow) ID() string      { return shortID(r.id, true) }
func (r *statsRow) CPUPerc() string { return fmt.Sprintf("%.2f%%", r.cpu) }
func (r *statsRow) MemPerc() string { return fmt.Sprintf("%.2f%%", r.memPerc) }
func (r *statsRow) MemUsage() string {
	return units.BytesSize(r.mem) + " / " + units.BytesSize(r.memLimit)
}
func (r *statsRow) NetIO() string {
	return units.HumanSizeWithPrecision(r.netRx, 3) + " / " + units.HumanSizeWithPrecision(r.netTx, 3)
}
func (r *statsRow) BlockIO() string {
	return units.HumanSizeWithPrecision(r.blkRead, 3) + " / " + units.HumanSizeWithPrecision(r.blkWrite, 3)
}
func (r *statsRow) PIDs() string { return fmt.Sprint(r.pids) }

func (r *statsRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"BlockIO": r.BlockIO(), "CPUPerc": r.CPUPerc(), "Container": r.Container,
		"ID": r.ID(), "MemPerc": r.MemPerc(), "MemUsage": r.MemUsage(), "Name": r.Name, "NetIO": r.NetIO(), "PIDs": r.PIDs()})
}

// fill computes the row from a stats document as the docker CLI does.
func (r *statsRow) fill(s *container.StatsResponse) {
	r.id = s.ID
	r.Name = strings.TrimPrefix(s.Name, "/")
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	online := float64(s.CPUStats.OnlineCPUs)
	if online == 0 {
		online = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	r.cpu = 0
	if sysDelta > 0 && cpuDelta > 0 {
		r.cpu = cpuDelta / sysDelta * online * 100
	}
	mem := float64(s.MemoryStats.Usage)
	if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && float64(v) < mem {
		mem -= float64(v)
	} else if v, ok := s.MemoryStats.Stats["inactive_file"]; ok && float64(v) < mem {
		mem -= float64(v)
	}
	r.mem, r.memLimit = mem, float64(s.MemoryStats.Limit)
	r.memPerc = 0
	if r.memLimit > 0 {
		r.memPerc = mem / r.memLimit * 100
	}
	r.netRx, r.netTx = 0, 0
	for _, n := range s.Networks {
		r.netRx += float64(n.RxBytes)
		r.netTx += float64(n.TxBytes)
	}
	r.blkRead, r.blkWrite = 0, 0
	for _, e := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			r.blkRead += float64(e.Value)
		case "write":
			r.blkWrite += float64(e.Value)
		}
	}
	r.pids = s.PidsStats.Current
}

func statsSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	all := fs.BoolP("all", "a", false, "Show all containers (default shows just running)")
	format := fs.String("format", "", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.")
	noStream := fs.Bool("no-stream", false, "Disable streaming stats and only pull the first result")
	noTrunc := fs.Bool("no-trunc", false, "Do not truncate output")
	return func(c *cli, args []string) int {
		api := c.client()
		if api == nil {
			return 1
		}
		ctx, stop := c.interruptible()
		defer stop()
		names := args
		if len(names) == 0 {
			q := url.Values{}
			if *all {
				q.Set("all", "1")
			}
			var list []container.Summary
			if err := api.Call(ctx, client.Request{Method: http.MethodGet, Path: "/containers/json", Query: q}, &list); err != nil {
				return c.fail(err, 1)
			}
			for _, s := range list {
				names = append(names, s.ID)
			}
		} else {
			for _, n := range names {
				if _, err := api.ContainerInspect(ctx, n); err != nil {
					return c.fail(err, 1)
				}
			}
		}
		rows := make([]*statsRow, len(names))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i, n := range names {
			rows[i] = &statsRow{Container: n, id: n}
			wg.Add(1)
			go func(r *statsRow) {
				defer wg.Done()
				streamStats(ctx, api, r, !*noStream, &mu)
			}(rows[i])
		}
		draw := func() int {
			mu.Lock()
			defer mu.Unlock()
			fm, err := newFormatter(c.stdout, *format, statsTable, statsHeader)
			if err != nil {
				return c.errorf(125, "%v", err)
			}
			for _, r := range rows {
				if *noTrunc {
					r := *r
					fm.row(&noTruncStats{&r})
					continue
				}
				fm.row(r)
			}
			fm.flush()
			return 0
		}
		if *noStream {
			wg.Wait()
			for _, r := range rows {
				if r.err != nil && !strings.Contains(r.err.Error(), "is not running") {
					return c.fail(r.err, 1)
				}
			}
			return draw()
		}
		tty := term.IsTerminal(int(os.Stdout.Fd()))
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			if tty {
				fmt.Fprint(c.stdout, "\033[2J\033[H")
			}
			if code := draw(); code != 0 {
				return code
			}
			select {
			case <-ctx.Done():
				return 0
			case <-tick.C:
			}
		}
	}
}

// noTruncStats shows the full ID.
type noTruncStats struct{ *statsRow }

func (n *noTruncStats) ID() string { return n.id }

// streamStats reads a container's stats (one document, or one a second
// while streaming) into r.
func streamStats(ctx context.Context, api *client.Client, r *statsRow, stream bool, mu *sync.Mutex) {
	q := url.Values{"stream": {"0"}}
	if stream {
		q.Set("stream", "1")
	}
	body, _, err := api.Stream(ctx, client.Request{Method: http.MethodGet, Path: containerPath(r.Container, "stats"), Query: q})
	if err != nil {
		mu.Lock()
		r.err = err
		mu.Unlock()
		return
	}
	defer body.Close()
	dec := json.NewDecoder(body)
	for {
		var s container.StatsResponse
		if err := dec.Decode(&s); err != nil {
			return
		}
		mu.Lock()
		r.fill(&s)
		mu.Unlock()
		if !stream {
			return
		}
	}
}
