package domain

import (
	"context"
	"strings"
	"time"
)

// Snapshot is a sandbox saved at one instant, memory and files: new sandboxes start
// from it (a create that names it, or a fork, which makes one for its own use and
// drops it). Its files live on the node that made it; the row says what restoring it
// needs.
type Snapshot struct {
	ID     string
	TeamID string
	// Name, unique in the team, lets creates name the snapshot ("" = none).
	Name string
	// SandboxID is the sandbox it was taken of; TemplateID and RuntimeName are that
	// sandbox's, and a sandbox started from it uses the same.
	SandboxID   string
	TemplateID  string
	RuntimeName string
	// TemplateRootFS is the template's root filesystem the sandbox ran on: a restore
	// needs that very lower layer, even after the template was rebuilt.
	TemplateRootFS string
	// Limits are the saved sandbox's; a sandbox started from it gets the same.
	Limits Limits
	// Env is the sandbox-wide env the saved agent holds.
	Env map[string]string
	// Internet is the saved sandbox's outbound setting, the default of sandboxes
	// started from it.
	Internet bool
	// Network is the saved sandbox's egress policy, the default of sandboxes started
	// from it.
	Network NetworkPolicy
	// AccessToken is the token the saved agent holds: the server proves it to give a
	// restored agent its own (the agent's POST /init).
	AccessToken string
	// SizeBytes is what its files take on the node's disk.
	SizeBytes int64
	CreatedAt time.Time
}

// SnapshotIDPrefix starts every snapshot id, which tells them from template names and
// sandbox ids where either may be given (E2B's templateID).
const SnapshotIDPrefix = "snap_"

// NewSnapshotID returns a fresh snapshot id.
func NewSnapshotID() string { return SnapshotIDPrefix + NewID(16) }

// IsSnapshotID reports whether ref has the shape of a snapshot id.
func IsSnapshotID(ref string) bool {
	rest, ok := strings.CutPrefix(ref, SnapshotIDPrefix)
	if !ok || len(rest) != 16 {
		return false
	}
	return strings.Trim(rest, idAlphabet) == ""
}

// SnapshotFilter selects snapshots in a listing, newest first. TeamID is required (a
// team, or AnyTeam); the other empty fields match everything.
type SnapshotFilter struct {
	TeamID    string
	SandboxID string
	Name      string
	// Cursor is the opaque position from a previous page; Limit caps the page (0 = default).
	Cursor string
	Limit  int
}

// SnapshotStore persists snapshots.
type SnapshotStore interface {
	// CreateSnapshotWithinQuota inserts s only if the team then holds at most max
	// snapshots (0: no limit), atomically as CreateSandboxWithinQuota. A refusal is a
	// KindQuotaExceeded *Error whose Err is a *QuotaError (max_snapshots); a name the
	// team already uses is KindConflict, an unknown team KindNotFound.
	CreateSnapshotWithinQuota(ctx context.Context, s *Snapshot, max int64) error
	// GetSnapshot returns the team's snapshot with that id or, failing that, that name
	// (AnyTeam: any team's, by id only); another team's is KindNotFound.
	GetSnapshot(ctx context.Context, teamID, ref string) (*Snapshot, error)
	// ListSnapshots pages by creation time, newest first; next is "" on the last page.
	ListSnapshots(ctx context.Context, f SnapshotFilter) (items []*Snapshot, next string, err error)
	// DeleteSnapshot removes the team's snapshot by id; another team's is KindNotFound.
	DeleteSnapshot(ctx context.Context, teamID, id string) error
}

// ForkResult is one sandbox of a fork: the sandbox, or why it could not be started.
type ForkResult struct {
	Sandbox *Sandbox
	Err     error
}

// SnapshotService saves sandboxes and starts new ones from what it saved. Every method
// is scoped to the principal's team: another team's sandbox or snapshot is not found.
type SnapshotService interface {
	// Fork saves the running sandbox id once and starts count (1..20) new sandboxes from
	// it, each with its own id, address, access token, hostname and timeout (0: the
	// default); the sandbox itself keeps running. One result per sandbox asked for.
	Fork(ctx context.Context, p Principal, id string, count int, timeout time.Duration) ([]ForkResult, error)
	// CreateSnapshot saves the running sandbox id as a snapshot the team keeps.
	CreateSnapshot(ctx context.Context, p Principal, sandboxID, name string) (*Snapshot, error)
	ListSnapshots(ctx context.Context, p Principal, f SnapshotFilter) ([]*Snapshot, string, error)
	// GetSnapshot finds a snapshot by id or name.
	GetSnapshot(ctx context.Context, p Principal, ref string) (*Snapshot, error)
	// DeleteSnapshot removes a snapshot (by id or name) and its files; sandboxes
	// started from it are not affected.
	DeleteSnapshot(ctx context.Context, p Principal, ref string) error
}

// CheckSnapshotQuota reports whether the team, holding used snapshots, may keep one
// more under max (0: no limit): nil or a KindQuotaExceeded *Error naming max_snapshots.
func CheckSnapshotQuota(max, used int64) error {
	if max <= 0 || used+1 <= max {
		return nil
	}
	return &Error{
		Kind: KindQuotaExceeded,
		Message: "quota max_snapshots exceeded: the team keeps " + formatQuantity(float64(used)) + " of at most " +
			formatQuantity(float64(max)) + " snapshots; delete snapshots you no longer need, or ask the operator to raise the quota",
		Err: &QuotaError{Quota: "max_snapshots", Limit: float64(max), Used: float64(used)},
	}
}
