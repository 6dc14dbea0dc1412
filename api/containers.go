package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/berth-dev/berth/engine/jsonlog"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

type createBody struct {
	*container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
}

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request) error {
	var body createBody
	body.Config = &container.Config{}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	resp, err := s.Engine.Create(engine.CreateRequest{Name: r.URL.Query().Get("name"), Config: body.Config, HostConfig: body.HostConfig})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request) error {
	f, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		return errdefs.InvalidParameterf("%v", err)
	}
	limit, err := intValue(r, "limit")
	if err != nil {
		return err
	}
	o := engine.ListOptions{All: boolValue(r, "all"), Filters: f}
	if limit != nil {
		o.Limit = *limit
	}
	list, err := s.Engine.ListSummaries(o)
	if err != nil {
		return errdefs.As(errdefs.InvalidParameter, err)
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request) error {
	resp, err := s.Engine.Inspect(r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) containerStart(w http.ResponseWriter, r *http.Request) error {
	if err := s.Engine.Start(r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerStop(w http.ResponseWriter, r *http.Request) error {
	t, err := intValue(r, "t")
	if err != nil {
		return err
	}
	if err := s.Engine.Stop(r.PathValue("id"), t, r.URL.Query().Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request) error {
	t, err := intValue(r, "t")
	if err != nil {
		return err
	}
	if err := s.Engine.Restart(r.PathValue("id"), t, r.URL.Query().Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerKill(w http.ResponseWriter, r *http.Request) error {
	if err := s.Engine.Kill(r.PathValue("id"), r.URL.Query().Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerPause(w http.ResponseWriter, r *http.Request) error {
	if err := s.Engine.Pause(r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerUnpause(w http.ResponseWriter, r *http.Request) error {
	if err := s.Engine.Unpause(r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerRename(w http.ResponseWriter, r *http.Request) error {
	if err := s.Engine.Rename(r.PathValue("id"), r.URL.Query().Get("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerUpdate(w http.ResponseWriter, r *http.Request) error {
	var u container.UpdateConfig
	if err := decodeBody(r, &u); err != nil {
		return err
	}
	warnings, err := s.Engine.Update(r.PathValue("id"), u)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, container.UpdateResponse{Warnings: warnings})
}

func (s *Server) containerPrune(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.Engine.Prune()
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (s *Server) containerDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.Engine.Remove(r.PathValue("id"), boolValue(r, "force"), boolValue(r, "v")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerWait registers the waiter, flushes the headers at once (the
// CLI sends start only after they arrive), then blocks.
func (s *Server) containerWait(w http.ResponseWriter, r *http.Request) error {
	wait, err := s.Engine.Wait(r.PathValue("id"), container.WaitCondition(r.URL.Query().Get("condition")))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	resp, err := wait(r.Context())
	if err != nil {
		return nil // the client went away (run -d cancels its wait)
	}
	json.NewEncoder(w).Encode(resp)
	return nil
}

func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := s.Engine.Get(id); err != nil {
		return err
	}
	o := engine.AttachOptions{
		Stdin: boolValue(r, "stdin"), Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"),
		Logs: boolValue(r, "logs"), Stream: boolValue(r, "stream"),
	}
	var conn *hijacked
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	// The hijacked connection has no request context; it ends when the
	// container exits or the client goes away (a failed write).
	return s.Engine.Attach(context.Background(), id, o, func() (engine.Stream, error) {
		var err error
		conn, err = hijack(w, r)
		return conn, err
	})
}

func uintValue(r *http.Request, k string) (uint, error) {
	v := r.URL.Query().Get(k)
	n, err := strconv.ParseUint(v, 10, 16)
	if err != nil {
		return 0, errdefs.InvalidParameterf("invalid value for %s: %q", k, v)
	}
	return uint(n), nil
}

func (s *Server) containerResize(w http.ResponseWriter, r *http.Request) error {
	h, err := uintValue(r, "h")
	if err != nil {
		return err
	}
	wd, err := uintValue(r, "w")
	if err != nil {
		return err
	}
	if err := s.Engine.Resize(r.PathValue("id"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	since, err := parseTimestamp(q.Get("since"))
	if err != nil {
		return err
	}
	until, err := parseTimestamp(q.Get("until"))
	if err != nil {
		return err
	}
	tail, err := jsonlog.ParseTail(q.Get("tail"))
	if err != nil {
		return err
	}
	o := engine.LogsOptions{Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"),
		Follow: boolValue(r, "follow"), Timestamps: boolValue(r, "timestamps"), Since: since, Until: until, Tail: tail}
	if _, err := s.Engine.Get(r.PathValue("id")); err != nil {
		return err
	}
	if !o.Stdout && !o.Stderr {
		return errdefs.InvalidParameterf("Bad parameters: you must choose at least one stream")
	}
	started := false
	sw := &lazyWriter{w: w, start: func() {
		if !started {
			started = true
			w.WriteHeader(http.StatusOK)
		}
	}}
	err = s.Engine.Logs(r.Context(), r.PathValue("id"), o, sw, func() { sw.start(); flush(w) })
	if err != nil && !started {
		return err
	}
	sw.start()
	return nil
}

// lazyWriter sends the status line with the first byte, so an error found
// before any output is still a JSON error.
type lazyWriter struct {
	w     io.Writer
	start func()
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	l.start()
	return l.w.Write(p)
}

func (s *Server) containerTop(w http.ResponseWriter, r *http.Request) error {
	resp, err := s.Engine.Top(r.PathValue("id"), r.URL.Query().Get("ps_args"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	stream := q.Get("stream") == "" || boolValue(r, "stream")
	oneShot := boolValue(r, "one-shot")
	started := false
	enc := json.NewEncoder(w)
	return s.Engine.Stats(r.Context(), r.PathValue("id"), stream, oneShot, func(v *container.StatsResponse) error {
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
		flush(w)
		return nil
	})
}

func (s *Server) containerExport(w http.ResponseWriter, r *http.Request) error {
	started := false
	lw := &lazyWriter{w: w, start: func() {
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/x-tar")
			w.WriteHeader(http.StatusOK)
		}
	}}
	err := s.Engine.Export(r.PathValue("id"), lw)
	if err != nil && !started {
		return err
	}
	return nil
}

func statHeader(st container.PathStat) string {
	data, _ := json.Marshal(st)
	return base64.StdEncoding.EncodeToString(data)
}

func (s *Server) archiveHead(w http.ResponseWriter, r *http.Request) error {
	st, err := s.Engine.ArchiveStat(r.PathValue("id"), r.URL.Query().Get("path"))
	if err != nil {
		return err
	}
	w.Header().Set("X-Docker-Container-Path-Stat", statHeader(st))
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) archiveGet(w http.ResponseWriter, r *http.Request) error {
	started := false
	return s.Engine.ArchiveGet(r.PathValue("id"), r.URL.Query().Get("path"), func(st container.PathStat) io.Writer {
		started = true
		w.Header().Set("X-Docker-Container-Path-Stat", statHeader(st))
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		return w
	}, func() bool { return started })
}

func (s *Server) archivePut(w http.ResponseWriter, r *http.Request) error {
	err := s.Engine.ArchivePut(r.PathValue("id"), r.URL.Query().Get("path"), r.Body,
		boolValue(r, "noOverwriteDirNonDir"), boolValue(r, "copyUIDGID"))
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
