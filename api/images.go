package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	imagetypes "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/storage"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

func (s *Server) imageList(w http.ResponseWriter, r *http.Request) error {
	f, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		return errdefs.InvalidParameterf("%v", err)
	}
	list, err := s.Images.List()
	if err != nil {
		return err
	}
	all := boolValue(r, "all")
	out := []imagetypes.Summary{}
	for _, img := range list {
		if !all && len(img.RepoTags) == 0 && f.Len() == 0 && len(img.RepoDigests) > 0 {
			// Docker hides only intermediate images; berth has none.
		}
		if f.Contains("reference") {
			ok := false
			for _, want := range f.Get("reference") {
				for _, t := range img.RepoTags {
					if t == want || strings.HasPrefix(t, want+":") {
						ok = true
					}
				}
			}
			if !ok {
				continue
			}
		}
		if f.Contains("dangling") {
			d := len(img.RepoTags) == 0
			if f.ExactMatch("dangling", "true") != d {
				continue
			}
		}
		if f.Contains("label") && !f.MatchKVList("label", img.Config.Config.Labels) {
			continue
		}
		out = append(out, imageSummary(img))
	}
	return writeJSON(w, http.StatusOK, out)
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func imageSummary(img *image.Image) imagetypes.Summary {
	return imagetypes.Summary{
		ID: img.ID.String(), ParentID: "", RepoTags: nonNilStrings(img.RepoTags), RepoDigests: nonNilStrings(img.RepoDigests),
		Created: img.Created.Unix(), Size: img.Size, SharedSize: -1, Labels: img.Config.Config.Labels, Containers: -1,
	}
}

// imageInspect is dockerd's image document for API 1.41.
type imageInspect struct {
	imagetypes.InspectResponse
	VirtualSize     int64             `json:"VirtualSize"`
	ContainerConfig *container.Config `json:"ContainerConfig"`
}

func (s *Server) imageInspect(w http.ResponseWriter, name string) error {
	img, err := s.Images.Get(name)
	if err != nil {
		return engine.ImageErr(err)
	}
	c := img.Config
	cfg := &dockerspec.DockerOCIImageConfig{}
	*cfg = c.Config
	layers := []string{}
	for _, d := range c.RootFS.DiffIDs {
		layers = append(layers, d.String())
	}
	created := ""
	if c.Created != nil {
		created = c.Created.UTC().Format(time.RFC3339Nano)
	}
	resp := imageInspect{
		InspectResponse: imagetypes.InspectResponse{
			ID: img.ID.String(), RepoTags: nonNilStrings(img.RepoTags), RepoDigests: nonNilStrings(img.RepoDigests),
			Comment: historyComment(c), Created: created, Author: c.Author,
			Config: cfg, Architecture: c.Architecture, Os: c.OS, Variant: c.Variant, Size: img.Size,
			GraphDriver: storage.DriverData{Name: "overlayfs", Data: map[string]string{}},
			RootFS:      imagetypes.RootFS{Type: "layers", Layers: layers},
			Metadata:    imagetypes.Metadata{LastTagTime: img.LastTagTime},
		},
		VirtualSize: img.Size, ContainerConfig: &container.Config{},
	}
	return writeJSON(w, http.StatusOK, resp)
}

func historyComment(c dockerspec.DockerOCIImage) string {
	if n := len(c.History); n > 0 {
		return c.History[n-1].Comment
	}
	return ""
}

// imageGet routes GET /images/{name}/json and /history (names contain
// slashes, so the suffix is cut here).
func (s *Server) imageGet(w http.ResponseWriter, r *http.Request) error {
	p := r.PathValue("name")
	switch {
	case strings.HasSuffix(p, "/json"):
		return s.imageInspect(w, strings.TrimSuffix(p, "/json"))
	case strings.HasSuffix(p, "/history"):
		h, err := s.Images.History(strings.TrimSuffix(p, "/history"))
		if err != nil {
			return engine.ImageErr(err)
		}
		out := []imagetypes.HistoryResponseItem{}
		for _, e := range h {
			out = append(out, imagetypes.HistoryResponseItem{ID: e.ID, Created: e.Created.Unix(), CreatedBy: e.CreatedBy,
				Tags: nonNilStrings(e.Tags), Size: e.Size, Comment: e.Comment})
		}
		return writeJSON(w, http.StatusOK, out)
	}
	return errdefs.NotFoundf("page not found")
}

// imagePost routes POST /images/{name}/tag and /push.
func (s *Server) imagePost(w http.ResponseWriter, r *http.Request) error {
	p := r.PathValue("name")
	switch {
	case strings.HasSuffix(p, "/tag"):
		src := strings.TrimSuffix(p, "/tag")
		repo, tag := r.URL.Query().Get("repo"), r.URL.Query().Get("tag")
		if repo == "" {
			return errdefs.InvalidParameterf("repository name must have at least one component")
		}
		target := repo
		if tag != "" {
			target += ":" + tag
		}
		if err := s.Images.Tag(src, target); err != nil {
			return engine.ImageErr(err)
		}
		if img, err := s.Images.Get(target); err == nil {
			s.Engine.Events.Publish(events.ImageEventType, events.ActionTag, img.ID.String(), map[string]string{"name": target})
		}
		w.WriteHeader(http.StatusCreated)
		return nil
	case strings.HasSuffix(p, "/push"):
		return s.imagePush(w, r, strings.TrimSuffix(p, "/push"))
	}
	return errdefs.NotFoundf("page not found")
}

