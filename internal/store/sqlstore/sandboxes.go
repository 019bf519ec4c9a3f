package sqlstore

import (
	"context"

	"github.com/warren-sh/warren/internal/domain"
)

// Page sizes of ListSandboxes.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// Sandboxes is the domain.SandboxStore.
type Sandboxes struct{ db *db }

var _ domain.SandboxStore = (*Sandboxes)(nil)

const sandboxColumns = `id, team_id, template_id, state, end_reason, metadata, env, limits, internet,
	runtime_name, runtime_handle, address, slot, access_token, created_at, started_at, ends_at, stopped_at,
	traffic_token, on_timeout, auto_resume, paused_at, network_policy, node`

// CreateSandbox inserts sb. A taken id is KindConflict; an unknown team is KindNotFound.
func (s *Sandboxes) CreateSandbox(ctx context.Context, sb *domain.Sandbox) error {
	return insertSandbox(ctx, s.db, s.db, sb)
}

func insertSandbox(ctx context.Context, db *db, r runner, sb *domain.Sandbox) error {
	e := encoder{d: db.d}
	args := []any{sb.ID, sb.TeamID, sb.TemplateID, string(sb.State), sb.EndReason,
		e.strMap("metadata", sb.Metadata), e.strMap("env", sb.Env), e.json("limits", sb.Limits), sb.Internet,
		sb.RuntimeName, blob(sb.RuntimeHandle), sb.Address, sb.Slot, sb.AccessToken,
		e.sortTime("created_at", sb.CreatedAt), e.time("started_at", sb.StartedAt),
		e.time("ends_at", sb.EndsAt), e.time("stopped_at", sb.StoppedAt), sb.TrafficToken,
		sb.Lifecycle.OnTimeout, sb.Lifecycle.AutoResume, e.time("paused_at", sb.PausedAt), e.json("network_policy", sb.Network), sb.Node}
	if e.err != nil {
		return db.wrap(e.err, "creating sandbox %s", sb.ID)
	}
	_, err := r.exec(ctx, `INSERT INTO sandboxes (`+sandboxColumns+`) VALUES (`+marks(24)+`)`, args...)
	if err != nil {
		return db.insertErr(err, sb.TeamID, domain.Errorf(domain.KindConflict, "sandbox %q already exists", sb.ID),
			"creating sandbox %s", sb.ID)
	}
	return nil
}

func scanSandbox(d Dialect, r rowScanner) (*domain.Sandbox, error) {
	var sb domain.Sandbox
	if err := r.Scan(&sb.ID, &sb.TeamID, &sb.TemplateID, &sb.State, &sb.EndReason, scanJSON(&sb.Metadata),
		scanJSON(&sb.Env), scanJSON(&sb.Limits), &sb.Internet, &sb.RuntimeName, scanBlob(&sb.RuntimeHandle),
		&sb.Address, &sb.Slot, &sb.AccessToken, scanTime(d, &sb.CreatedAt), scanTime(d, &sb.StartedAt),
		scanTime(d, &sb.EndsAt), scanTime(d, &sb.StoppedAt), &sb.TrafficToken, &sb.Lifecycle.OnTimeout,
		&sb.Lifecycle.AutoResume, scanTime(d, &sb.PausedAt), scanJSON(&sb.Network), &sb.Node); err != nil {
		return nil, err
	}
	return &sb, nil
}

// GetSandbox returns the team's sandbox (another team's is not found), or any team's
// for domain.AnyTeam; an empty teamID is refused.
func (s *Sandboxes) GetSandbox(ctx context.Context, teamID, id string) (*domain.Sandbox, error) {
	if err := needTeam(teamID); err != nil {
		return nil, err
	}
	q := `SELECT ` + sandboxColumns + ` FROM sandboxes WHERE id = ?`
	args := []any{id}
	if teamID != domain.AnyTeam {
		q += ` AND team_id = ?`
		args = append(args, teamID)
	}
	return get(ctx, s.db, scanSandbox, "sandbox", id, q, args...)
}

// UpdateSandbox writes the mutable fields of sb: State, EndReason, RuntimeName,
// RuntimeHandle, Address, Slot, AccessToken, StartedAt, EndsAt, StoppedAt and
// PausedAt. The team, template, creation time, metadata, env, limits, internet setting,
// lifecycle and node are fixed at creation and left alone; the network policy changes
// only through SetSandboxNetwork. A row that has ended (stopped, error) is never moved
// back to another state: that is KindConflict.
func (s *Sandboxes) UpdateSandbox(ctx context.Context, sb *domain.Sandbox) error {
	return updateSandbox(ctx, s.db, s.db, sb)
}

