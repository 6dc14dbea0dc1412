package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/docker/docker/api/types/container"
)

// runtimeStats is the data of `runtime events --stats` (runc's shape).
type runtimeStats struct {
	Data struct {
		CPU struct {
			Usage struct {
				Total  uint64   `json:"total"`
				Percpu []uint64 `json:"percpu"`
				Kernel uint64   `json:"kernel"`
				User   uint64   `json:"user"`
			} `json:"usage"`
			Throttling struct {
				Periods          uint64 `json:"periods"`
				ThrottledPeriods uint64 `json:"throttledPeriods"`
				ThrottledTime    uint64 `json:"throttledTime"`
			} `json:"throttling"`
		} `json:"cpu"`
		Memory struct {
			Usage struct {
				Limit   uint64 `json:"limit"`
				Usage   uint64 `json:"usage"`
				Max     uint64 `json:"max"`
				Failcnt uint64 `json:"failcnt"`
			} `json:"usage"`
			Raw map[string]uint64 `json:"raw"`
		} `json:"memory"`
		Pids struct {
			Current uint64 `json:"current"`
			Limit   uint64 `json:"limit"`
		} `json:"pids"`
		Blkio struct {
			IoServiceBytesRecursive []struct {
				Major uint64 `json:"major"`
				Minor uint64 `json:"minor"`
				Op    string `json:"op"`
				Value uint64 `json:"value"`
			} `json:"ioServiceBytesRecursive"`
		} `json:"blkio"`
	} `json:"data"`
}

// sample takes one stats sample of a running container.
func (e *Engine) sample(c *Container) (*container.StatsResponse, error) {
	out, err := e.runtime("events", "--stats", c.ID)
	if err != nil {
		return nil, err
	}
	var rs runtimeStats
	if err := json.Unmarshal(out, &rs); err != nil {
		return nil, fmt.Errorf("runtime stats of %s: %w", c.ID[:12], err)
	}
	d := rs.Data
	s := &container.StatsResponse{}
	s.Read = time.Now().UTC()
	s.CPUStats.CPUUsage.TotalUsage = d.CPU.Usage.Total
	s.CPUStats.CPUUsage.PercpuUsage = d.CPU.Usage.Percpu
	s.CPUStats.CPUUsage.UsageInKernelmode = d.CPU.Usage.Kernel
	s.CPUStats.CPUUsage.UsageInUsermode = d.CPU.Usage.User
	s.CPUStats.SystemUsage = systemCPUUsage()
	s.CPUStats.OnlineCPUs = uint32(runtime.NumCPU())
	s.CPUStats.ThrottlingData = container.ThrottlingData{Periods: d.CPU.Throttling.Periods,
		ThrottledPeriods: d.CPU.Throttling.ThrottledPeriods, ThrottledTime: d.CPU.Throttling.ThrottledTime}
	s.MemoryStats.Usage = d.Memory.Usage.Usage
	s.MemoryStats.MaxUsage = d.Memory.Usage.Max
	s.MemoryStats.Failcnt = d.Memory.Usage.Failcnt
	s.MemoryStats.Stats = d.Memory.Raw
	limit := d.Memory.Usage.Limit
	if mt := uint64(memTotal()); limit == 0 || limit > mt {
		limit = mt
	}
	s.MemoryStats.Limit = limit
	s.PidsStats.Current = d.Pids.Current
	s.PidsStats.Limit = d.Pids.Limit
	for _, b := range d.Blkio.IoServiceBytesRecursive {
		s.BlkioStats.IoServiceBytesRecursive = append(s.BlkioStats.IoServiceBytesRecursive,
			container.BlkioStatEntry{Major: b.Major, Minor: b.Minor, Op: b.Op, Value: b.Value})
	}
	c.mu.Lock()
	s.Name, s.ID = c.Name, c.ID
	c.mu.Unlock()
	return s, nil
}

// Stats sends samples: one a second when streaming; otherwise one sample
// taken a second after a first (so precpu is filled, as dockerd does), or
// at once with one-shot. A stopped container gives zeroes.
func (e *Engine) Stats(ctx context.Context, ref string, stream, oneShot bool, send func(*container.StatsResponse) error) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	take := func() *container.StatsResponse {
		c.mu.Lock()
		running := c.State.Running()
		name, id := c.Name, c.ID
		c.mu.Unlock()
		if running {
			if s, err := e.sample(c); err == nil {
				return s
			}
		}
		s := &container.StatsResponse{Name: name, ID: id}
		s.Read = time.Now().UTC()
		return s
	}
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
			return true
		}
	}
	prev := take()
	if !stream {
		if !oneShot {
			if !wait() {
				return nil
			}
			cur := take()
			cur.PreCPUStats, cur.PreRead = prev.CPUStats, prev.Read
			prev = cur
		}
		return send(prev)
	}
	if err := send(prev); err != nil {
		return nil
	}
	for wait() {
		cur := take()
		cur.PreCPUStats, cur.PreRead = prev.CPUStats, prev.Read
		if err := send(cur); err != nil {
			return nil
		}
		prev = cur
	}
	return nil
}

// systemCPUUsage is the host's CPU time in nanoseconds, from /proc/stat.
func systemCPUUsage() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[0] == "cpu" {
			var total uint64
			for _, v := range fields[1:8] {
				n, _ := strconv.ParseUint(v, 10, 64)
				total += n
			}
			return total * (1e9 / 100) // USER_HZ is 100 on Linux
		}
	}
	return 0
}

func memTotal() int64 {
	data, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n * 1024
		}
	}
	return 0
}

// Top lists the container's processes with ps(1), as dockerd does: ps
// runs on the host and its rows are kept for the container's pids.
func (e *Engine) Top(ref, psArgs string) (container.TopResponse, error) {
	var resp container.TopResponse
	c, err := e.Get(ref)
	if err != nil {
		return resp, err
	}
	c.mu.Lock()
	running := c.State.Running()
	c.mu.Unlock()
	if !running {
		return resp, errdefs.Conflictf("Container %s is not running", c.ID)
	}
	out, err := e.runtime("ps", "--format", "json", c.ID)
	if err != nil {
		return resp, err
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return resp, fmt.Errorf("runtime ps: %w", err)
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	return topFromPS(pids, strings.Fields(psArgs))
}
