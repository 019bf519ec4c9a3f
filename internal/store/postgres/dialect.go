package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/sqlstore"
)

// dialect is PostgreSQL's sqlstore.Dialect. Times are TIMESTAMPTZ, which keeps
// microseconds (pgx truncates the rest). Storable times run from one microsecond after
// the zero time, which NOT NULL ordering columns use to stand for it, to the end of year
// 9999. JSON is JSONB.
type dialect struct{}

var _ sqlstore.Dialect = dialect{}

var (
	zeroSort = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	minTime  = zeroSort.Add(time.Microsecond)
	maxTime  = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

func (dialect) Rebind(query string) string { return sqlstore.DollarPlaceholders(query) }

func (dialect) TimeValue(t time.Time) (any, bool) {
	if t.Before(minTime) || t.After(maxTime) {
		return nil, false
	}
	return t, true
}

func (dialect) TimeRange() string { return "years 1 to 9999" }

func (dialect) ZeroTime() any { return zeroSort }

func (dialect) ClampTime(t time.Time) any { return clamp(t) }

func clamp(t time.Time) time.Time {
	switch {
	case t.Before(zeroSort):
		return zeroSort
	case t.After(maxTime):
		return maxTime
	}
	return t
}

func (dialect) ScanTime(v any) (time.Time, error) {
	t, ok := v.(time.Time)
	if !ok {
		return time.Time{}, fmt.Errorf("time column holds a %T, want a timestamp", v)
	}
	if t.Equal(zeroSort) {
		return time.Time{}, nil
	}
	return t.UTC(), nil
}

// CursorVersion "p1": a cursor carries the unix microseconds of created_at.
func (dialect) CursorVersion() string { return "p1" }

func (dialect) CursorKey(t time.Time) int64 {
	if t.IsZero() {
		return zeroSort.UnixMicro()
	}
	return t.UnixMicro()
}

func (dialect) CursorValue(key int64) any { return clamp(time.UnixMicro(key)) }

func (dialect) JSONNumber(column, key string) string {
	return `(` + column + `->>'` + key + `')::numeric`
}

// JSONContains is JSONB containment of a {"k":"v",...} object: every pair present with
// an equal string value (and a GIN index to find them).
func (dialect) JSONContains(column string, m map[string]string) (string, []any) {
	b, _ := json.Marshal(m) // a map of strings always encodes
	return column + ` @> ?::jsonb`, []any{string(b)}
}

// LockTeam locks the team's row FOR NO KEY UPDATE, which serializes quota checks of the
// team across every server but leaves inserts that merely reference the team (keys,
// plain CreateSandbox) unblocked.
func (dialect) LockTeam(ctx context.Context, tx sqlstore.Querier, teamID string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM teams WHERE id = $1 FOR NO KEY UPDATE`, teamID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.NotFound("team", teamID)
	}
	if err != nil {
		return fmt.Errorf("locking team %s: %w", teamID, classify(err))
	}
	return nil
}

// PostgreSQL error codes the store classifies.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeBadEncoding         = "22021" // character_not_in_repertoire: NUL or invalid UTF-8 in text
	codeBadUnicodeEscape    = "22P05" // untranslatable_character: \u0000 in JSONB
)

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func (dialect) IsUniqueViolation(err error) bool     { return pgCode(err) == codeUniqueViolation }
func (dialect) IsForeignKeyViolation(err error) bool { return pgCode(err) == codeForeignKeyViolation }

// Classify turns the errors PostgreSQL raises for text it cannot store (which SQLite
// would have stored) into KindInvalid, and returns any other error unchanged.
func (dialect) Classify(err error) error { return classify(err) }

func classify(err error) error {
	switch pgCode(err) {
	case codeBadEncoding, codeBadUnicodeEscape:
		return &domain.Error{Kind: domain.KindInvalid,
			Message: "text must be valid UTF-8 without NUL characters", Err: err}
	}
	return err
}
