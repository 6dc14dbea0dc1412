// Package api serves the Docker Engine API, advertising version 1.41, on
// HTTP over a unix socket, so the real docker CLI, the Docker SDKs and the
// berth CLI drive berth unchanged: routes with and without a /vX.Y prefix,
// dockerd's _ping headers, JSON errors with Docker's status codes,
// hijacked attach/exec streams, waits whose headers are flushed at once,
// and the events stream. It translates HTTP to calls on the engine and the
// image store; it keeps no state of its own.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/berth-dev/berth/image"
)

// Version is the API version berth advertises: the docker CLI negotiates
// it and then uses the flows recorded against dockerd 20.10.
const (
	Version    = "1.41"
	MinVersion = "1.24"
)

// Server is the API server.
type Server struct {
	Engine  *engine.Engine
	Images  *image.Store
	Version string // berth's version, reported as the engine version
	Commit  string
	mux     *http.ServeMux
	started time.Time
}

// New builds the routes.
func New(e *engine.Engine, images *image.Store, version, commit string) *Server {
	s := &Server{Engine: e, Images: images, Version: version, Commit: commit, mux: http.NewServeMux(), started: time.Now()}
	s.routes()
	return s
}

var versionPrefix = regexp.MustCompile(`^/v[0-9]+(\.[0-9]+)*(/|$)`)

// ServeHTTP strips the version prefix, sets dockerd's common headers and
// routes; unknown routes are JSON 404s.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if loc := versionPrefix.FindStringIndex(r.URL.Path); loc != nil {
		r.URL.Path = "/" + r.URL.Path[loc[1]:]
		r.URL.RawPath = ""
	}
	h := w.Header()
	h.Set("Api-Version", Version)
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", "linux")
	h.Set("Server", "Berth/"+s.Version+" (linux)")
	if _, pattern := s.mux.Handler(r); pattern == "" {
		writeError(w, errdefs.NotFoundf("page not found"))
		return
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			fmt.Fprintf(os.Stderr, "berth daemon: panic serving %s %s: %v\n%s", r.Method, r.URL.Path, v, debug.Stack())
			writeError(w, fmt.Errorf("internal error serving %s", r.URL.Path))
		}
	}()
	if s.Engine != nil && s.Engine.Config().Debug {
		t0 := time.Now()
		fmt.Fprintf(os.Stderr, "berth daemon: %s api %s %s\n", t0.Format("15:04:05.000000"), r.Method, r.URL.Path)
		defer func() {
			fmt.Fprintf(os.Stderr, "berth daemon: %s api %s %s done after %s\n", time.Now().Format("15:04:05.000000"), r.Method, r.URL.Path, time.Since(t0).Round(10*time.Microsecond))
		}()
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) handle(pattern string, f func(w http.ResponseWriter, r *http.Request) error) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			writeError(w, err)
		}
	})
}

func (s *Server) routes() {
	s.mux.HandleFunc("HEAD /_ping", s.ping)
	s.mux.HandleFunc("GET /_ping", s.ping)
	s.handle("GET /version", s.version)
	s.handle("GET /info", s.info)
	s.handle("GET /events", s.events)
	s.handle("GET /system/df", s.systemDF)

	s.handle("POST /containers/create", s.containerCreate)
	s.handle("GET /containers/json", s.containerList)
	s.handle("POST /containers/prune", s.containerPrune)
	s.handle("GET /containers/{id}/json", s.containerInspect)
	s.handle("POST /containers/{id}/start", s.containerStart)
	s.handle("POST /containers/{id}/stop", s.containerStop)
	s.handle("POST /containers/{id}/restart", s.containerRestart)
	s.handle("POST /containers/{id}/kill", s.containerKill)
	s.handle("POST /containers/{id}/pause", s.containerPause)
	s.handle("POST /containers/{id}/unpause", s.containerUnpause)
	s.handle("POST /containers/{id}/rename", s.containerRename)
	s.handle("POST /containers/{id}/update", s.containerUpdate)
	s.handle("POST /containers/{id}/wait", s.containerWait)
	s.handle("POST /containers/{id}/attach", s.containerAttach)
	s.handle("POST /containers/{id}/resize", s.containerResize)
	s.handle("DELETE /containers/{id}", s.containerDelete)
	s.handle("GET /containers/{id}/logs", s.containerLogs)
	s.handle("GET /containers/{id}/top", s.containerTop)
	s.handle("GET /containers/{id}/stats", s.containerStats)
	s.handle("GET /containers/{id}/export", s.containerExport)
	s.handle("HEAD /containers/{id}/archive", s.archiveHead)
	s.handle("GET /containers/{id}/archive", s.archiveGet)
	s.handle("PUT /containers/{id}/archive", s.archivePut)

	s.handle("POST /containers/{id}/exec", s.execCreate)
	s.handle("POST /exec/{id}/start", s.execStart)
	s.handle("POST /exec/{id}/resize", s.execResize)
	s.handle("GET /exec/{id}/json", s.execInspect)

	s.handle("GET /images/json", s.imageList)
	s.handle("POST /images/create", s.imageCreate)
	s.handle("POST /images/load", s.imageLoad)
	s.handle("GET /images/get", s.imageSave)
	s.handle("POST /images/prune", s.imagePrune)
	s.handle("GET /images/{name...}", s.imageGet)
	s.handle("POST /images/{name...}", s.imagePost)
	s.handle("DELETE /images/{name...}", s.imageDelete)
}

// writeJSON writes v with status code.
func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	return json.NewEncoder(w).Encode(v)
}

// writeError answers {"message": …} with the error's status code.
func writeError(w http.ResponseWriter, err error) {
	code := errdefs.HTTPStatus(err)
	if code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
}

// decodeBody decodes a JSON body; unknown fields are ignored (the CLI
// sends fields of newer API versions).
func decodeBody(r *http.Request, v any) error {
	if r.Body == nil {
		return errdefs.InvalidParameterf("empty request body")
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<20))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errdefs.InvalidParameterf("invalid JSON: empty body")
		}
		return errdefs.InvalidParameterf("invalid JSON: %v", err)
	}
	return nil
}

func boolValue(r *http.Request, k string) bool {
	v := strings.ToLower(strings.TrimSpace(r.URL.Query().Get(k)))
	return !(v == "" || v == "0" || v == "no" || v == "false" || v == "none")
}

func intValue(r *http.Request, k string) (*int, error) {
	v := r.URL.Query().Get(k)
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, errdefs.InvalidParameterf("invalid value for %s: %q", k, v)
	}
	return &n, nil
}

func flush(w http.ResponseWriter) {
	http.NewResponseController(w).Flush()
}

// Listen opens the unix socket at path, owned by root and group (when the
// group exists), mode 0660, as dockerd's.
func Listen(path, group string) (net.Listener, error) {
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return nil, err
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("a daemon is already listening on %s", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	gid := 0
	if group != "" {
		if g, err := user.LookupGroup(group); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		} else if n, err := strconv.Atoi(group); err == nil {
			gid = n
		}
	}
	if err := os.Chown(path, 0, gid); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func dirOf(p string) string {
	i := strings.LastIndex(p, "/")
	if i <= 0 {
		return "/"
	}
	return p[:i]
}