func updateSandbox(ctx context.Context, db *db, r runner, sb *domain.Sandbox) error {
	e := encoder{d: db.d}
	args := []any{string(sb.State), sb.EndReason, sb.RuntimeName, blob(sb.RuntimeHandle), sb.Address, sb.Slot,
		sb.AccessToken, e.time("started_at", sb.StartedAt), e.time("ends_at", sb.EndsAt),
		e.time("stopped_at", sb.StoppedAt), e.time("paused_at", sb.PausedAt), sb.ID}
	if e.err != nil {
		return db.wrap(e.err, "updating sandbox %s", sb.ID)
	}
	// A sandbox that has ended stays ended: a write that would bring it back (a node
	// that went on with a sandbox the monitor had stopped as lost) changes nothing.
	args = append(args, string(domain.StateStopped), string(domain.StateError), string(sb.State),
		string(domain.StateStopped), string(domain.StateError))
	n, err := r.exec(ctx, `UPDATE sandboxes SET state = ?, end_reason = ?,
		runtime_name = ?, runtime_handle = ?, address = ?, slot = ?, access_token = ?, started_at = ?, ends_at = ?,
		stopped_at = ?, paused_at = ? WHERE id = ? AND (state NOT IN (?, ?) OR ? IN (?, ?))`, args...)
	if err != nil {
		return db.wrap(err, "updating sandbox %s", sb.ID)
	}
	if n > 0 {
		return nil
	}
	var state string
	if err := r.queryRow(ctx, `SELECT state FROM sandboxes WHERE id = ?`, sb.ID).Scan(&state); err != nil {
		return domain.NotFound("sandbox", sb.ID)
	}
	return domain.Errorf(domain.KindConflict, "sandbox %q has ended (%s); create a new one", sb.ID, state)
}

// SetSandboxNetwork replaces the network policy of the team's sandbox id (another
// team's is not found). It writes nothing else, so an UpdateSandbox from a copy read
// before it cannot undo it.
func (s *Sandboxes) SetSandboxNetwork(ctx context.Context, teamID, id string, p domain.NetworkPolicy) error {
	if err := needTeam(teamID); err != nil {
		return err
	}
	e := encoder{d: s.db.d}
	q := `UPDATE sandboxes SET network_policy = ? WHERE id = ?`
	args := []any{e.json("network_policy", p), id}
	if e.err != nil {
		return s.db.wrap(e.err, "updating the network policy of sandbox %s", id)
	}
	if teamID != domain.AnyTeam {
		q += ` AND team_id = ?`
		args = append(args, teamID)
	}
	return s.db.updateWith(ctx, s.db, "sandbox", id, "updating the network policy of", q, args...)
}

// ResumeSandboxWithinQuota writes sb as UpdateSandbox does if the team's live
// sandboxes plus sb fit in q, in one write transaction with the dialect's LockTeam,
// as CreateSandboxWithinQuota. sb's own row is paused while it is summed, so it is
// not counted twice.
func (s *Sandboxes) ResumeSandboxWithinQuota(ctx context.Context, sb *domain.Sandbox, q domain.Quota) error {
	return s.db.inTx(ctx, "resuming sandbox "+sb.ID, func(tx *tx) error {
		if err := s.db.d.LockTeam(ctx, tx.raw, sb.TeamID); err != nil {
			return err
		}
		used, err := teamUsage(ctx, s.db.d, tx, sb.TeamID)
		if err != nil {
			return s.db.wrap(err, "summing usage of team %s", sb.TeamID)
		}
		if err := domain.CheckSandboxQuota(q, used, sb.Limits); err != nil {
			return err
		}
		return updateSandbox(ctx, s.db, tx, sb)
	})
}

// ListSandboxes returns one page of the sandboxes that match f, newest first (ties
// broken by id, descending). next is the cursor of the following page, "" on the last.
func (s *Sandboxes) ListSandboxes(ctx context.Context, f domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
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
	if len(f.States) > 0 {
		states := make([]any, len(f.States))
		for i, st := range f.States {
			states[i] = string(st)
		}
		w.add(`state IN (`+marks(len(states))+`)`, states...)
	}
	if len(f.Metadata) > 0 {
		cond, args := d.JSONContains("metadata", f.Metadata)
		w.add(cond, args...)
	}
	if f.TemplateID != "" {
		w.add(`template_id = ?`, f.TemplateID)
	}
	if len(f.Nodes) > 0 {
		nodes := make([]any, len(f.Nodes))
		for i, n := range f.Nodes {
			nodes[i] = n
		}
		w.add(`node IN (`+marks(len(nodes))+`)`, nodes...)
	}
	if !f.CreatedAfter.IsZero() {
		w.add(`created_at >= ?`, d.ClampTime(f.CreatedAfter))
	}
	cmp, order := `<`, `DESC`
	if f.Ascending {
		cmp, order = `>`, `ASC`
	}
	if f.Cursor != "" {
		c, err := parseCursor(d.CursorVersion(), f.Cursor)
		if err != nil {
			return nil, "", err
		}
		w.add(`(created_at, id) `+cmp+` (?, ?)`, d.CursorValue(c.created), c.id)
	}
	q := `SELECT ` + sandboxColumns + ` FROM sandboxes` + w.String() +
		` ORDER BY created_at ` + order + `, id ` + order + ` LIMIT ?`
	args := append(w.args, limit+1) // one extra row tells whether there is a next page

	items, err := list(ctx, s.db, scanSandbox, "listing sandboxes", q, args...)
	if err != nil || len(items) <= limit {
		return items, "", err
	}
	items = items[:limit]
	last := items[limit-1]
	next := cursor{created: d.CursorKey(last.CreatedAt), id: last.ID}
	return items, next.encode(d.CursorVersion()), nil
}

