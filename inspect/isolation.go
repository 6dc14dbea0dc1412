package inspect

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/proc"
)

// Docker's masked and read-only paths (moby's oci defaults, as runc
// applies them): a masked file is covered by /dev/null, a masked directory
// by a read-only tmpfs; a read-only path is bind-mounted read-only.
var (
	DockerMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	DockerReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
	// dockerMounts are the mount points of a container Docker creates with
	// no volumes (besides masked and read-only paths and /sys/fs/cgroup/*).
	// The runtime-spec default devices are bind-mounted from the host
	// when the container has a user namespace (mknod is not allowed there).
	dockerMounts = []string{
		"/", "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue",
		"/dev/shm", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts", "/dev/console",
		"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx",
	}
)

// Finding is one line of the isolation report.
type Finding struct {
	Area  string `json:"area"`
	Item  string `json:"item"`
	Value string `json:"value"`
	// Docker is what Docker does for a container started with no options;
	// IsDefault says whether Value matches it.
	Docker    string `json:"docker_default"`
	IsDefault bool   `json:"is_docker_default"`
}

// IsolationReport is `berth inspect isolation`.
type IsolationReport struct {
	PID       int       `json:"pid"`
	Container string    `json:"container,omitempty"`
	Name      string    `json:"name"`
	Findings  []Finding `json:"findings"`
	// Seccomp is the filter summary behind the seccomp findings.
	Seccomp *SeccompSummary `json:"seccomp"`
	// Differences counts the findings that are not Docker's default.
	Differences int `json:"differences"`
}

