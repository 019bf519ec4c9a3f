package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/warren-sh/warren/internal/store/sqlstore"
)

// dialect is SQLite's sqlstore.Dialect. Times are INTEGER unix nanoseconds, which cover
// the years 1678 to 2262; the smallest int64 is kept to stand for the zero time in NOT
// NULL columns. JSON is TEXT, read with SQLite's JSON functions.
type dialect struct{}

var _ sqlstore.Dialect = dialect{}

var (
	minTime = time.Unix(0, math.MinInt64+1).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

const zeroNanos = math.MinInt64

// Rebind keeps the ? placeholders: they are SQLite's own.
func (dialect) Rebind(query string) string { return query }

func (dialect) TimeValue(t time.Time) (any, bool) {
	if t.Before(minTime) || t.After(maxTime) {
		return nil, false
	}
	return t.UnixNano(), true
}

func (dialect) TimeRange() string { return "years 1678 to 2262" }

func (dialect) ZeroTime() any { return int64(zeroNanos) }

func (dialect) ClampTime(t time.Time) any {
	switch {
	case t.Before(minTime):
		return minTime.UnixNano()
	case t.After(maxTime):
		return maxTime.UnixNano()
	}
	return t.UnixNano()
}

func (dialect) ScanTime(v any) (time.Time, error) {
	n, ok := v.(int64)
	if !ok {
		return time.Time{}, fmt.Errorf("time column holds a %T, want unix nanoseconds", v)
	}
	if n == zeroNanos {
		return time.Time{}, nil
	}
	return time.Unix(0, n).UTC(), nil
}

// CursorVersion "1": a cursor carries the unix nanoseconds of created_at.
func (dialect) CursorVersion() string { return "1" }

func (dialect) CursorKey(t time.Time) int64 {
	if t.IsZero() {
		return zeroNanos
	}
	return t.UnixNano()
}

func (dialect) CursorValue(key int64) any { return key }

func (dialect) JSONNumber(column, key string) string {
	return `json_extract(` + column + `, '$.` + key + `')`
}

// JSONContains tests each pair with json_each: a member of that key whose value is that
// string (not, say, the number that the string spells).
func (dialect) JSONContains(column string, m map[string]string) (string, []any) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a stable statement text, which the driver can reuse
	conds := make([]string, len(keys))
	args := make([]any, 0, 2*len(keys))
	for i, k := range keys {
		conds[i] = `EXISTS (SELECT 1 FROM json_each(` + column + `) AS m
			WHERE m.key = ? AND m.type = 'text' AND m.value = ?)`
		args = append(args, k, m[k])
	}
	return strings.Join(conds, ` AND `), args
}

// LockTeam has nothing to do: every write transaction begins IMMEDIATE on the one writer
// connection, so it already holds SQLite's write lock, against this process and every
// other, until it ends.
func (dialect) LockTeam(context.Context, sqlstore.Querier, string) error { return nil }

// sqliteCode returns the extended result code of a driver error, or 0.
func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

func (dialect) IsUniqueViolation(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

func (dialect) IsForeignKeyViolation(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// Classify has nothing to classify: SQLite stores any text it is given.
func (dialect) Classify(err error) error { return err }
