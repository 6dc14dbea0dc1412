package main

// berth version, info, events, system df and system prune.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/system"
	units "github.com/docker/go-units"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/client"
)

func init() {
	registerVerb(&verb{name: "version", use: "[OPTIONS]", summary: "Show the berth version information", maxArgs: 0, setup: versionSetup})
	registerVerb(&verb{name: "info", group: "system", under: []string{"info"}, use: "[OPTIONS]",
		summary: "Display system-wide information", maxArgs: 0, setup: infoSetup})
	registerVerb(&verb{name: "events", group: "system", under: []string{"events"}, use: "[OPTIONS]",
		summary: "Get real time events from the server", maxArgs: 0, setup: eventsSetup})
	registerVerb(&verb{group: "system", under: []string{"df"}, use: "[OPTIONS]",
		summary: "Show berth disk usage", maxArgs: 0, setup: dfSetup})
	registerVerb(&verb{group: "system", under: []string{"prune"}, use: "[OPTIONS]",
		summary: "Remove unused data", maxArgs: 0, setup: systemPruneSetup})
}

func versionSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	format := fs.StringP("format", "f", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.")
	return func(c *cli, _ []string) int {
		type clientVersion struct {
			Version, APIVersion, GoVersion, GitCommit, Os, Arch string
		}
		cv := clientVersion{Version: version, APIVersion: client.APIVersion, GoVersion: runtime.Version(),
			GitCommit: gitCommit, Os: runtime.GOOS, Arch: runtime.GOARCH}
		// No daemon is started for this: version says what is there.
		var sv *types.Version
		var serr error
		api, err := client.New(c.host)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var v types.Version
			if v, serr = api.Version(ctx); serr == nil {
				sv = &v
			}
		} else {
			serr = err
		}
		if *format != "" {
			t, err := parseTemplate(*format)
			if err != nil {
				return c.errorf(125, "%v", err)
			}
			if *format == "json" {
				t, _ = parseTemplate("{{json .}}")
			}
			if err := formatOne(c.stdout, t, struct {
				Client clientVersion
				Server *types.Version
			}{cv, sv}); err != nil {
				return c.errorf(1, "%v", err)
			}
		} else {
			w := tabwriter.NewWriter(c.stdout, 20, 1, 1, ' ', 0)
			fmt.Fprintf(w, "Client:\n Version:\t%s\n API version:\t%s\n Go version:\t%s\n Git commit:\t%s\n OS/Arch:\t%s/%s\n",
				cv.Version, cv.APIVersion, cv.GoVersion, cv.GitCommit, cv.Os, cv.Arch)
			if sv != nil {
				name := "berth"
				if sv.Platform.Name != "" {
					name = sv.Platform.Name
				}
				fmt.Fprintf(w, "\nServer: %s\n", name)
				for _, comp := range sv.Components {
					fmt.Fprintf(w, " %s:\n", comp.Name)
					if comp.Name == "Engine" {
						fmt.Fprintf(w, "  Version:\t%s\n  API version:\t%s (minimum version %s)\n  Go version:\t%s\n  Git commit:\t%s\n  OS/Arch:\t%s/%s\n",
							sv.Version, sv.APIVersion, sv.MinAPIVersion, sv.GoVersion, sv.GitCommit, sv.Os, sv.Arch)
						continue
					}
					fmt.Fprintf(w, "  Version:\t%s\n", comp.Version)
					keys := make([]string, 0, len(comp.Details))
					for k := range comp.Details {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					for _, k := range keys {
						fmt.Fprintf(w, "  %s:\t%s\n", k, comp.Details[k])
					}
				}
			}
			w.Flush()
		}
		if serr != nil {
			fmt.Fprintln(c.stderr, serr)
			return 1
		}
		return 0
	}
}

func infoSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	format := fs.StringP("format", "f", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.")
	return func(c *cli, _ []string) int {
		api := c.client()
		if api == nil {
			return 1
		}
		info, err := api.Info(c.ctxt())
		if err != nil {
			return c.fail(err, 1)
		}
		if *format != "" {
			f := *format
			if f == "json" {
				f = "{{json .}}"
			}
			t, err := parseTemplate(f)
			if err != nil {
				return c.errorf(125, "%v", err)
			}
			if err := formatOne(c.stdout, t, info); err != nil {
				return c.errorf(1, "%v", err)
			}
			return 0
		}
		printInfo(c.stdout, c.host, &info)
		for _, w := range info.Warnings {
			fmt.Fprintln(c.stderr, w)
		}
		return 0
	}
}