// Isolation gathers everything that isolates process pid, comparing each
// item with what Docker does by default. "The host" is berth's own
// namespaces: berth runs on the host.
func Isolation(pid int) (*IsolationReport, error) {
	st, err := proc.ReadStatus(pid)
	if err != nil {
		return nil, err
	}
	r := &IsolationReport{PID: pid, Name: st.Name}
	add := func(area, item, value, docker string, def bool) {
		r.Findings = append(r.Findings, Finding{area, item, value, docker, def})
		if !def {
			r.Differences++
		}
	}

	layout, err := DetectLayout()
	if err != nil {
		return nil, err
	}
	newNS := map[string]bool{}
	for _, typ := range append([]string{"user"}, NSTypes...) {
		id, err := NamespaceOf(pid, typ)
		if errors.Is(err, errNoNSType) {
			continue
		}
		if err != nil {
			return nil, err
		}
		host, err := NamespaceOf(os.Getpid(), typ)
		if err != nil {
			return nil, err
		}
		value := "new " + id.String()
		if id == host {
			value = "shared with host " + id.String()
		}
		newNS[typ] = id != host
		// Docker creates mnt, uts, ipc, net, pid; a cgroup namespace only
		// on cgroup v2 hosts; a user namespace only with userns-remap.
		want := typ == "mnt" || typ == "uts" || typ == "ipc" || typ == "net" || typ == "pid" ||
			(typ == "cgroup" && layout == LayoutV2)
		docker := "shared with host"
		if want {
			docker = "new"
		}
		add("namespace", typ, value, docker, want == (id != host))
	}

	for _, m := range []struct {
		name string
		read func(int) ([]proc.IDMap, error)
	}{{"uid_map", proc.ReadUIDMap}, {"gid_map", proc.ReadGIDMap}} {
		maps, err := m.read(pid)
		if err != nil {
			return nil, err
		}
		add("user mapping", m.name, proc.FormatIDMaps(maps), "0 0 4294967295 (no userns-remap)", proc.IsIdentity(maps))
	}
	add("user mapping", "uid (host view)", fmt.Sprint(st.Uid[1]), "0 (root) without userns-remap", st.Uid[1] == 0)

	last := caps.LastCap()
	def := DockerDefaultCaps()
	for _, c := range []struct {
		name string
		set  caps.Set
	}{{"effective", st.CapEff}, {"bounding", st.CapBnd}} {
		d := diffDocker(c.set, last)
		add("capabilities", c.name, c.set.Hex()+shortDiff(d), def.Hex(), d.Same())
	}
	add("capabilities", "ambient", st.CapAmb.Hex(), caps.Set(0).Hex(), st.CapAmb == 0)

	add("no_new_privs", "no_new_privs", fmt.Sprint(st.NoNewPrivs), "false", !st.NoNewPrivs)
	sc := Seccomp(pid, st)
	r.Seccomp = sc
	add("seccomp", "mode", sc.Mode, "filter", st.Seccomp == proc.SeccompFilter)
	if st.Seccomp == proc.SeccompFilter {
		switch {
		case len(sc.Filters) > 0:
			add("seccomp", "filters", sc.summaryLine(), "1 filter", len(sc.Filters) == 1)
		case st.SeccompFilters >= 0:
			// The filters could not be read: the kernel still counts them.
			add("seccomp", "filters", fmt.Sprintf("%d (%s)", st.SeccompFilters, sc.Unreadable), "1 filter", st.SeccompFilters == 1)
		}
		switch {
		case sc.DockerDefault:
			add("seccomp", "profile", "Docker's default for its capabilities", "Docker's default profile", true)
		case len(sc.Differences) > 0:
			ex := sc.Differences
			more := ""
			if len(ex) > 2 {
				ex, more = ex[:2], "; ..."
			}
			add("seccomp", "profile", "differs: "+strings.Join(ex, "; ")+more, "Docker's default profile", false)
		case len(sc.Filters) > 1:
			add("seccomp", "profile", fmt.Sprintf("%d filters stacked", len(sc.Filters)), "Docker's default profile", false)
		}
	}

	mounts, err := proc.ReadMountinfo(pid)
	if err != nil {
		return nil, err
	}
	hostMounts, err := proc.ReadMountinfo(os.Getpid())
	if err != nil {
		return nil, err
	}
	root := proc.Path(pid, "root")
	for _, p := range DockerMaskedPaths {
		v := maskState(mounts, root, p)
		add("masked path", p, v, "masked", v == "masked" || v == "absent")
	}
	for _, p := range DockerReadonlyPaths {
		v := "writable"
		if m := covering(mounts, p); m != nil && m.ReadOnly() {
			v = "read-only"
		} else if !exists(root, p) {
			v = "absent"
		}
		add("read-only path", p, v, "read-only", v != "writable")
	}

	cg, err := Cgroups(pid)
	if err != nil {
		return nil, err
	}
	if cg.CPU != nil {
		add("cgroup limit", "cpu", cg.CPU.Summary(), "no limit", cg.CPU.QuotaUS < 0)
	}
	if cg.Memory != nil {
		add("cgroup limit", "memory", fmtBytes(cg.Memory.Limit), "unlimited", cg.Memory.Limit < 0)
	}
	if cg.Pids != nil {
		add("cgroup limit", "pids", fmtMax(cg.Pids.Max), "max", cg.Pids.Max < 0)
	}
	// Docker gives each container its own cgroup; berth's is the host's.
	hostCgroup := map[int]string{}
	if own, err := proc.ReadCgroup(os.Getpid()); err == nil {
		for _, e := range own {
			hostCgroup[e.HierarchyID] = e.Path
		}
	}
	for _, h := range cg.Hierarchies {
		if h.Unified() || h.Has("name=systemd") {
			continue
		}
		add("cgroup", strings.Join(h.Controllers, ","), h.Path, "its own cgroup", h.Path != hostCgroup[h.HierarchyID])
	}
	if len(cg.Hierarchies) > 0 && layout == LayoutV2 {
		h := cg.Hierarchies[0]
		add("cgroup", "unified", h.Path, "its own cgroup", h.Path != hostCgroup[h.HierarchyID])
	}

	if !newNS["mnt"] {
		add("mounts", "mount namespace", fmt.Sprintf("the host's (%d mounts)", len(mounts)), "its own, rootfs from the image", false)
	} else {
		hostRoot := covering(hostMounts, "/")
		for _, m := range topMounts(mounts) {
			v := fmt.Sprintf("%s %s (%s)", m.FSType, m.Source, strings.Join(m.Options, ","))
			if m.MountPoint == "/" {
				if hostRoot != nil && m.Major == hostRoot.Major && m.Minor == hostRoot.Minor && m.Root == hostRoot.Root {
					add("mounts", "/", v+": the host's root", "the image's rootfs", false)
				} else {
					add("mounts", "/", v, "the image's rootfs", true)
				}
				continue
			}
			docker := "not mounted"
			if dockerMount(m.MountPoint) {
				docker = "mounted"
			}
			add("mounts", m.MountPoint, v, docker, dockerMount(m.MountPoint))
		}
	}
	return r, nil
}

