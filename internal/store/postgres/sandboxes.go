package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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

// execer is the pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// CreateSandbox inserts s. A taken id is KindConflict; an unknown team is KindNotFound.
func (s *Store) CreateSandbox(ctx context.Context, sb *domain.Sandbox) error {
	return insertSandbox(ctx, s.pool, sb)
}

func insertSandbox(ctx context.Context, db execer, sb *domain.Sandbox) error {
	var e encoder
	args := []any{sb.ID, sb.TeamID, sb.TemplateID, string(sb.State), sb.EndReason,
		e.strMap("metadata", sb.Metadata), e.strMap("env", sb.Env), e.jsonb("limits", sb.Limits), sb.Internet,
		sb.RuntimeName, blob(sb.RuntimeHandle), sb.Address, sb.Slot, sb.AccessToken,
		e.sortTime("created_at", sb.CreatedAt), e.time("started_at", sb.StartedAt),
		e.time("ends_at", sb.EndsAt), e.time("stopped_at", sb.StoppedAt), sb.TrafficToken}
	if e.err != nil {
		return fmt.Errorf("creating sandbox %s: %w", sb.ID, e.err)
	}
	_, err := db.Exec(ctx, `INSERT INTO sandboxes (`+sandboxColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`, args...)
	switch {
	case isUniqueViolation(err):
		return domain.Errorf(domain.KindConflict, "sandbox %q already exists", sb.ID)
	case isForeignKeyViolation(err):
		return domain.NotFound("team", sb.TeamID)
	case err != nil:
		return fmt.Errorf("creating sandbox %s: %w", sb.ID, classify(err))
	}
	return nil
}

func scanSandbox(r rowScanner) (*domain.Sandbox, error) {
	var sb domain.Sandbox
	var (
		state                    string
		metadata, env, limits    []byte
		created                  time.Time
		started, ends, stoppedAt *time.Time
	)
	if err := r.Scan(&sb.ID, &sb.TeamID, &sb.TemplateID, &state, &sb.EndReason, &metadata, &env, &limits,
		&sb.Internet, &sb.RuntimeName, &sb.RuntimeHandle, &sb.Address, &sb.Slot, &sb.AccessToken,
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
	if err := json.Unmarshal(limits, &sb.Limits); err != nil {
		return nil, fmt.Errorf("decoding limits of sandbox %s: %w", sb.ID, err)
	}
	sb.CreatedAt = decodeSortTime(created)
	sb.StartedAt, sb.EndsAt, sb.StoppedAt = decodeTime(started), decodeTime(ends), decodeTime(stoppedAt)
	return &sb, nil
}

// GetSandbox returns the sandbox of any team when teamID is "", else only the team's:
// another team's sandbox is not found.
func (s *Store) GetSandbox(ctx context.Context, teamID, id string) (*domain.Sandbox, error) {
	q := `SELECT ` + sandboxColumns + ` FROM sandboxes WHERE id = $1`
	args := []any{id}
	if teamID != "" {
		q += ` AND team_id = $2`
		args = append(args, teamID)
	}
	sb, err := scanSandbox(s.pool.QueryRow(ctx, q, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domain.NotFound("sandbox", id)
	}
	if err != nil {
		return nil, fmt.Errorf("getting sandbox %s: %w", id, classify(err))
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
	n, err := s.exec(ctx, `UPDATE sandboxes SET state = $1, end_reason = $2, runtime_name = $3, runtime_handle = $4,
		address = $5, slot = $6, access_token = $7, started_at = $8, ends_at = $9, stopped_at = $10
		WHERE id = $11`, args...)
	if err != nil {
		return fmt.Errorf("updating sandbox %s: %w", sb.ID, classify(err))
	}
	if n == 0 {
		return domain.NotFound("sandbox", sb.ID)
	}
	return nil
}

// args collects query arguments and hands out their $n placeholders.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
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
	var a args
	if f.TeamID != "" {
		where = append(where, `team_id = `+a.add(f.TeamID))
	}
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, st := range f.States {
			states[i] = string(st)
		}
		where = append(where, `state = ANY(`+a.add(states)+`)`)
	}
	if len(f.Metadata) > 0 {
		b, err := json.Marshal(f.Metadata)
		if err != nil {
			return nil, "", fmt.Errorf("listing sandboxes: %w", err)
		}
		// Containment of a {"k":"v",...} object: every pair present with an equal
		// string value (and a GIN index to find them).
		where = append(where, `metadata @> `+a.add(b)+`::jsonb`)
	}
	if f.TemplateID != "" {
		where = append(where, `template_id = `+a.add(f.TemplateID))
	}
	if !f.CreatedAfter.IsZero() {
		where = append(where, `created_at >= `+a.add(clamp(f.CreatedAfter)))
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
		created := clamp(time.UnixMicro(c.created))
		where = append(where, `(created_at, id) `+cmp+` (`+a.add(created)+`, `+a.add(c.id)+`)`)
	}

	q := `SELECT ` + sandboxColumns + ` FROM sandboxes`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY created_at ` + order + `, id ` + order + ` LIMIT ` + a.add(limit+1) // one extra row tells whether there is a next page

	rows, err := s.pool.Query(ctx, q, a...)
	if err != nil {
		return nil, "", fmt.Errorf("listing sandboxes: %w", classify(err))
	}
	items, err := collect(rows, scanSandbox)
	if err != nil {
		return nil, "", fmt.Errorf("listing sandboxes: %w", classify(err))
	}
	if len(items) <= limit {
		return items, "", nil
	}
	items = items[:limit]
	last := items[limit-1]
	var e encoder
	next := cursor{created: e.sortTime("created_at", last.CreatedAt).UnixMicro(), id: last.ID}
	return items, next.String(), e.err
}

// UsedSlots returns the slots of all sandboxes that are not in a terminal state, in
// ascending order.
func (s *Store) UsedSlots(ctx context.Context) ([]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT slot FROM sandboxes WHERE state <> ALL($1) ORDER BY slot`,
		[]string{string(domain.StateStopped), string(domain.StateError)})
	if err != nil {
		return nil, fmt.Errorf("listing used slots: %w", err)
	}
	slots, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("listing used slots: %w", err)
	}
	if slots == nil {
		slots = []int{}
	}
	return slots, nil
}
