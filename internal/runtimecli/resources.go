package runtimecli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func init() {
	register(&verb{"pause", "freeze every process of a container", func(g *globals, args []string) error {
		pos, err := parse(flags("pause"), args)
		if err != nil {
			return err
		}
		id, err := needID("pause", pos, 0)
		if err != nil {
			return err
		}
		return g.runtime().Pause(id)
	}})
	register(&verb{"resume", "thaw a paused container", func(g *globals, args []string) error {
		pos, err := parse(flags("resume"), args)
		if err != nil {
			return err
		}
		id, err := needID("resume", pos, 0)
		if err != nil {
			return err
		}
		return g.runtime().Resume(id)
	}})
	register(&verb{"ps", "list the processes of a container", psVerb})
	register(&verb{"update", "change a container's resource limits", updateVerb})
	register(&verb{"events", "print container statistics and OOM events as JSON", eventsVerb})
}

func psVerb(g *globals, args []string) error {
	fs := flags("ps")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json")
	// Everything after the ID goes to ps(1), as with runc.
	if err := fs.Parse(args); err != nil {
		return err
	}
	pos := fs.Args()
	if len(pos) == 0 {
		return fmt.Errorf("ps: a container id is required")
	}
	id, psArgs := pos[0], pos[1:]
	pids, err := g.runtime().Pids(id)
	if err != nil {
		return err
	}
	switch *format {
	case "json":
		if pids == nil {
			pids = []int{}
		}
		return json.NewEncoder(os.Stdout).Encode(pids)
	case "table":
	default:
		return fmt.Errorf("invalid format %q (table or json)", *format)
	}
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	pidCol := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return fmt.Errorf("ps output has no PID column")
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	fmt.Println(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) > pidCol {
			if p, err := strconv.Atoi(f[pidCol]); err == nil && in[p] {
				fmt.Println(l)
			}
		}
	}
	return nil
}

// parseBytes accepts runc's sizes: plain bytes or with a k/m/g/t suffix
// (binary multiples), and -1 for unlimited.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "-1" {
		return -1, nil
	}
	mult := int64(1)
	s = strings.TrimSuffix(strings.TrimSuffix(s, "b"), "i")
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult != 1 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	if v > (1<<62)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return v * mult, nil
}