// printInfo draws /info as docker info does.
func printInfo(out io.Writer, host string, i *system.Info) {
	p := func(indent int, k string, v any) { fmt.Fprintf(out, "%s%s: %v\n", strings.Repeat(" ", indent), k, v) }
	fmt.Fprintf(out, "Client:\n Version:    %s\n Host:       %s\n\nServer:\n", version, host)
	p(1, "Containers", i.Containers)
	p(2, "Running", i.ContainersRunning)
	p(2, "Paused", i.ContainersPaused)
	p(2, "Stopped", i.ContainersStopped)
	p(1, "Images", i.Images)
	p(1, "Server Version", i.ServerVersion)
	p(1, "Storage Driver", i.Driver)
	for _, kv := range i.DriverStatus {
		p(2, kv[0], kv[1])
	}
	p(1, "Logging Driver", i.LoggingDriver)
	p(1, "Cgroup Driver", i.CgroupDriver)
	p(1, "Cgroup Version", i.CgroupVersion)
	fmt.Fprintln(out, " Plugins:")
	p(2, "Volume", strings.Join(i.Plugins.Volume, " "))
	p(2, "Network", strings.Join(i.Plugins.Network, " "))
	p(2, "Log", strings.Join(i.Plugins.Log, " "))
	var rts []string
	for n := range i.Runtimes {
		rts = append(rts, n)
	}
	sort.Strings(rts)
	p(1, "Runtimes", strings.Join(rts, " "))
	p(1, "Default Runtime", i.DefaultRuntime)
	p(1, "Init Binary", i.InitBinary)
	p(1, "runc version", i.RuncCommit.ID)
	if len(i.SecurityOptions) > 0 {
		fmt.Fprintln(out, " Security Options:")
		if opts, err := system.DecodeSecurityOptions(i.SecurityOptions); err == nil {
			for _, o := range opts {
				fmt.Fprintf(out, "  %s\n", o.Name)
				for _, kv := range o.Options {
					fmt.Fprintf(out, "   %s: %s\n", strings.ToUpper(kv.Key[:1])+kv.Key[1:], kv.Value)
				}
			}
		}
	}
	p(1, "Kernel Version", i.KernelVersion)
	p(1, "Operating System", i.OperatingSystem)
	p(1, "OSType", i.OSType)
	p(1, "Architecture", i.Architecture)
	p(1, "CPUs", i.NCPU)
	p(1, "Total Memory", units.BytesSize(float64(i.MemTotal)))
	p(1, "Name", i.Name)
	p(1, "ID", i.ID)
	p(1, "Docker Root Dir", i.DockerRootDir)
	p(1, "Debug Mode", i.Debug)
	p(1, "Experimental", i.ExperimentalBuild)
	if i.RegistryConfig != nil && len(i.RegistryConfig.InsecureRegistryCIDRs) > 0 {
		fmt.Fprintln(out, " Insecure Registries:")
		for _, c := range i.RegistryConfig.InsecureRegistryCIDRs {
			fmt.Fprintf(out, "  %s\n", c.String())
		}
	}
	p(1, "Live Restore Enabled", i.LiveRestoreEnabled)
	fmt.Fprintln(out)
}

func eventsSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	var filter listOpt
	fs.VarP(&filter, "filter", "f", "Filter output based on conditions provided")
	format := fs.String("format", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.")
	since := fs.String("since", "", "Show all events created since timestamp")
	until := fs.String("until", "", "Stream events until this timestamp")
	return func(c *cli, _ []string) int {
		q := url.Values{}
		now := time.Now()
		for name, v := range map[string]string{"since": *since, "until": *until} {
			if v == "" {
				continue
			}
			ts, err := apiTimestamp(v, now)
			if err != nil {
				return c.errorf(125, "%v", err)
			}
			q.Set(name, ts)
		}
		f, err := filtersQuery(filter.vals)
		if err != nil {
			return c.errorf(125, "%v", err)
		}
		if f != "" {
			q.Set("filters", f)
		}
		var tmpl = *format
		if tmpl == "json" {
			tmpl = "{{json .}}"
		}
		var fm *formatter
		if tmpl != "" {
			if fm, err = newFormatter(c.stdout, tmpl, "", nil); err != nil {
				return c.errorf(125, "%v", err)
			}
		}
		api := c.client()
		if api == nil {
			return 1
		}
		ctx, stop := c.interruptible()
		defer stop()
		body, _, err := api.Stream(ctx, client.Request{Method: http.MethodGet, Path: "/events", Query: q})
		if err != nil {
			return c.fail(err, 1)
		}
		defer body.Close()
		dec := json.NewDecoder(body)
		for {
			var m events.Message
			if err := dec.Decode(&m); err != nil {
				if err == io.EOF || ctx.Err() != nil {
					return 0
				}
				return c.errorf(1, "%v", err)
			}
			if fm != nil {
				if err := fm.row(m); err != nil {
					return c.errorf(1, "%v", err)
				}
				continue
			}
			printEvent(c.stdout, &m)
		}
	}
}

