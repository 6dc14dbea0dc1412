package main

// The container verbs that are one API call per argument: stop, kill, rm,
// restart, pause, unpause, wait, rename, update, top, port, export,
// container prune.

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/docker/docker/api/types/container"
	units "github.com/docker/go-units"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/berth-dev/berth/client"
)

func init() {
	registerVerb(&verb{name: "stop", group: "container", under: []string{"stop"}, use: "[OPTIONS] CONTAINER [CONTAINER...]",
		summary: "Stop one or more running containers", minArgs: 1, maxArgs: -1, setup: stopSetup("stop")})
	registerVerb(&verb{name: "restart", group: "container", under: []string{"restart"}, use: "[OPTIONS] CONTAINER [CONTAINER...]",
		summary: "Restart one or more containers", minArgs: 1, maxArgs: -1, setup: stopSetup("restart")})
	registerVerb(&verb{name: "kill", group: "container", under: []string{"kill"}, use: "[OPTIONS] CONTAINER [CONTAINER...]",
		summary: "Kill one or more running containers", minArgs: 1, maxArgs: -1, setup: killSetup})
	registerVerb(&verb{name: "rm", group: "container", under: []string{"rm", "remove"}, use: "[OPTIONS] CONTAINER [CONTAINER...]",
		summary: "Remove one or more containers", minArgs: 1, maxArgs: -1, setup: rmSetup})
	registerVerb(&verb{name: "pause", group: "container", under: []string{"pause"}, use: "CONTAINER [CONTAINER...]",
		summary: "Pause all processes within one or more containers", minArgs: 1, maxArgs: -1, setup: simpleSetup("pause")})
	registerVerb(&verb{name: "unpause", group: "container", under: []string{"unpause"}, use: "CONTAINER [CONTAINER...]",
		summary: "Unpause all processes within one or more containers", minArgs: 1, maxArgs: -1, setup: simpleSetup("unpause")})
	registerVerb(&verb{name: "wait", group: "container", under: []string{"wait"}, use: "CONTAINER [CONTAINER...]",
		summary: "Block until one or more containers stop, then print their exit codes", minArgs: 1, maxArgs: -1, setup: waitSetup})
	registerVerb(&verb{name: "rename", group: "container", under: []string{"rename"}, use: "CONTAINER NEW_NAME",
		summary: "Rename a container", minArgs: 2, maxArgs: 2, setup: renameSetup})
	registerVerb(&verb{name: "update", group: "container", under: []string{"update"}, use: "[OPTIONS] CONTAINER [CONTAINER...]",
		summary: "Update configuration of one or more containers", minArgs: 1, maxArgs: -1, setup: updateSetup})
	registerVerb(&verb{name: "top", group: "container", under: []string{"top"}, use: "CONTAINER [ps OPTIONS]",
		summary: "Display the running processes of a container", minArgs: 1, maxArgs: -1, noInterspersed: true, setup: topSetup})
	registerVerb(&verb{name: "port", group: "container", under: []string{"port"}, use: "CONTAINER [PRIVATE_PORT[/PROTO]]",
		summary: "List port mappings or a specific mapping for the container", minArgs: 1, maxArgs: 2, setup: portSetup})
	registerVerb(&verb{name: "export", group: "container", under: []string{"export"}, use: "[OPTIONS] CONTAINER",
		summary: "Export a container's filesystem as a tar archive", minArgs: 1, maxArgs: 1, setup: exportSetup})
	registerVerb(&verb{group: "container", under: []string{"prune"}, use: "[OPTIONS]",
		summary: "Remove all stopped containers", maxArgs: 0, setup: containerPruneSetup})
}

func containerPath(id, verb string) string {
	p := "/containers/" + url.PathEscape(id)
	if verb != "" {
		p += "/" + verb
	}
	return p
}

func stopSetup(verbName string) func(fs *pflag.FlagSet) func(*cli, []string) int {
	return func(fs *pflag.FlagSet) func(*cli, []string) int {
		sig := fs.StringP("signal", "s", "", "Signal to send to the container")
		t := fs.IntP("time", "t", 0, "Seconds to wait before killing the container")
		fs.Int("timeout", 0, "Seconds to wait before killing the container")
		fs.MarkHidden("timeout")
		return func(c *cli, args []string) int {
			q := url.Values{}
			if fs.Changed("time") {
				q.Set("t", strconv.Itoa(*t))
			} else if fs.Changed("timeout") {
				v, _ := fs.GetInt("timeout")
				q.Set("t", strconv.Itoa(v))
			}
			if *sig != "" {
				q.Set("signal", *sig)
			}
			return c.eachArg(args, func(a string) error {
				if err := c.api.ContainerPost(c.ctxt(), a, verbName, q); err != nil {
					return err
				}
				fmt.Fprintln(c.stdout, a)
				return nil
			})
		}
	}
}

func killSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	sig := fs.StringP("signal", "s", "", "Signal to send to the container")
	return func(c *cli, args []string) int {
		q := url.Values{}
		if *sig != "" {
			q.Set("signal", *sig)
		}
		return c.eachArg(args, func(a string) error {
			if err := c.api.ContainerPost(c.ctxt(), a, "kill", q); err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, a)
			return nil
		})
	}
}

func rmSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	force := fs.BoolP("force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	link := fs.BoolP("link", "l", false, "Remove the specified link")
	vols := fs.BoolP("volumes", "v", false, "Remove anonymous volumes associated with the container")
	return func(c *cli, args []string) int {
		q := url.Values{}
		if *force {
			q.Set("force", "1")
		}
		if *vols {
			q.Set("v", "1")
		}
		if *link {
			q.Set("link", "1")
		}
		return c.eachArg(args, func(a string) error {
			a = strings.Trim(a, "/")
			if a == "" {
				return fmt.Errorf("Container name cannot be empty")
			}
			if err := c.api.Call(c.ctxt(), client.Request{Method: http.MethodDelete, Path: containerPath(a, ""), Query: q}, nil); err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, a)
			return nil
		})
	}
}

func simpleSetup(verbName string) func(fs *pflag.FlagSet) func(*cli, []string) int {
	return func(fs *pflag.FlagSet) func(*cli, []string) int {
		return func(c *cli, args []string) int {
			return c.eachArg(args, func(a string) error {
				if err := c.api.ContainerPost(c.ctxt(), a, verbName, nil); err != nil {
					return err
				}
				fmt.Fprintln(c.stdout, a)
				return nil
			})
		}
	}
}

func waitSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	return func(c *cli, args []string) int {
		return c.eachArg(args, func(a string) error {
			w, err := c.api.ContainerWait(c.ctxt(), a, "")
			if err != nil {
				return err
			}
			res := <-w.C
			if res.Err != nil {
				return res.Err
			}
			fmt.Fprintln(c.stdout, res.StatusCode)
			return nil
		})
	}
}

func renameSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	return func(c *cli, args []string) int {
		old, name := strings.TrimSpace(args[0]), strings.TrimPrefix(strings.TrimSpace(args[1]), "/")
		if old == "" || name == "" {
			return c.errorf(1, "Error: Neither old nor new names may be empty")
		}
		if c.client() == nil {
			return 1
		}
		if err := c.api.ContainerPost(c.ctxt(), old, "rename", url.Values{"name": {name}}); err != nil {
			fmt.Fprintln(c.stderr, err)
			return c.errorf(1, "Error: failed to rename container named %s", old)
		}
		return 0
	}
}

func updateSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	var memory, memRes, memSwap bytesOpt
	memSwap.withMinusOne = true
	var cpus decimalOpt
	blkio := fs.Uint16("blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	period := fs.Int64("cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	quota := fs.Int64("cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	rtPeriod := fs.Int64("cpu-rt-period", 0, "Limit the CPU real-time period in microseconds")
	rtRuntime := fs.Int64("cpu-rt-runtime", 0, "Limit the CPU real-time runtime in microseconds")
	shares := fs.Int64P("cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Var(&cpus, "cpus", "Number of CPUs")
	cpusetCpus := fs.String("cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	cpusetMems := fs.String("cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.VarP(&memory, "memory", "m", "Memory limit")
	fs.Var(&memRes, "memory-reservation", "Memory soft limit")
	fs.Var(&memSwap, "memory-swap", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	pids := fs.Int64("pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	restart := fs.String("restart", "", "Restart policy to apply when a container exits")
	return func(c *cli, args []string) int {
		if fs.NFlag() == 0 {
			return c.errorf(1, "you must provide one or more flags when using this command")
		}
		var u container.UpdateConfig
		r := &u.Resources
		r.BlkioWeight, r.CPUPeriod, r.CPUQuota, r.CPURealtimePeriod, r.CPURealtimeRuntime = *blkio, *period, *quota, *rtPeriod, *rtRuntime
		r.CPUShares, r.NanoCPUs, r.CpusetCpus, r.CpusetMems = *shares, cpus.nano, *cpusetCpus, *cpusetMems
		r.Memory, r.MemoryReservation, r.MemorySwap = memory.v, memRes.v, memSwap.v
		if fs.Changed("pids-limit") {
			p := *pids
			r.PidsLimit = &p
		}
		if fs.Changed("restart") {
			rp, err := restartPolicy(*restart)
			if err != nil {
				return c.errorf(125, "%v", err)
			}
			u.RestartPolicy = rp
		}
		return c.eachArg(args, func(a string) error {
			var resp container.UpdateResponse
			if err := c.api.Call(c.ctxt(), client.Request{Method: http.MethodPost, Path: containerPath(a, "update"), JSON: u}, &resp); err != nil {
				return err
			}
			for _, w := range resp.Warnings {
				fmt.Fprintln(c.stderr, "WARNING:", w)
			}
			fmt.Fprintln(c.stdout, a)
			return nil
		})
	}
}

func topSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	return func(c *cli, args []string) int {
		if c.client() == nil {
			return 1
		}
		q := url.Values{}
		if len(args) > 1 {
			q.Set("ps_args", strings.Join(args[1:], " "))
		}
		var top container.TopResponse
		if err := c.api.Call(c.ctxt(), client.Request{Method: http.MethodGet, Path: containerPath(args[0], "top"), Query: q}, &top); err != nil {
			return c.fail(err, 1)
		}
		w := tabwriter.NewWriter(c.stdout, 20, 1, 3, ' ', 0)
		fmt.Fprintln(w, strings.Join(top.Titles, "\t"))
		for _, p := range top.Processes {
			fmt.Fprintln(w, strings.Join(p, "\t"))
		}
		w.Flush()
		return 0
	}
}

func portSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	return func(c *cli, args []string) int {
		if c.client() == nil {
			return 1
		}
		info, err := c.api.ContainerInspect(c.ctxt(), args[0])
		if err != nil {
			return c.fail(err, 1)
		}
		var lines []string
		if info.NetworkSettings != nil {
			for port, bs := range info.NetworkSettings.Ports {
				if len(args) == 2 {
					want := args[1]
					if !strings.Contains(want, "/") {
						want += "/tcp"
					}
					if string(port) != want {
						continue
					}
				}
				for _, b := range bs {
					ip := b.HostIP
					if ip == "" {
						ip = "0.0.0.0"
					}
					if len(args) == 2 {
						lines = append(lines, ip+":"+b.HostPort)
					} else {
						lines = append(lines, fmt.Sprintf("%s -> %s:%s", port, ip, b.HostPort))
					}
				}
			}
		}
		if len(args) == 2 && len(lines) == 0 {
			return c.errorf(1, "Error: No public port '%s' published for %s", args[1], args[0])
		}
		sort.Strings(lines)
		for _, l := range lines {
			fmt.Fprintln(c.stdout, l)
		}
		return 0
	}
}

func exportSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	output := fs.StringP("output", "o", "", "Write to a file, instead of STDOUT")
	return func(c *cli, args []string) int {
		out, code := outputFile(c, *output, "export")
		if out == nil {
			return code
		}
		if c.client() == nil {
			return 1
		}
		body, _, err := c.api.Stream(c.ctxt(), client.Request{Method: http.MethodGet, Path: containerPath(args[0], "export")})
		if err != nil {
			return c.fail(err, 1)
		}
		defer body.Close()
		return copyToOutput(c, out, body, *output)
	}
}

// outputFile opens -o FILE, or stdout when it is not a terminal.
func outputFile(c *cli, path, what string) (io.WriteCloser, int) {
	if path == "" {
		if term.IsTerminal(int(os.Stdout.Fd())) {
			return nil, c.errorf(1, "cowardly refusing to save to a terminal. Use the -o flag or redirect")
		}
		return nopCloser{c.stdout}, 0
	}
	f, err := os.OpenFile(path+".berth-tmp", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, c.errorf(1, "failed to %s: %v", what, err)
	}
	return f, 0
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// copyToOutput writes a stream to an output of outputFile; a file is
// renamed into place only when complete.
func copyToOutput(c *cli, out io.WriteCloser, r io.Reader, path string) int {
	_, err := io.Copy(out, r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if path != "" {
		if err == nil {
			err = os.Rename(path+".berth-tmp", path)
		}
		if err != nil {
			os.Remove(path + ".berth-tmp")
		}
	}
	if err != nil {
		return c.errorf(1, "%v", err)
	}
	return 0
}

func containerPruneSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	force := fs.BoolP("force", "f", false, "Do not prompt for confirmation")
	var filter listOpt
	fs.Var(&filter, "filter", "Provide filter values (e.g. \"until=<timestamp>\")")
	return func(c *cli, _ []string) int {
		if !*force && !confirm(c, "WARNING! This will remove all stopped containers.") {
			return 0
		}
		q := url.Values{}
		if f, err := filtersQuery(filter.vals); err != nil {
			return c.errorf(125, "%v", err)
		} else if f != "" {
			q.Set("filters", f)
		}
		if c.client() == nil {
			return 1
		}
		var rep container.PruneReport
		if err := c.api.Call(c.ctxt(), client.Request{Method: http.MethodPost, Path: "/containers/prune", Query: q}, &rep); err != nil {
			return c.fail(err, 1)
		}
		if len(rep.ContainersDeleted) > 0 {
			fmt.Fprintln(c.stdout, "Deleted Containers:")
			for _, id := range rep.ContainersDeleted {
				fmt.Fprintln(c.stdout, id)
			}
			fmt.Fprintln(c.stdout)
		}
		fmt.Fprintf(c.stdout, "Total reclaimed space: %s\n", units.HumanSize(float64(rep.SpaceReclaimed)))
		return 0
	}
}

// confirm asks "Are you sure you want to continue? [y/N]" on stdin.
func confirm(c *cli, warning string) bool {
	fmt.Fprintf(c.stdout, "%s\nAre you sure you want to continue? [y/N] ", warning)
	var answer string
	fmt.Fscanln(os.Stdin, &answer)
	a := strings.ToLower(strings.TrimSpace(answer))
	return a == "y" || a == "yes"
}
