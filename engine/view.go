package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/storage"
	units "github.com/docker/go-units"
)

// Inspect is GET /containers/{id}/json, in dockerd's document shape.
func (e *Engine) Inspect(ref string) (*container.InspectResponse, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	s := c.snapshot()
	var execIDs []string
	for id := range c.execs {
		execIDs = append(execIDs, id)
	}
	c.mu.Unlock()
	st := s.State
	fmtTime := func(t time.Time) string {
		if t.IsZero() {
			return "0001-01-01T00:00:00Z"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	status := st.Status
	hc := *s.HostConfig
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = "json-file"
	}
	if hc.NetworkMode == "" || hc.NetworkMode == "default" {
		hc.NetworkMode = "bridge"
	}
	base := &container.ContainerJSONBase{
		ID: s.ID, Created: s.Created.Format(time.RFC3339Nano), Path: s.Path, Args: nonNil(s.Args),
		State: &container.State{
			Status: status, Running: st.Running(), Paused: status == "paused",
			Restarting: status == "restarting", OOMKilled: st.OOMKilled, Dead: status == "dead",
			Pid: st.Pid, ExitCode: st.ExitCode, Error: st.Error,
			StartedAt: fmtTime(st.StartedAt), FinishedAt: fmtTime(st.FinishedAt),
		},
		Image: s.Image, ResolvConfPath: s.ResolvPath, HostnamePath: s.HostnamePath, HostsPath: s.HostsPath,
		LogPath: s.LogPath, Name: s.Name, RestartCount: s.RestartCount, Driver: "overlayfs",
		Platform: "linux", ExecIDs: execIDs, HostConfig: &hc,
		GraphDriver: storage.DriverData{Name: "overlayfs", Data: map[string]string{}},
	}
	cfg := *s.Config
	cfg.Image = s.ImageName
	cfg.Hostname = s.Hostname
	nets := map[string]*network.EndpointSettings{}
	netName := networkName(s.HostConfig.NetworkMode)
	nets[netName] = &network.EndpointSettings{}
	resp := &container.InspectResponse{
		ContainerJSONBase: base,
		Mounts:            mountPoints(s.HostConfig),
		Config:            &cfg,
		NetworkSettings: &container.NetworkSettings{
			NetworkSettingsBase: container.NetworkSettingsBase{SandboxKey: ""},
			Networks:            nets,
		},
	}
	return resp, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func networkName(m container.NetworkMode) string {
	switch {
	case m == "" || m == "default":
		return "bridge"
	case m.IsContainer():
		return "container"
	}
	return string(m)
}

func mountPoints(hc *container.HostConfig) []container.MountPoint {
	out := []container.MountPoint{}
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 {
			continue
		}
		mode := ""
		if len(parts) > 2 {
			mode = parts[2]
		}
		out = append(out, container.MountPoint{Type: "bind", Source: parts[0], Destination: parts[1],
			Mode: mode, RW: !strings.Contains(mode, "ro"), Propagation: "rprivate"})
	}
	for d := range hc.Tmpfs {
		out = append(out, container.MountPoint{Type: "tmpfs", Destination: d, RW: true})
	}
	return out
}

// ListOptions are GET /containers/json parameters.
type ListOptions struct {
	All     bool
	Limit   int
	Filters filters.Args
}

// ListSummaries is GET /containers/json: newest first, running only
// unless All, with Docker's Status text.
func (e *Engine) ListSummaries(o ListOptions) ([]container.Summary, error) {
	if err := o.Filters.Validate(map[string]bool{"id": true, "name": true, "status": true, "label": true,
		"ancestor": true, "exited": true, "before": true, "since": true, "network": true}); err != nil {
		return nil, err
	}
	out := []container.Summary{}
	for _, c := range e.List() {
		c.mu.Lock()
		s := c.snapshot()
		c.mu.Unlock()
		if !o.All && !s.State.Running() && s.State.Status != "restarting" &&
			!o.Filters.Contains("status") && !o.Filters.Contains("exited") {
			continue
		}
		if !matchFilters(s, o.Filters) {
			continue
		}
		cmd := strings.Join(append([]string{s.Path}, s.Args...), " ")
		sum := container.Summary{
			ID: s.ID, Names: []string{s.Name}, Image: s.ImageName, ImageID: s.Image, Command: cmd,
			Created: s.Created.Unix(), Ports: []container.Port{}, Labels: s.Config.Labels,
			State: s.State.Status, Status: statusText(&s.State), Mounts: mountPoints(s.HostConfig),
		}
		sum.HostConfig.NetworkMode = networkName(s.HostConfig.NetworkMode)
		sum.NetworkSettings = &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{
			networkName(s.HostConfig.NetworkMode): {},
		}}
		out = append(out, sum)
		if o.Limit > 0 && len(out) >= o.Limit {
			break
		}
	}
	return out, nil
}

func matchFilters(s *Container, f filters.Args) bool {
	if f.Contains("id") {
		ok := false
		for _, v := range f.Get("id") {
			if strings.HasPrefix(s.ID, v) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if f.Contains("name") {
		ok := false
		for _, v := range f.Get("name") {
			if strings.Contains(s.Name, strings.TrimPrefix(v, "/")) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if f.Contains("status") && !f.ExactMatch("status", s.State.Status) {
		return false
	}
	if f.Contains("exited") && (s.State.Status != "exited" || !f.ExactMatch("exited", itoa(s.State.ExitCode))) {
		return false
	}
	if f.Contains("label") && !f.MatchKVList("label", s.Config.Labels) {
		return false
	}
	if f.Contains("ancestor") {
		ok := false
		for _, v := range f.Get("ancestor") {
			if v == s.ImageName || strings.HasPrefix(s.Image, v) || strings.HasPrefix(strings.TrimPrefix(s.Image, "sha256:"), v) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// statusText is Docker's human status: "Up 5 seconds", "Exited (0) 2
// minutes ago", "Created", "Up 3 minutes (Paused)", "Restarting (1) …".
func statusText(st *State) string {
	ago := func(t time.Time) string { return units.HumanDuration(time.Since(t)) }
	switch st.Status {
	case "running":
		return "Up " + ago(st.StartedAt)
	case "paused":
		return "Up " + ago(st.StartedAt) + " (Paused)"
	case "restarting":
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, ago(st.FinishedAt))
	case "exited":
		if st.FinishedAt.IsZero() {
			return "Created"
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, ago(st.FinishedAt))
	case "removing":
		return "Removal In Progress"
	case "dead":
		return "Dead"
	}
	return "Created"
}
