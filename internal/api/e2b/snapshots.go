package e2b

import (
	"net/http"
	"strconv"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

// Forks and snapshots as E2B's SDK calls them (docs/e2b-protocol.md §2.3): sbx.fork,
// createSnapshot, listSnapshots, deleteSnapshot (DELETE /templates/{id}), and
// Sandbox.create(snapshotId), which names the snapshot as the template (create).

// forkRequest is POST /sandboxes/{id}/fork.
type forkRequest struct {
	Timeout *int64 `json:"timeout"`
	Count   *int   `json:"count"`
}

// forkItem is one entry of the fork answer: exactly one of Sandbox and Error.
type forkItem struct {
	Sandbox *sandboxJSON `json:"sandbox,omitempty"`
	Error   *errorBody   `json:"error,omitempty"`
}

// snapshotRequest is POST /sandboxes/{id}/snapshots.
type snapshotRequest struct {
	Name string `json:"name"`
}

// snapshotJSON is E2B's snapshot: its id and the names it answers to.
type snapshotJSON struct {
	SnapshotID string   `json:"snapshotID"`
	Names      []string `json:"names"`
}

func toSnapshot(s *domain.Snapshot) snapshotJSON {
	names := []string{}
	if s.Name != "" {
		names = append(names, s.Name)
	}
	return snapshotJSON{SnapshotID: s.ID, Names: names}
}

// snapshots returns the snapshot service, or a 501 saying the server has none.
func (s *Server) snapshots() (domain.SnapshotService, error) {
	if s.cfg.Snapshots == nil {
		return nil, notImplemented("forks and snapshots", sandboxHint)
	}
	return s.cfg.Snapshots, nil
}

// fork serves sbx.fork({count, timeoutMs}): 201 with one item per copy asked for. E2B
// forgets ended sandboxes, so one that is not live is 404 (the SDK checks the status);
// a paused one is 409.
func (s *Server) fork(w http.ResponseWriter, r *http.Request) error {
	p, id, req, err := edge.SandboxCall[forkRequest](w, r, decodeJSON)
	if err != nil {
		return err
	}
	sb, err := s.svc.Get(r.Context(), p, id)
	if err != nil {
		return err
	}
	if sb.State.Terminal() {
		return domain.Errorf(domain.KindNotFound, "sandbox %q not found (it is %s)", id, sb.State)
	}
	ss, err := s.snapshots()
	if err != nil {
		return err
	}
	count := 1
	if req.Count != nil {
		count = *req.Count
	}
	var timeout time.Duration
	if req.Timeout != nil {
		if *req.Timeout < 0 {
			return domain.Invalid("timeout", "timeout must not be negative, got %d", *req.Timeout)
		}
		timeout = seconds(*req.Timeout)
	}
	res, err := ss.Fork(r.Context(), p, id, count, timeout)
	if err != nil {
		return err
	}
	out := make([]forkItem, len(res))
	for i, fr := range res {
		if fr.Err != nil {
			c := s.edge.Class(r, fr.Err)
			out[i].Error = &errorBody{Code: c.Status, Message: c.Message}
			continue
		}
		j := s.toSandbox(p, fr.Sandbox, "")
		out[i].Sandbox = &j
	}
	s.edge.WriteJSON(w, r, http.StatusCreated, out)
	return nil
}

// createSnapshot serves sbx.createSnapshot({name}): 201 {snapshotID, names}. A sandbox
// that is not live is 404 (the SDK's SandboxNotFoundError).
func (s *Server) createSnapshot(w http.ResponseWriter, r *http.Request) error {
	p, id, req, err := edge.SandboxCall[snapshotRequest](w, r, decodeJSON)
	if err != nil {
		return err
	}
	sb, err := s.svc.Get(r.Context(), p, id)
	if err != nil {
		return err
	}
	if sb.State.Terminal() {
		return domain.Errorf(domain.KindNotFound, "sandbox %q not found (it is %s)", id, sb.State)
	}
	ss, err := s.snapshots()
	if err != nil {
		return err
	}
	snap, err := ss.CreateSnapshot(r.Context(), p, id, req.Name)
	if err != nil {
		return err
	}
	edge.SetTarget(r, snap.ID)
	s.edge.WriteJSON(w, r, http.StatusCreated, toSnapshot(snap))
	return nil
}

// listSnapshots serves Sandbox.listSnapshots' paginator: sandboxID, name, limit (1..100)
// and nextToken; X-Next-Token when there is more.
func (s *Server) listSnapshots(w http.ResponseWriter, r *http.Request) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	ss, err := s.snapshots()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := domain.SnapshotFilter{SandboxID: q.Get("sandboxID"), Name: q.Get("name"), Cursor: q.Get("nextToken"), Limit: listLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > listLimit {
			return domain.Invalid("limit", "limit must be an integer from 1 to %d, got %q", listLimit, v)
		}
		f.Limit = n
	}
	items, next, err := ss.ListSnapshots(r.Context(), p, f)
	if err != nil {
		if domain.IsKind(err, domain.KindInvalid) && domain.FieldOf(err) == "cursor" {
			return domain.Invalid("nextToken", "nextToken is malformed: pass the X-Next-Token of the previous page unchanged")
		}
		return err
	}
	out := make([]snapshotJSON, 0, len(items))
	for _, snap := range items {
		out = append(out, toSnapshot(snap))
	}
	if next != "" {
		w.Header().Set("X-Next-Token", next)
	}
	s.edge.WriteJSON(w, r, http.StatusOK, out)
	return nil
}
