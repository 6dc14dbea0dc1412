package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"golang.org/x/sys/unix"
)

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Swarm", "inactive")
	if r.Method == http.MethodHead {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("OK"))
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	kv := kernelVersion()
	v := types.Version{
		Platform: struct{ Name string }{"berth"},
		Components: []types.ComponentVersion{
			{Name: "Engine", Version: s.Version, Details: map[string]string{
				"ApiVersion": Version, "MinAPIVersion": MinVersion, "GitCommit": s.Commit,
				"GoVersion": runtime.Version(), "Os": "linux", "Arch": runtime.GOARCH,
				"KernelVersion": kv, "Experimental": "false", "BuildTime": "",
			}},
			{Name: "berth-runtime", Version: s.Version, Details: map[string]string{"GitCommit": s.Commit, "Path": s.Engine.RuntimePath()}},
		},
		Version: s.Version, APIVersion: Version, MinAPIVersion: MinVersion, GitCommit: s.Commit,
		GoVersion: runtime.Version(), Os: "linux", Arch: runtime.GOARCH, KernelVersion: kv,
	}
	return writeJSON(w, http.StatusOK, v)
}

func osRelease() (name, version string) {
	data, _ := os.ReadFile("/etc/os-release")
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		switch k {
		case "PRETTY_NAME":
			name = v
		case "VERSION_ID":
			version = v
		}
	}
	return
}

func memTotal() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	cfg := s.Engine.Config()
	total, running, paused, stopped := s.Engine.Counts()
	nImages := 0
	if list, err := s.Images.List(); err == nil {
		nImages = len(list)
	}
	osName, osVer := osRelease()
	host, _ := os.Hostname()
	cgv := "1"
	if s.Engine.CgroupV2() {
		cgv = "2"
	}
	secOpts := []string{"name=seccomp,profile=default"}
	if cfg.SeccompProfile != "" {
		secOpts = []string{"name=seccomp,profile=" + cfg.SeccompProfile}
	}
	if cfg.UsernsRemap != "" {
		secOpts = append(secOpts, "name=userns")
	}
	if cgv == "2" {
		secOpts = append(secOpts, "name=cgroupns")
	}
	arch := runtime.GOARCH
	if arch == "amd64" {
		arch = "x86_64"
	}
	info := system.Info{
		ID: machineID(), Containers: total, ContainersRunning: running, ContainersPaused: paused,
		ContainersStopped: stopped, Images: nImages, Driver: "overlayfs",
		DriverStatus: [][2]string{{"Backing Filesystem", "overlayfs over the data root"}, {"Idmapped mounts", strconv.FormatBool(cfg.UsernsRemap != "")}},
		Plugins:      system.PluginsInfo{Volume: []string{}, Network: []string{"none", "host", "loopback-only (default)"}, Log: []string{"json-file", "none"}},
		MemoryLimit:  true, SwapLimit: true, CPUCfsPeriod: true, CPUCfsQuota: true, CPUShares: true, CPUSet: true, PidsLimit: true,
		Debug: cfg.Debug, NFd: countFDs(), NGoroutines: runtime.NumGoroutine(),
		SystemTime: time.Now().Format(time.RFC3339Nano), LoggingDriver: "json-file", CgroupDriver: "cgroupfs",
		CgroupVersion: cgv, NEventsListener: s.Engine.Events.Listeners(), KernelVersion: kernelVersion(),
		OperatingSystem: osName, OSVersion: osVer, OSType: "linux", Architecture: arch,
		IndexServerAddress: "https://index.docker.io/v1/",
		RegistryConfig:     registryInfo(&cfg.Config),
		NCPU:               runtime.NumCPU(), MemTotal: memTotal(), DockerRootDir: cfg.DataRoot, Name: host,
		Labels: []string{}, ServerVersion: s.Version,
		Runtimes:       map[string]system.RuntimeWithStatus{"berth-runtime": {Runtime: system.Runtime{Path: s.Engine.RuntimePath()}}},
		DefaultRuntime: "berth-runtime", Swarm: swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		LiveRestoreEnabled: cfg.LiveRestore, InitBinary: "berth init",
		ContainerdCommit: system.Commit{ID: "none"}, RuncCommit: system.Commit{ID: s.Commit}, InitCommit: system.Commit{ID: s.Commit},
		SecurityOptions: secOpts,
		Warnings: []string{
			"WARNING: bridge networking is not available yet: containers on the default network get a private network namespace with loopback only (use --network host for the host's network)",
		},
	}
	return writeJSON(w, http.StatusOK, info)
}

func countFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// machineID is a stable daemon id derived from /etc/machine-id.
func machineID() string {
	data, _ := os.ReadFile("/etc/machine-id")
	id := strings.ToUpper(strings.TrimSpace(string(data)))
	for len(id) < 48 {
		id += "0"
	}
	var parts []string
	for i := 0; i < 12; i++ {
		parts = append(parts, id[i*4:i*4+4])
	}
	return strings.Join(parts, ":")
}

func (s *Server) systemDF(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]any{"LayersSize": 0, "Images": []any{}, "Containers": []any{}, "Volumes": []any{}, "BuildCache": []any{}})
}

// parseTimestamp reads the CLI's since/until: unix seconds with an
// optional fraction ("1700000000.123456789").
func parseTimestamp(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	sec, frac, _ := strings.Cut(v, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t, nil
		}
		return time.Time{}, errdefs.InvalidParameterf("invalid timestamp %q", v)
	}
	var ns int64
	if frac != "" {
		for len(frac) < 9 {
			frac += "0"
		}
		ns, err = strconv.ParseInt(frac[:9], 10, 64)
		if err != nil {
			return time.Time{}, errdefs.InvalidParameterf("invalid timestamp %q", v)
		}
	}
	return time.Unix(s, ns), nil
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	since, err := parseTimestamp(q.Get("since"))
	if err != nil {
		return err
	}
	until, err := parseTimestamp(q.Get("until"))
	if err != nil {
		return err
	}
	f, err := filters.FromJSON(q.Get("filters"))
	if err != nil {
		return errdefs.InvalidParameterf("%v", err)
	}
	past, live, cancel := s.Engine.Events.Subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	send := func(m events.Message) {
		enc.Encode(m)
		bw.Flush()
		flush(w)
	}
	if !since.IsZero() {
		for _, m := range past {
			t := time.Unix(0, m.TimeNano)
			if t.Before(since) || (!until.IsZero() && t.After(until)) || !matchEvent(m, f) {
				continue
			}
			send(m)
		}
	}
	var timer <-chan time.Time
	if !until.IsZero() {
		d := time.Until(until)
		if d <= 0 {
			return nil
		}
		timer = time.After(d)
	}
	for {
		select {
		case m := <-live:
			if matchEvent(m, f) {
				send(m)
			}
		case <-timer:
			return nil
		case <-r.Context().Done():
			return nil
		}
	}
}

func matchEvent(m events.Message, f filters.Args) bool {
	if f.Contains("type") && !f.ExactMatch("type", string(m.Type)) {
		return false
	}
	if f.Contains("event") {
		action := string(m.Action)
		if i := strings.Index(action, ":"); i > 0 {
			action = action[:i]
		}
		if !f.ExactMatch("event", action) {
			return false
		}
	}
	if f.Contains("container") {
		if m.Type != events.ContainerEventType {
			return false
		}
		ok := false
		for _, v := range f.Get("container") {
			if strings.HasPrefix(m.Actor.ID, v) || m.Actor.Attributes["name"] == v {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if f.Contains("image") {
		ok := false
		for _, v := range f.Get("image") {
			if m.Actor.Attributes["image"] == v || m.Actor.ID == v || (m.Type == events.ImageEventType && m.Actor.Attributes["name"] == v) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if f.Contains("label") && !f.MatchKVList("label", m.Actor.Attributes) {
		return false
	}
	return true
}
