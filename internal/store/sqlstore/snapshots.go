package sqlstore

import (
	"context"

	"github.com/warren-sh/warren/internal/domain"
)

// Snapshots is the domain.SnapshotStore.
type Snapshots struct{ db *db }

var _ domain.SnapshotStore = (*Snapshots)(nil)

const snapshotColumns = `id, team_id, name, sandbox_id, template_id, template_rootfs, runtime_name, limits, env,
	internet, access_token, size_bytes, created_at, network_policy`

func scanSnapshot(d Dialect, r rowScanner) (*domain.Snapshot, error) {
	var s domain.Snapshot
	if err := r.Scan(&s.ID, &s.TeamID, &s.Name, &s.SandboxID, &s.TemplateID, &s.TemplateRootFS, &s.RuntimeName, scanJSON(&s.Limits),
		scanJSON(&s.Env), &s.Internet, &s.AccessToken, &s.SizeBytes, scanTime(d, &s.CreatedAt),
		scanJSON(&s.Network)); err != nil {
		return nil, err
	}
	return &s, nil
}

// CreateSnapshotWithinQuota inserts s if the team then keeps at most max snapshots
// (0: no limit). The dialect's LockTeam, the count and the insert share one write
// transaction, as in CreateSandboxWithinQuota.
func (s *Snapshots) CreateSnapshotWithinQuota(ctx context.Context, sn *domain.Snapshot, max int64) error {
	e := encoder{d: s.db.d}
	args := []any{sn.ID, sn.TeamID, sn.Name, sn.SandboxID, sn.TemplateID, sn.TemplateRootFS, sn.RuntimeName, e.json("limits", sn.Limits),
		e.strMap("env", sn.Env), sn.Internet, sn.AccessToken, sn.SizeBytes, e.sortTime("created_at", sn.CreatedAt),
		e.json("network_policy", sn.Network)}
	if e.err != nil {
		return s.db.wrap(e.err, "creating snapshot %s", sn.ID)
	}
	return s.db.inTx(ctx, "creating snapshot "+sn.ID, func(tx *tx) error {
		if err := s.db.d.LockTeam(ctx, tx.raw, sn.TeamID); err != nil {
			return err
		}
		var used int64
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM snapshots WHERE team_id = ?`, sn.TeamID).Scan(&used); err != nil {
			return s.db.wrap(err, "counting snapshots of team %s", sn.TeamID)
		}
		if err := domain.CheckSnapshotQuota(max, used); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO snapshots (`+snapshotColumns+`) VALUES (`+marks(14)+`)`, args...)
		if err != nil {
			conflict := domain.Errorf(domain.KindConflict, "snapshot %q already exists", sn.ID)
			if sn.Name != "" {
				conflict = domain.Errorf(domain.KindConflict, "the team already has a snapshot named %q; choose another name, or delete that snapshot first", sn.Name)
			}
			return s.db.insertErr(err, sn.TeamID, conflict, "creating snapshot %s", sn.ID)
		}
		return nil
	})
}

// GetSnapshot returns the team's snapshot with id ref or, failing that, named ref;
// for domain.AnyTeam, any team's snapshot with id ref.
func (s *Snapshots) GetSnapshot(ctx context.Context, teamID, ref string) (*domain.Snapshot, error) {
	if err := needTeam(teamID); err != nil {
		return nil, err
	}
	if teamID == domain.AnyTeam {
		return get(ctx, s.db, scanSnapshot, "snapshot", ref, `SELECT `+snapshotColumns+` FROM snapshots WHERE id = ?`, ref)
	}
	// An id and a name cannot be mixed up: ids start with domain.SnapshotIDPrefix,
	// which names may not.
	return get(ctx, s.db, scanSnapshot, "snapshot", ref, `SELECT `+snapshotColumns+` FROM snapshots
		WHERE team_id = ? AND (id = ? OR (name = ? AND name <> ''))`, teamID, ref, ref)
}

// ListSnapshots returns one page of the snapshots that match f, newest first (ties
// broken by id, descending). next is the cursor of the following page, "" on the last.
func (s *Snapshots) ListSnapshots(ctx context.Context, f domain.SnapshotFilter) ([]*domain.Snapshot, string, error) {
	limit := f.Limit
	switch {
	case limit < 0:
		return nil, "", domain.Invalid("limit", "limit must not be negative: omit it for %d items per page", DefaultPageSize)
	case limit == 0:
		limit = DefaultPageSize
	case limit > MaxPageSize:
		limit = MaxPageSize
	}
	if err := needTeam(f.TeamID); err != nil {
		return nil, "", err
	}
	d := s.db.d
	var w where
	if f.TeamID != domain.AnyTeam {
		w.add(`team_id = ?`, f.TeamID)
	}
	if f.SandboxID != "" {
		w.add(`sandbox_id = ?`, f.SandboxID)
	}
	if f.Name != "" {
		w.add(`name = ?`, f.Name)
	}
	if f.Cursor != "" {
		c, err := parseCursor(d.CursorVersion(), f.Cursor)
		if err != nil {
			return nil, "", err
		}
		w.add(`(created_at, id) < (?, ?)`, d.CursorValue(c.created), c.id)
	}
	q := `SELECT ` + snapshotColumns + ` FROM snapshots` + w.String() + ` ORDER BY created_at DESC, id DESC LIMIT ?`
	items, err := list(ctx, s.db, scanSnapshot, "listing snapshots", q, append(w.args, limit+1)...)
	if err != nil || len(items) <= limit {
		return items, "", err
	}
	items = items[:limit]
	last := items[limit-1]
	next := cursor{created: d.CursorKey(last.CreatedAt), id: last.ID}
	return items, next.encode(d.CursorVersion()), nil
}

// DeleteSnapshot removes the team's snapshot id.
func (s *Snapshots) DeleteSnapshot(ctx context.Context, teamID, id string) error {
	if err := needTeam(teamID); err != nil {
		return err
	}
	q, args := `DELETE FROM snapshots WHERE id = ?`, []any{id}
	if teamID != domain.AnyTeam {
		q += ` AND team_id = ?`
		args = append(args, teamID)
	}
	return s.db.update(ctx, "snapshot", id, "deleting", q, args...)
}
