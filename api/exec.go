package api

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/docker/docker/api/types/common"
	"github.com/docker/docker/api/types/container"
)

func (s *Server) execCreate(w http.ResponseWriter, r *http.Request) error {
	var o container.ExecOptions
	if err := decodeBody(r, &o); err != nil {
		return err
	}
	id, err := s.Engine.ExecCreate(r.PathValue("id"), o)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, common.IDResponse{ID: id})
}

func (s *Server) execStart(w http.ResponseWriter, r *http.Request) error {
	var o container.ExecStartOptions
	if r.ContentLength != 0 {
		if err := decodeBody(r, &o); err != nil {
			return err
		}
	}
	id := r.PathValue("id")
	if _, err := s.Engine.ExecInspect(id); err != nil {
		return err
	}
	if o.Detach {
		go s.Engine.ExecStart(context.Background(), id, nil, true)
		w.WriteHeader(http.StatusOK)
		return nil
	}
	conn, err := hijack(w, r)
	if err != nil {
		return nil
	}
	defer conn.Close()
	if err := s.Engine.ExecStart(context.Background(), id, conn, false); err != nil {
		conn.Write([]byte(err.Error() + "\r\n"))
	}
	return nil
}

func (s *Server) execResize(w http.ResponseWriter, r *http.Request) error {
	h, err := uintValue(r, "h")
	if err != nil {
		return err
	}
	wd, err := uintValue(r, "w")
	if err != nil {
		return err
	}
	if err := s.Engine.ExecResize(r.PathValue("id"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) execInspect(w http.ResponseWriter, r *http.Request) error {
	info, err := s.Engine.ExecInspect(r.PathValue("id"))
	if err != nil {
		return err
	}
	if info.ExitCode == nil && !info.Running {
		zero := 0
		_ = zero
	}
	return writeJSON(w, http.StatusOK, info)
}

var _ = errdefs.NotFoundf
