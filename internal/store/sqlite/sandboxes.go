package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
)

// Page sizes of ListSandboxes.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

const sandboxColumns = `id, team_id, template_id, state, end_reason, metadata, env, limits, internet,
	runtime_name, runtime_handle, address, slot, access_token, created_at, started_at, ends_at, stopped_at,
	traffic_token`

// CreateSandbox inserts s. A taken id is KindConflict; an unknown team is KindNotFound.
func (s *Store) CreateSandbox(ctx context.Context, sb *domain.Sandbox) error {
	return insertSandbox(ctx, s.w, sb)
}

// execer is *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertSandbox(ctx context.Context, db execer, sb *domain.Sandbox) error {
	var e encoder
	args := []any{sb.ID, sb.TeamID, sb.TemplateID, string(sb.State), sb.EndReason,
		e.strMap("metadata", sb.Metadata), e.strMap("env", sb.Env), e.json("limits", sb.Limits), boolInt(sb.Internet),
		sb.RuntimeName, blob(sb.RuntimeHandle), sb.Address, sb.Slot, sb.AccessToken,
		e.sortTime("created_at", sb.CreatedAt), e.time("started_at", sb.StartedAt),
		e.time("ends_at", sb.EndsAt), e.time("stopped_at", sb.StoppedAt), sb.TrafficToken}
	if e.err != nil {
		return fmt.Errorf("creating sandbox %s: %w", sb.ID, e.err)
	}
	_, err := db.ExecContext(ctx, `INSERT INTO sandboxes (`+sandboxColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	switch {
	case isUniqueViolation(err):
		return domain.Errorf(domain.KindConflict, "sandbox %q already exists", sb.ID)
	case isForeignKeyViolation(err):
		return domain.NotFound("team", sb.TeamID)
	case err != nil:
		return fmt.Errorf("creating sandbox %s: %w", sb.ID, err)
	}
	return nil
}

func scanSandbox(r rowScanner) (*domain.Sandbox, error) {
	var sb domain.Sandbox
	var (
		state                    string
		metadata, env            sql.NullString
		limits                   string
		handle                   any
		created                  int64
		started, ends, stoppedAt sql.NullInt64
	)
	if err := r.Scan(&sb.ID, &sb.TeamID, &sb.TemplateID, &state, &sb.EndReason, &metadata, &env, &limits,
		&sb.Internet, &sb.RuntimeName, &handle, &sb.Address, &sb.Slot, &sb.AccessToken,
		&created, &started, &ends, &stoppedAt, &sb.TrafficToken); err != nil {
		return nil, err
	}
	var err error
	sb.State = domain.SandboxState(state)
	if sb.Metadata, err = decodeMap("metadata", metadata); err != nil {
		return nil, err
	}
	if sb.Env, err = decodeMap("env", env); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(limits), &sb.Limits); err != nil {
		return nil, fmt.Errorf("decoding limits of sandbox %s: %w", sb.ID, err)
	}
	if sb.RuntimeHandle, err = decodeBlob(handle); err != nil {
		return nil, fmt.Errorf("decoding runtime handle of sandbox %s: %w", sb.ID, err)
	}
	sb.CreatedAt = decodeSortTime(created)
	sb.StartedAt, sb.EndsAt, sb.StoppedAt = decodeTime(started), decodeTime(ends), decodeTime(stoppedAt)
	return &sb, nil
}

// GetSandbox returns the sandbox of any team when teamID is "", else only the team's:
// another team's sandbox is not found.
func (s *Store) GetSandbox(ctx context.Context, teamID, id string) (*domain.Sandbox, error) {
	q := `SELECT ` + sandboxColumns + ` FROM sandboxes WHERE id = ?`
	args := []any{id}
	if teamID != "" {
		q += ` AND team_id = ?`
		args = append(args, teamID)
	}
	sb, err := scanSandbox(s.r.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("sandbox", id)
	}
	if err != nil {
		return nil, fmt.Errorf("getting sandbox %s: %w", id, err)
	}
	return sb, nil
}

