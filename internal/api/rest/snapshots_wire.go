package rest

import (
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// forkRequest is POST /v1/sandboxes/{id}/fork: how many copies (1..20, default 1) and
// their timeout in seconds (default: the server's).
type forkRequest struct {
	Count   *int  `json:"count"`
	Timeout int64 `json:"timeout"`
}

// forkResponse lists the copies that started, in the order asked for; Errors the ones
// that did not (each fork is admitted like a create: one may find the quota full or
// fail to start while the others run).
type forkResponse struct {
	Sandboxes []sandboxJSON `json:"sandboxes"`
	Errors    []forkError   `json:"errors,omitempty"`
}

// forkError is why the copy at Index (0-based, in the order asked for) did not start:
// the error body a create would have answered, with its status.
type forkError struct {
	Index   int    `json:"index"`
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// createSnapshotRequest is POST /v1/sandboxes/{id}/snapshots.
type createSnapshotRequest struct {
	Name string `json:"name"`
}

type snapshotJSON struct {
	ID         string        `json:"id"`
	Name       string        `json:"name"`
	SandboxID  string        `json:"sandbox_id"`
	TemplateID string        `json:"template_id"`
	Runtime    string        `json:"runtime"`
	Limits     domain.Limits `json:"limits"`
	SizeBytes  int64         `json:"size_bytes"`
	CreatedAt  time.Time     `json:"created_at"`
}

func toSnapshotJSON(s *domain.Snapshot) snapshotJSON {
	return snapshotJSON{ID: s.ID, Name: s.Name, SandboxID: s.SandboxID, TemplateID: s.TemplateID, Runtime: s.RuntimeName,
		Limits: s.Limits, SizeBytes: s.SizeBytes, CreatedAt: s.CreatedAt.UTC()}
}

type listSnapshotsResponse struct {
	Snapshots  []snapshotJSON `json:"snapshots"`
	NextCursor string         `json:"next_cursor"`
}