func (s *Server) imageDelete(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	resp, err := s.Images.Delete(name, boolValue(r, "force"), !boolValue(r, "noprune"))
	if err != nil {
		return engine.ImageErr(err)
	}
	out := []imagetypes.DeleteResponse{}
	for _, d := range resp {
		out = append(out, imagetypes.DeleteResponse{Untagged: d.Untagged, Deleted: d.Deleted})
		if d.Untagged != "" {
			s.Engine.Events.Publish(events.ImageEventType, events.ActionUnTag, d.Untagged, map[string]string{"name": d.Untagged})
		}
		if d.Deleted != "" {
			s.Engine.Events.Publish(events.ImageEventType, events.ActionDelete, d.Deleted, map[string]string{"name": d.Deleted})
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) imagePrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		return errdefs.InvalidParameterf("%v", err)
	}
	o := image.PruneOptions{All: f.ExactMatch("dangling", "false")}
	for _, l := range f.Get("label") {
		o.Labels = append(o.Labels, l)
	}
	for _, l := range f.Get("label!") {
		o.NotLabels = append(o.NotLabels, l)
	}
	if u := f.Get("until"); len(u) > 0 {
		t, err := parseTimestamp(u[0])
		if err != nil {
			return err
		}
		o.Until = t
	}
	resp, space, err := s.Images.Prune(o)
	if err != nil {
		return engine.ImageErr(err)
	}
	out := imagetypes.PruneReport{ImagesDeleted: []imagetypes.DeleteResponse{}, SpaceReclaimed: uint64(space)}
	for _, d := range resp {
		out.ImagesDeleted = append(out.ImagesDeleted, imagetypes.DeleteResponse{Untagged: d.Untagged, Deleted: d.Deleted})
	}
	return writeJSON(w, http.StatusOK, out)
}

// jsonStream writes one JSON message per line, flushing each.
type jsonStream struct {
	w       http.ResponseWriter
	started bool
}

func (j *jsonStream) send(v any) {
	if !j.started {
		j.started = true
		j.w.Header().Set("Content-Type", "application/json")
		j.w.WriteHeader(http.StatusOK)
	}
	json.NewEncoder(j.w).Encode(v)
	flush(j.w)
}

// imageCreate is import (fromSrc=-) and pull (fromImage, api/registry.go).
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if src := q.Get("fromSrc"); src != "" {
		if src != "-" {
			return errdefs.InvalidParameterf("importing from a URL is not supported: pass the tarball as the request body (fromSrc=-)")
		}
		ref := q.Get("repo")
		if tag := q.Get("tag"); tag != "" && ref != "" {
			ref += ":" + tag
		}
		img, err := s.Images.Import(r.Body, ref, q["changes"], q.Get("message"))
		if err != nil {
			return engine.ImageErr(errdefs.As(errdefs.InvalidParameter, err))
		}
		s.Engine.Events.Publish(events.ImageEventType, events.ActionImport, img.ID.String(), map[string]string{"name": img.ID.String()})
		js := &jsonStream{w: w}
		js.send(map[string]string{"status": img.ID.String()})
		return nil
	}
	if from := q.Get("fromImage"); from != "" {
		return s.imagePull(w, r, from, q.Get("tag"))
	}
	return errdefs.InvalidParameterf("fromSrc or fromImage is required")
}

// lineStream turns progress lines into {"stream": line} messages.
type lineStream struct {
	js  *jsonStream
	buf []byte
}

func (l *lineStream) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		l.js.send(map[string]string{"stream": string(l.buf[:i+1])})
		l.buf = l.buf[i+1:]
	}
}

// imageLoad is `docker load`: a docker-archive or OCI layout tarball.
func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request) error {
	js := &jsonStream{w: w}
	loaded, err := s.Images.Load(r.Body, &lineStream{js: js})
	if err != nil {
		err = engine.ImageErr(errdefs.As(errdefs.InvalidParameter, err))
		if !js.started {
			return err
		}
		js.send(map[string]any{"errorDetail": map[string]string{"message": err.Error()}, "error": err.Error()})
		return nil
	}
	for _, img := range loaded {
		s.Engine.Events.Publish(events.ImageEventType, events.ActionLoad, img.ID.String(), map[string]string{"name": img.ID.String()})
	}
	if !js.started {
		js.send(map[string]string{"stream": ""})
	}
	return nil
}

// imageSave is `docker save`: a docker-archive of the named images.
func (s *Server) imageSave(w http.ResponseWriter, r *http.Request) error {
	names := r.URL.Query()["names"]
	if len(names) == 0 {
		return errdefs.InvalidParameterf("no image names given")
	}
	for _, n := range names {
		if _, err := s.Images.Get(n); err != nil {
			return engine.ImageErr(err)
		}
	}
	started := false
	lw := &lazyWriter{w: w, start: func() {
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/x-tar")
			w.WriteHeader(http.StatusOK)
		}
	}}
	if err := s.Images.Save(lw, names); err != nil && !started {
		return engine.ImageErr(err)
	}
	return nil
}