// UpdateSandbox writes the mutable fields of sb: State, EndReason, RuntimeName,
// RuntimeHandle, Address, Slot, AccessToken, StartedAt, EndsAt and StoppedAt. The team,
// template, creation time, metadata, env, limits and internet setting are fixed at
// creation and left alone.
func (s *Store) UpdateSandbox(ctx context.Context, sb *domain.Sandbox) error {
	var e encoder
	args := []any{string(sb.State), sb.EndReason, sb.RuntimeName, blob(sb.RuntimeHandle), sb.Address, sb.Slot,
		sb.AccessToken, e.time("started_at", sb.StartedAt), e.time("ends_at", sb.EndsAt),
		e.time("stopped_at", sb.StoppedAt), sb.ID}
	if e.err != nil {
		return fmt.Errorf("updating sandbox %s: %w", sb.ID, e.err)
	}
	n, err := s.exec(ctx, `UPDATE sandboxes SET state = ?, end_reason = ?, runtime_name = ?, runtime_handle = ?,
		address = ?, slot = ?, access_token = ?, started_at = ?, ends_at = ?, stopped_at = ?
		WHERE id = ?`, args...)
	if err != nil {
		return fmt.Errorf("updating sandbox %s: %w", sb.ID, err)
	}
	if n == 0 {
		return domain.NotFound("sandbox", sb.ID)
	}
	return nil
}

// ListSandboxes returns one page of the sandboxes that match f, newest first (ties
// broken by id, descending). next is the cursor of the following page, "" on the last.
func (s *Store) ListSandboxes(ctx context.Context, f domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
	limit := f.Limit
	switch {
	case limit < 0:
		return nil, "", domain.Invalid("limit", "limit must not be negative: omit it for %d items per page", DefaultPageSize)
	case limit == 0:
		limit = DefaultPageSize
	case limit > MaxPageSize:
		limit = MaxPageSize
	}

	var where []string
	var args []any
	if f.TeamID != "" {
		where = append(where, `team_id = ?`)
		args = append(args, f.TeamID)
	}
	if len(f.States) > 0 {
		where = append(where, `state IN (?`+strings.Repeat(`, ?`, len(f.States)-1)+`)`)
		for _, st := range f.States {
			args = append(args, string(st))
		}
	}
	// Sorted keys keep the statement text stable, so the driver can reuse it.
	keys := make([]string, 0, len(f.Metadata))
	for k := range f.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		where = append(where, `EXISTS (SELECT 1 FROM json_each(sandboxes.metadata) AS m
			WHERE m.key = ? AND m.type = 'text' AND m.value = ?)`)
		args = append(args, k, f.Metadata[k])
	}
	if f.TemplateID != "" {
		where = append(where, `template_id = ?`)
		args = append(args, f.TemplateID)
	}
	if !f.CreatedAfter.IsZero() {
		where = append(where, `created_at >= ?`)
		args = append(args, f.CreatedAfter.UTC().UnixNano())
	}
	cmp, order := `<`, `DESC`
	if f.Ascending {
		cmp, order = `>`, `ASC`
	}
	if f.Cursor != "" {
		c, err := parseCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, `(created_at, id) `+cmp+` (?, ?)`)
		args = append(args, c.created, c.id)
	}

	q := `SELECT ` + sandboxColumns + ` FROM sandboxes`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY created_at ` + order + `, id ` + order + ` LIMIT ?`
	args = append(args, limit+1) // one extra row tells whether there is a next page

	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing sandboxes: %w", err)
	}
	items, err := collect(rows, scanSandbox)
	if err != nil {
		return nil, "", fmt.Errorf("listing sandboxes: %w", err)
	}
	if len(items) <= limit {
		return items, "", nil
	}
	items = items[:limit]
	last := items[limit-1]
	var e encoder
	next := cursor{created: e.sortTime("created_at", last.CreatedAt), id: last.ID}
	return items, next.String(), e.err
}

// UsedSlots returns the slots of all sandboxes that are not in a terminal state, in
// ascending order.
func (s *Store) UsedSlots(ctx context.Context) ([]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT slot FROM sandboxes WHERE state NOT IN (?, ?) ORDER BY slot`,
		string(domain.StateStopped), string(domain.StateError))
	if err != nil {
		return nil, fmt.Errorf("listing used slots: %w", err)
	}
	defer rows.Close()
	slots := []int{}
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("listing used slots: %w", err)
		}
		slots = append(slots, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing used slots: %w", err)
	}
	return slots, nil
}