// shortDiff summarizes a difference from Docker's set for one table cell;
// `berth inspect caps` lists it in full.
func shortDiff(d CapDiff) string {
	if d.Same() {
		return ""
	}
	if len(d.Added)+len(d.Dropped) <= 4 {
		return " (" + d.String() + ")"
	}
	return fmt.Sprintf(" (+%d -%d capabilities)", len(d.Added), len(d.Dropped))
}

func seccompMode(m int) string {
	switch m {
	case proc.SeccompDisabled:
		return "disabled"
	case proc.SeccompStrict:
		return "strict"
	case proc.SeccompFilter:
		return "filter"
	}
	return "unknown (kernel does not say)"
}

// covering is the mount on top at path p: the last one, in mount order,
// whose mount point is p or an ancestor of p.
func covering(ms []proc.Mount, p string) *proc.Mount {
	var best *proc.Mount
	for i := range ms {
		mp := ms[i].MountPoint
		if mp == p || mp == "/" || strings.HasPrefix(p, mp+"/") {
			if best == nil || len(mp) >= len(best.MountPoint) {
				best = &ms[i]
			}
		}
	}
	return best
}

// maskState says how path p looks in the process's mounts: "masked"
// (/dev/null or a read-only tmpfs on it), "absent", or "exposed".
func maskState(ms []proc.Mount, root, p string) string {
	if m := covering(ms, p); m != nil && m.MountPoint == p {
		if m.Root == "/null" || (m.FSType == "tmpfs" && m.ReadOnly()) {
			return "masked"
		}
	}
	if !exists(root, p) {
		return "absent"
	}
	return "exposed"
}

// exists checks p inside the process's root (/proc/PID/root).
func exists(root, p string) bool {
	_, err := os.Lstat(path.Join(root, p))
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// topMounts lists one mount per mount point (the one on top), leaving
// out the masked and read-only paths and the cgroup hierarchies, which
// the report shows separately.
func topMounts(ms []proc.Mount) []proc.Mount {
	top := map[string]proc.Mount{}
	for _, m := range ms {
		top[m.MountPoint] = m
	}
	var out []proc.Mount
	for mp, m := range top {
		if contains(DockerMaskedPaths, mp) || contains(DockerReadonlyPaths, mp) || strings.HasPrefix(mp, "/sys/fs/cgroup/") {
			continue
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MountPoint < out[j].MountPoint })
	return out
}

func dockerMount(mp string) bool { return contains(dockerMounts, mp) }

// WriteIsolation prints the report as a table, one finding a line, with
// "default" or "DIFFERS" against Docker's default.
func WriteIsolation(w io.Writer, r *IsolationReport) error {
	var b strings.Builder
	who := fmt.Sprintf("process %d (%s)", r.PID, r.Name)
	if r.Container != "" {
		who = fmt.Sprintf("container %s: %s", r.Container, who)
	}
	fmt.Fprintf(&b, "isolation of %s: %d of %d items differ from Docker's default\n\n", who, r.Differences, len(r.Findings))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tAREA\tITEM\tTHIS PROCESS\tDOCKER DEFAULT")
	for _, f := range r.Findings {
		mark := "default"
		if !f.IsDefault {
			mark = "DIFFERS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", mark, f.Area, f.Item, f.Value, f.Docker)
	}
	tw.Flush()
	_, err := io.WriteString(w, b.String())
	return err
}
