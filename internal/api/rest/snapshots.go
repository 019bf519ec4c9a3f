package rest

import (
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

// WithSnapshots serves forks and snapshots (/v1/sandboxes/{id}/fork,
// /v1/sandboxes/{id}/snapshots, /v1/snapshots) from ss. Without it those routes answer
// 503.
func WithSnapshots(ss domain.SnapshotService) Option { return func(o *options) { o.snapshots = ss } }

// snapshotService returns the snapshot service, or a 503 saying the server has none.
func (s *Server) snapshotService() (domain.SnapshotService, error) {
	if s.opts.snapshots == nil {
		return nil, domain.Errorf(domain.KindUnavailable, "forks and snapshots are not supported by this server")
	}
	return s.opts.snapshots, nil
}

func (s *Server) forkSandbox(w http.ResponseWriter, r *http.Request) error {
	p, id, req, err := edge.SandboxCall[forkRequest](w, r, s.decodeJSON)
	if err != nil {
		return err
	}
	ss, err := s.snapshotService()
	if err != nil {
		return err
	}
	count := 1
	if req.Count != nil {
		count = *req.Count
	}
	if err := checkTimeout("timeout", req.Timeout, false); err != nil {
		return err
	}
	res, err := ss.Fork(r.Context(), p, id, count, time.Duration(req.Timeout)*time.Second)
	if err != nil {
		return err
	}
	resp := forkResponse{Sandboxes: []sandboxJSON{}}
	var first error
	for i, fr := range res {
		if fr.Err != nil {
			if first == nil {
				first = fr.Err
			}
			c := s.edge.Class(r, fr.Err)
			resp.Errors = append(resp.Errors, forkError{Index: i, Status: c.Status, Code: c.Code, Message: c.Message})
			continue
		}
		resp.Sandboxes = append(resp.Sandboxes, withTrafficToken(toSandboxJSON(fr.Sandbox, s.opts.domain), p, fr.Sandbox))
	}
	if len(resp.Sandboxes) == 0 && first != nil {
		return first // nothing started: the error a create would have answered
	}
	s.edge.WriteJSON(w, r, http.StatusCreated, resp)
	return nil
}

func (s *Server) createSnapshot(w http.ResponseWriter, r *http.Request) error {
	p, id, req, err := edge.SandboxCall[createSnapshotRequest](w, r, s.decodeJSON)
	if err != nil {
		return err
	}
	ss, err := s.snapshotService()
	if err != nil {
		return err
	}
	snap, err := ss.CreateSnapshot(r.Context(), p, id, req.Name)
	if err != nil {
		return err
	}
	edge.SetTarget(r, snap.ID)
	s.edge.WriteJSON(w, r, http.StatusCreated, toSnapshotJSON(snap))
	return nil
}

func (s *Server) listSnapshots(w http.ResponseWriter, r *http.Request) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	ss, err := s.snapshotService()
	if err != nil {
		return err
	}
	var f domain.SnapshotFilter
	q := r.URL.Query()
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	sort.Strings(names) // report the same bad parameter every time
	for _, name := range names {
		v := q.Get(name)
		switch name {
		case "sandbox_id":
			f.SandboxID = v
		case "name":
			f.Name = v
		case "cursor":
			f.Cursor = v
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				return domain.Invalid("limit", "limit must be an integer from 1 to 1000, got %q", v)
			}
			f.Limit = n
		default:
			return domain.Invalid(name, "unknown query parameter %q: use sandbox_id, name, limit or cursor", name)
		}
	}
	items, next, err := ss.ListSnapshots(r.Context(), p, f)
	if err != nil {
		return err
	}
	resp := listSnapshotsResponse{Snapshots: make([]snapshotJSON, 0, len(items)), NextCursor: next}
	for _, snap := range items {
		resp.Snapshots = append(resp.Snapshots, toSnapshotJSON(snap))
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}

func (s *Server) getSnapshot(w http.ResponseWriter, r *http.Request) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	ss, err := s.snapshotService()
	if err != nil {
		return err
	}
	snap, err := ss.GetSnapshot(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, toSnapshotJSON(snap))
	return nil
}

func (s *Server) deleteSnapshot(w http.ResponseWriter, r *http.Request) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	ss, err := s.snapshotService()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	edge.SetTarget(r, id)
	if err := ss.DeleteSnapshot(r.Context(), p, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
