package main

// `berth bench cpu`: the talk's cpu_burner. It burns CPU in one thread and
// prints, every wall-clock second, the wall time elapsed against the CPU
// time the process consumed in that second:
//
//	[73] 2: elapsed/cpu = 2.000; %CPU = 50.000
//
// Under a CPU quota of half a CPU (--cpu-period=2000 --cpu-quota=1000)
// the ratio is 2 and %CPU 50. bin/berth is static, so it can be copied
// into a busybox container and run there, as the talk does.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	register(&command{name: "bench", summary: "Run a benchmark instrument (cpu: the talk's CPU burner)", run: runBench})
}

const benchUsage = `Usage:  berth bench cpu [--seconds N] [--format json]

Burn CPU in one thread and print, each second, elapsed wall time against
consumed CPU time, as the talk's cpu_burner does:
  [PID] N: elapsed/cpu = 2.000; %CPU = 50.000

Options:
  --seconds N      stop after N seconds (default 0: run until killed)
  --format string  text (default) or json (one object per line)
`

// burnSample is one line of `berth bench cpu`.
type burnSample struct {
	PID        int     `json:"pid"`
	N          int     `json:"n"`
	ElapsedSec float64 `json:"elapsed_s"`
	CPUSec     float64 `json:"cpu_s"`
	Ratio      float64 `json:"elapsed_per_cpu"`
	PercentCPU float64 `json:"cpu_percent"`
}

func runBench(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		if len(args) == 0 {
			fmt.Fprint(os.Stderr, benchUsage)
			return 125
		}
		fmt.Print(benchUsage)
		return 0
	}
	if args[0] != "cpu" {
		fmt.Fprintf(os.Stderr, "berth bench: unknown benchmark %q (want cpu)\nSee 'berth bench --help'.\n", args[0])
		return 125
	}
	fs := flag.NewFlagSet("bench cpu", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	seconds := fs.Int("seconds", 0, "")
	format := fs.String("format", "", "")
	pos, err := parseInterleaved(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Print(benchUsage)
		return 0
	}
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected argument %q", pos[0])
	}
	if err == nil && *seconds < 0 {
		err = fmt.Errorf("--seconds %d: want 0 (forever) or more", *seconds)
	}
	if err == nil && *format != "" && *format != "text" && *format != "json" {
		err = fmt.Errorf("--format %q: want text or json", *format)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth bench cpu: %v\nSee 'berth bench --help'.\n", err)
		return 125
	}
	if err := burnCPU(os.Stdout, *seconds, *format == "json"); err != nil {
		fmt.Fprintf(os.Stderr, "berth bench cpu: %v\n", err)
		return 1
	}
	return 0
}

// processCPU is the CPU time consumed by the whole process.
func processCPU() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(CLOCK_PROCESS_CPUTIME_ID): %w", err)
	}
	return time.Duration(ts.Nano()), nil
}

func burnCPU(w io.Writer, seconds int, asJSON bool) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid := os.Getpid()
	enc := json.NewEncoder(w)
	lastWall := time.Now()
	lastCPU, err := processCPU()
	if err != nil {
		return err
	}
	for n := 1; seconds == 0 || n <= seconds; n++ {
		next := lastWall.Add(time.Second)
		// Burn until a wall-clock second has passed; check the clock only
		// every few thousand iterations so the loop is mostly work.
		x := uint64(n)
		for time.Now().Before(next) {
			for i := 0; i < 20000; i++ {
				x = x*6364136223846793005 + 1442695040888963407
			}
		}
		sink = x
		now := time.Now()
		cpu, err := processCPU()
		if err != nil {
			return err
		}
		s := burnSample{PID: pid, N: n, ElapsedSec: now.Sub(lastWall).Seconds(), CPUSec: (cpu - lastCPU).Seconds()}
		if s.CPUSec > 0 {
			s.Ratio = s.ElapsedSec / s.CPUSec
		}
		if s.ElapsedSec > 0 {
			s.PercentCPU = 100 * s.CPUSec / s.ElapsedSec
		}
		if asJSON {
			err = enc.Encode(s)
		} else {
			_, err = fmt.Fprintf(w, "[%d] %d: elapsed/cpu = %.3f; %%CPU = %.3f\n", s.PID, s.N, s.Ratio, s.PercentCPU)
		}
		if err != nil {
			return err
		}
		lastWall, lastCPU = now, cpu
	}
	return nil
}

// sink keeps the burn loop from being optimized away.
var sink uint64