func updateVerb(g *globals, args []string) error {
	fs := flags("update")
	resFile := fs.String("resources", "", "JSON file with linux.resources (- for stdin)")
	fs.StringVar(resFile, "r", "", "JSON file with linux.resources (- for stdin)")
	str := map[string]*string{}
	for _, n := range []string{"blkio-weight", "cpu-period", "cpu-quota", "cpu-share", "cpu-rt-period", "cpu-rt-runtime",
		"cpuset-cpus", "cpuset-mems", "memory", "memory-reservation", "memory-swap", "pids-limit", "kernel-memory", "kernel-memory-tcp",
		"l3-cache-schema", "mem-bw-schema", "cpu-idle", "cpu-burst"} {
		str[n] = fs.String(n, "", "")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	id, err := needID("update", pos, 0)
	if err != nil {
		return err
	}
	res := &specs.LinuxResources{}
	if *resFile != "" {
		var r io.Reader
		if *resFile == "-" {
			r = os.Stdin
		} else {
			f, err := os.Open(*resFile)
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		b, err := io.ReadAll(io.LimitReader(r, 1<<20))
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(res); err != nil {
			return fmt.Errorf("decode resources: %w", err)
		}
	}
	u64 := func(name string) (*uint64, error) {
		if *str[name] == "" {
			return nil, nil
		}
		v, err := strconv.ParseUint(*str[name], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", name, err)
		}
		return &v, nil
	}
	i64 := func(name string, bytes bool) (*int64, error) {
		if *str[name] == "" {
			return nil, nil
		}
		var v int64
		var err error
		if bytes {
			v, err = parseBytes(*str[name])
		} else {
			v, err = strconv.ParseInt(*str[name], 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", name, err)
		}
		return &v, nil
	}
	cpu := res.CPU
	if cpu == nil {
		cpu = &specs.LinuxCPU{}
	}
	mem := res.Memory
	if mem == nil {
		mem = &specs.LinuxMemory{}
	}
	var errs []error
	set := func(err error) { errs = append(errs, err) }
	var e error
	if v, err := u64("cpu-period"); v != nil || err != nil {
		cpu.Period, e = v, err
		set(e)
	}
	if v, err := i64("cpu-quota", false); v != nil || err != nil {
		cpu.Quota, e = v, err
		set(e)
	}
	if v, err := u64("cpu-share"); v != nil || err != nil {
		cpu.Shares, e = v, err
		set(e)
	}
	if v, err := u64("cpu-rt-period"); v != nil || err != nil {
		cpu.RealtimePeriod, e = v, err
		set(e)
	}
	if v, err := i64("cpu-rt-runtime", false); v != nil || err != nil {
		cpu.RealtimeRuntime, e = v, err
		set(e)
	}
	if v, err := u64("cpu-burst"); v != nil || err != nil {
		cpu.Burst, e = v, err
		set(e)
	}
	if v, err := i64("cpu-idle", false); v != nil || err != nil {
		cpu.Idle, e = v, err
		set(e)
	}
	if *str["cpuset-cpus"] != "" {
		cpu.Cpus = *str["cpuset-cpus"]
	}
	if *str["cpuset-mems"] != "" {
		cpu.Mems = *str["cpuset-mems"]
	}
	if v, err := i64("memory", true); v != nil || err != nil {
		mem.Limit, e = v, err
		set(e)
	}
	if v, err := i64("memory-reservation", true); v != nil || err != nil {
		mem.Reservation, e = v, err
		set(e)
	}
	if v, err := i64("memory-swap", true); v != nil || err != nil {
		mem.Swap, e = v, err
		set(e)
	}
	if v, err := i64("pids-limit", false); v != nil || err != nil {
		if v != nil {
			res.Pids = &specs.LinuxPids{Limit: v}
		}
		set(err)
	}
	if *str["blkio-weight"] != "" {
		w, err := strconv.ParseUint(*str["blkio-weight"], 10, 16)
		if err != nil {
			set(fmt.Errorf("--blkio-weight: %w", err))
		} else {
			w16 := uint16(w)
			res.BlockIO = &specs.LinuxBlockIO{Weight: &w16}
		}
	}
	if *str["l3-cache-schema"] != "" || *str["mem-bw-schema"] != "" {
		set(fmt.Errorf("Intel RDT is not supported on this host"))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if *cpu != (specs.LinuxCPU{}) {
		res.CPU = cpu
	}
	if *mem != (specs.LinuxMemory{}) {
		res.Memory = mem
	}
	return g.runtime().Update(id, res)
}

// event is runc's event document.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

func eventsVerb(g *globals, args []string) error {
	fs := flags("events")
	stats := fs.Bool("stats", false, "print statistics once and exit")
	interval := fs.Duration("interval", 5*time.Second, "time between statistics")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	id, err := needID("events", pos, 0)
	if err != nil {
		return err
	}
	if *interval <= 0 {
		return fmt.Errorf("--interval must be positive")
	}
	r := g.runtime()
	w := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(w)
	s, ooms, err := r.Stats(id)
	if err != nil {
		return err
	}
	if *stats {
		if err := enc.Encode(event{"stats", id, s}); err != nil {
			return err
		}
		return w.Flush()
	}
	lastOOM := ooms
	checkOOM := func() error {
		n, err := r.OOMKills(id)
		if err != nil {
			return err
		}
		if n > lastOOM {
			lastOOM = n
			enc.Encode(event{"oom", id, nil})
			w.Flush()
		}
		return nil
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	oomTick := time.NewTicker(100 * time.Millisecond)
	defer oomTick.Stop()
	for {
		select {
		case <-tick.C:
			s, _, err := r.Stats(id)
			if err != nil {
				checkOOM()
				return nil // the container has gone: the stream ends
			}
			enc.Encode(event{"stats", id, s})
			w.Flush()
		case <-oomTick.C:
			if err := checkOOM(); err != nil {
				return nil
			}
			if st, err := r.StateOf(id); err != nil || st.Status == specs.StateStopped {
				checkOOM()
				return nil
			}
		}
	}
}
