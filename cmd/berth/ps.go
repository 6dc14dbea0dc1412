package main

// berth ps (berth container ls): GET /containers/json, docker's table,
// -q, --format templates and json, filters.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	units "github.com/docker/go-units"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/client"
)

func init() {
	registerVerb(&verb{name: "ps", group: "container", under: []string{"ls", "list", "ps"}, use: "[OPTIONS]",
		summary: "List containers", maxArgs: 0, setup: psSetup})
}

const psTable = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

var psHeader = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
	"RunningFor": "CREATED", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES", "State": "STATE",
	"Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES",
}

// filtersQuery turns -f key=value flags into the API's filters JSON.
func filtersQuery(fl []string) (string, error) {
	if len(fl) == 0 {
		return "", nil
	}
	m := map[string]map[string]bool{}
	for _, f := range fl {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return "", fmt.Errorf("bad format of filter (expected name=value)")
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if m[k] == nil {
			m[k] = map[string]bool{}
		}
		m[k][v] = true
	}
	b, _ := json.Marshal(m)
	return string(b), nil
}

func psSetup(fs *pflag.FlagSet) func(*cli, []string) int {
	all := fs.BoolP("all", "a", false, "Show all containers (default shows just running)")
	var filter listOpt
	fs.VarP(&filter, "filter", "f", "Filter output based on conditions provided")
	format := fs.String("format", "", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.")
	last := fs.IntP("last", "n", -1, "Show n last created containers (includes all states)")
	latest := fs.BoolP("latest", "l", false, "Show the latest created container (includes all states)")
	noTrunc := fs.Bool("no-trunc", false, "Don't truncate output")
	quiet := fs.BoolP("quiet", "q", false, "Only display container IDs")
	size := fs.BoolP("size", "s", false, "Display total file sizes")
	return func(c *cli, _ []string) int {
		q := url.Values{}
		if *all || *latest || *last > 0 {
			q.Set("all", "1")
		}
		if *latest {
			q.Set("limit", "1")
		} else if *last > 0 {
			q.Set("limit", strconv.Itoa(*last))
		}
		if *size {
			q.Set("size", "1")
		}
		f, err := filtersQuery(filter.vals)
		if err != nil {
			return c.errorf(125, "%v", err)
		}
		if f != "" {
			q.Set("filters", f)
		}
		api := c.client()
		if api == nil {
			return 1
		}
		var list []container.Summary
		if err := api.Call(c.ctxt(), client.Request{Method: http.MethodGet, Path: "/containers/json", Query: q}, &list); err != nil {
			return c.fail(err, 1)
		}
		if *quiet && *format == "" {
			for _, s := range list {
				fmt.Fprintln(c.stdout, shortID(s.ID, !*noTrunc))
			}
			return 0
		}
		tbl := psTable
		if *size {
			tbl += "\t{{.Size}}"
		}
		fm, err := newFormatter(c.stdout, *format, tbl, psHeader)
		if err != nil {
			return c.errorf(125, "%v", err)
		}
		for _, s := range list {
			if err := fm.row(&psRow{s: s, trunc: !*noTrunc}); err != nil {
				return c.errorf(125, "%v", err)
			}
		}
		fm.flush()
		return 0
	}
}

// shortID is the 12-character ID of docker's tables.
func shortID(id string, trunc bool) string {
	id = strings.TrimPrefix(id, "sha256:")
	if trunc && len(id) > 12 {
		return id[:12]
	}
	return id
}

// psRow is one container as docker's templates see it.
type psRow struct {
	s     container.Summary
	trunc bool
}

func (r *psRow) ID() string { return shortID(r.s.ID, r.trunc) }

func (r *psRow) Image() string {
	img := r.s.Image
	if r.trunc {
		if strings.HasPrefix(img, "sha256:") {
			return shortID(img, true)
		}
		if i := strings.Index(img, "@sha256:"); i >= 0 {
			img = img[:i]
		}
	}
	if img == "" {
		return "<no image>"
	}
	return img
}

func (r *psRow) Command() string {
	cmd := r.s.Command
	if r.trunc {
		cmd = ellipsis(cmd, 20)
	}
	return strconv.Quote(cmd)
}

func (r *psRow) CreatedAt() string { return time.Unix(r.s.Created, 0).String() }

func (r *psRow) RunningFor() string { return humanSince(time.Unix(r.s.Created, 0)) }

// humanSince is docker's "5 seconds ago".
func humanSince(t time.Time) string {
	return units.HumanDuration(time.Now().UTC().Sub(t)) + " ago"
}

func (r *psRow) Ports() string { return formatPorts(r.s.Ports) }
func (r *psRow) State() string { return r.s.State }
func (r *psRow) Status() string {
	return r.s.Status
}

func (r *psRow) Size() string {
	srw := units.HumanSizeWithPrecision(float64(r.s.SizeRw), 3)
	sv := units.HumanSizeWithPrecision(float64(r.s.SizeRootFs), 3)
	if r.s.SizeRootFs > 0 {
		return fmt.Sprintf("%s (virtual %s)", srw, sv)
	}
	return srw
}

func (r *psRow) Names() string {
	var names []string
	for _, n := range r.s.Names {
		n = strings.TrimPrefix(n, "/")
		if r.trunc && strings.Contains(n, "/") { // links: other/alias
			continue
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

func (r *psRow) Labels() string {
	var ls []string
	for k, v := range r.s.Labels {
		ls = append(ls, k+"="+v)
	}
	sort.Strings(ls)
	return strings.Join(ls, ",")
}

// Label is {{.Label "name"}}.
func (r *psRow) Label(name string) string { return r.s.Labels[name] }

func (r *psRow) Mounts() string {
	var ms []string
	for _, m := range r.s.Mounts {
		n := m.Name
		if n == "" {
			n = m.Source
		}
		if r.trunc {
			n = ellipsis(n, 15)
		}
		ms = append(ms, n)
	}
	return strings.Join(ms, ",")
}

func (r *psRow) Networks() string {
	if r.s.NetworkSettings == nil {
		return ""
	}
	var ns []string
	for k := range r.s.NetworkSettings.Networks {
		ns = append(ns, k)
	}
	sort.Strings(ns)
	return strings.Join(ns, ",")
}

func (r *psRow) LocalVolumes() string {
	n := 0
	for _, m := range r.s.Mounts {
		if m.Driver == "local" {
			n++
		}
	}
	return strconv.Itoa(n)
}

// MarshalJSON is --format json: the fields as the table shows them.
func (r *psRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"Command": r.Command(), "CreatedAt": r.CreatedAt(), "ID": r.ID(), "Image": r.Image(),
		"Labels": r.Labels(), "LocalVolumes": r.LocalVolumes(), "Mounts": r.Mounts(), "Names": r.Names(),
		"Networks": r.Networks(), "Ports": r.Ports(), "RunningFor": r.RunningFor(), "Size": r.Size(),
		"State": r.State(), "Status": r.Status(),
	})
}

// formatPorts is docker's PORTS column: 0.0.0.0:8080->80/tcp, 53/udp.
func formatPorts(ports []container.Port) string {
	var out []string
	sort.Slice(ports, func(i, j int) bool {
		if ports[i].PrivatePort != ports[j].PrivatePort {
			return ports[i].PrivatePort < ports[j].PrivatePort
		}
		return ports[i].Type < ports[j].Type
	})
	for _, p := range ports {
		if p.PublicPort == 0 {
			out = append(out, fmt.Sprintf("%d/%s", p.PrivatePort, p.Type))
			continue
		}
		ip := p.IP
		if strings.Contains(ip, ":") {
			ip = "[" + ip + "]"
		}
		out = append(out, fmt.Sprintf("%s:%d->%d/%s", ip, p.PublicPort, p.PrivatePort, p.Type))
	}
	return strings.Join(out, ", ")
}