// UsedSlots returns the slots of the live sandboxes (starting or running) of the given
// nodes (nil: of every node), in ascending order.
func (s *Sandboxes) UsedSlots(ctx context.Context, nodes []string) ([]int, error) {
	q, args := `SELECT slot FROM sandboxes WHERE state IN (?, ?)`, []any{string(domain.StateStarting), string(domain.StateRunning)}
	if len(nodes) > 0 {
		q += ` AND node IN (` + marks(len(nodes)) + `)`
		for _, n := range nodes {
			args = append(args, n)
		}
	}
	rows, err := s.db.query(ctx, q+` ORDER BY slot`, args...)
	if err != nil {
		return nil, s.db.wrap(err, "listing used slots")
	}
	defer rows.Close()
	slots := []int{}
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			return nil, s.db.wrap(err, "listing used slots")
		}
		slots = append(slots, n)
	}
	if err := rows.Err(); err != nil {
		return nil, s.db.wrap(err, "listing used slots")
	}
	return slots, nil
}

// CreateSandboxWithinQuota inserts sb if the team's live sandboxes plus sb fit
// in q. The dialect's LockTeam, the sum and the insert share one write transaction, so
// concurrent calls for the team, from any process, sum and insert one after the other.
func (s *Sandboxes) CreateSandboxWithinQuota(ctx context.Context, sb *domain.Sandbox, q domain.Quota) error {
	return s.db.inTx(ctx, "creating sandbox "+sb.ID, func(tx *tx) error {
		if err := s.db.d.LockTeam(ctx, tx.raw, sb.TeamID); err != nil {
			return err
		}
		used, err := teamUsage(ctx, s.db.d, tx, sb.TeamID)
		if err != nil {
			return s.db.wrap(err, "summing usage of team %s", sb.TeamID)
		}
		if err := domain.CheckSandboxQuota(q, used, sb.Limits); err != nil {
			return err
		}
		return insertSandbox(ctx, s.db, tx, sb)
	})
}

// TeamUsage sums the limits of the team's live sandboxes (starting or running; a
// paused one holds no CPU, memory or slot), counts its snapshots and its templates (and their size).
func (s *Sandboxes) TeamUsage(ctx context.Context, teamID string) (domain.QuotaUsage, error) {
	u, err := teamUsage(ctx, s.db.d, s.db, teamID)
	if err != nil {
		return domain.QuotaUsage{}, s.db.wrap(err, "summing usage of team %s", teamID)
	}
	return u, nil
}

func teamUsage(ctx context.Context, d Dialect, r runner, teamID string) (domain.QuotaUsage, error) {
	// limits is the JSON of domain.Limits, whose names are fixed by its JSON tags.
	sum := func(key, typ string) string {
		return `CAST(COALESCE(SUM(` + d.JSONNumber("limits", key) + `), 0) AS ` + typ + `)`
	}
	var u domain.QuotaUsage
	err := r.queryRow(ctx, `SELECT COUNT(*), `+sum("cpu_cores", "DOUBLE PRECISION")+`, `+
		sum("memory_mb", "BIGINT")+`, `+sum("disk_mb", "BIGINT")+`,
		(SELECT COUNT(*) FROM snapshots WHERE team_id = ?)
		FROM sandboxes WHERE team_id = ? AND state IN (?, ?)`,
		teamID, teamID, string(domain.StateStarting), string(domain.StateRunning)).
		Scan(&u.Sandboxes, &u.CPUCores, &u.MemoryMB, &u.DiskMB, &u.Snapshots)
	if err != nil {
		return u, err
	}
	var bytes int64
	u.Templates, bytes, err = teamTemplates(ctx, r, teamID, "")
	u.TemplateMB = (bytes + domain.MiB - 1) / domain.MiB
	return u, err
}