// printEvent is docker events' line: time type action id (attributes).
func printEvent(w io.Writer, m *events.Message) {
	ts := time.Unix(0, m.TimeNano)
	if m.TimeNano == 0 {
		ts = time.Unix(m.Time, 0)
	}
	var attrs []string
	for k, v := range m.Actor.Attributes {
		attrs = append(attrs, k+"="+v)
	}
	sort.Strings(attrs)
	line := fmt.Sprintf("%s %s %s %s", ts.Format("2006-01-02T15:04:05.000000000Z07:00"), m.Type, m.Action, m.Actor.ID)
	if len(attrs) > 0 {
		line += " (" + strings.Join(attrs, ", ") + ")"
	}
	fmt.Fprintln(w, line)
}

func dfSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	verbose := fs.BoolP("verbose", "v", false, "Show detailed information on space usage")
	return func(c *cli, _ []string) int {
		api := c.client()
		if api == nil {
			return 1
		}
		var du types.DiskUsage
		if err := api.Call(c.ctxt(), client.Request{Method: http.MethodGet, Path: "/system/df"}, &du); err != nil {
			return c.fail(err, 1)
		}
		var imgSize, imgActive, imgReclaim int64
		for _, i := range du.Images {
			imgSize += i.Size
			if i.Containers > 0 {
				imgActive++
			} else {
				imgReclaim += i.Size
			}
		}
		var ctrSize, ctrActive, ctrReclaim int64
		for _, ct := range du.Containers {
			ctrSize += ct.SizeRw
			if ct.State == "running" {
				ctrActive++
			} else {
				ctrReclaim += ct.SizeRw
			}
		}
		pct := func(part, all int64) string {
			if all == 0 {
				return ""
			}
			return fmt.Sprintf(" (%d%%)", part*100/all)
		}
		w := tabwriter.NewWriter(c.stdout, 10, 1, 3, ' ', 0)
		fmt.Fprintln(w, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
		fmt.Fprintf(w, "Images\t%d\t%d\t%s\t%s%s\n", len(du.Images), imgActive, units.HumanSize(float64(imgSize)), units.HumanSize(float64(imgReclaim)), pct(imgReclaim, imgSize))
		fmt.Fprintf(w, "Containers\t%d\t%d\t%s\t%s%s\n", len(du.Containers), ctrActive, units.HumanSize(float64(ctrSize)), units.HumanSize(float64(ctrReclaim)), pct(ctrReclaim, ctrSize))
		fmt.Fprintf(w, "Local Volumes\t%d\t%d\t%s\t%s\n", len(du.Volumes), 0, "0B", "0B")
		fmt.Fprintf(w, "Build Cache\t%d\t%d\t%s\t%s\n", 0, 0, "0B", "0B")
		w.Flush()
		if *verbose {
			fmt.Fprintln(c.stdout, "\nContainers space usage:")
			w = tabwriter.NewWriter(c.stdout, 10, 1, 3, ' ', 0)
			fmt.Fprintln(w, "CONTAINER ID\tIMAGE\tSIZE\tSTATUS\tNAMES")
			for _, ct := range du.Containers {
				name := ""
				if len(ct.Names) > 0 {
					name = strings.TrimPrefix(ct.Names[0], "/")
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", shortID(ct.ID, true), ct.Image, units.HumanSize(float64(ct.SizeRw)), ct.Status, name)
			}
			w.Flush()
		}
		return 0
	}
}

func systemPruneSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	all := fs.BoolP("all", "a", false, "Remove all unused images not just dangling ones")
	force := fs.BoolP("force", "f", false, "Do not prompt for confirmation")
	return func(c *cli, _ []string) int {
		warning := "WARNING! This will remove:\n  - all stopped containers\n  - all dangling images"
		if *all {
			warning = "WARNING! This will remove:\n  - all stopped containers\n  - all images without at least one container associated to them"
		}
		if !*force && !confirm(c, warning) {
			return 0
		}
		cfs := pflag.NewFlagSet("", pflag.ContinueOnError)
		cprune := containerPruneSetup(cfs)
		cfs.Parse([]string{"--force"})
		if code := cprune(c, nil); code != 0 {
			return code
		}
		ifs := pflag.NewFlagSet("", pflag.ContinueOnError)
		prune := imagePruneSetup(ifs)
		args := []string{"--force"}
		if *all {
			args = append(args, "--all")
		}
		ifs.Parse(args)
		return prune(c, nil)
	}
}
