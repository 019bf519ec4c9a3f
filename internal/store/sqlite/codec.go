package sqlite

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Times are stored as unix nanoseconds. That covers the years 1678 to 2262; the
// smallest int64 is reserved to stand for the zero time in NOT NULL columns.
var (
	minTime = time.Unix(0, math.MinInt64+1).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

const zeroSortNanos = math.MinInt64

// encoder turns domain values into column values, remembering the first error so that
// call sites can encode a whole row and check once.
type encoder struct{ err error }

func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

func (e *encoder) nanos(field string, t time.Time) int64 {
	if t.Before(minTime) || t.After(maxTime) {
		e.fail(domain.Invalid(field, "time %s is outside the storable range (years 1678 to 2262)", t.Format(time.RFC3339)))
		return 0
	}
	return t.UnixNano()
}

// time encodes t for a nullable column: the zero time is NULL.
func (e *encoder) time(field string, t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: e.nanos(field, t), Valid: true}
}

// sortTime encodes t for a NOT NULL column that orders rows: the zero time sorts first.
func (e *encoder) sortTime(field string, t time.Time) int64 {
	if t.IsZero() {
		return zeroSortNanos
	}
	return e.nanos(field, t)
}

// strMap encodes a map as JSON text; a nil map is NULL so that nil and empty differ.
func (e *encoder) strMap(field string, m map[string]string) sql.NullString {
	if m == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: e.json(field, m), Valid: true}
}

func (e *encoder) json(field string, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		e.fail(fmt.Errorf("encoding %s: %w", field, err))
	}
	return string(b)
}

// blob keeps nil and empty apart: nil is NULL, empty is a zero-length blob.
func blob(b []byte) any {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// decodeBlob undoes blob. The driver reads a zero-length blob as a nil []byte, so the
// column is scanned into an any, where SQL NULL is a nil interface instead.
func decodeBlob(v any) ([]byte, error) {
	switch b := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		if b == nil {
			return []byte{}, nil
		}
		return b, nil
	case string:
		return []byte(b), nil
	default:
		return nil, fmt.Errorf("unexpected column type %T", v)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func decodeTime(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

func decodeSortTime(n int64) time.Time {
	if n == zeroSortNanos {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func decodeMap(field string, s sql.NullString) (map[string]string, error) {
	if !s.Valid {
		return nil, nil
	}
	m := map[string]string{}
	if err := json.Unmarshal([]byte(s.String), &m); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", field, err)
	}
	return m, nil
}

// cursor is a position in a newest-first listing: the last item of the previous page.
type cursor struct {
	created int64
	id      string
}

const cursorVersion = "1"

// String encodes the cursor opaquely; clients must pass it back unchanged.
func (c cursor) String() string {
	raw := cursorVersion + "|" + strconv.FormatInt(c.created, 10) + "|" + c.id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func parseCursor(s string) (cursor, error) {
	bad := domain.Invalid("cursor", "malformed cursor: pass the 'next' value of the previous page unchanged, or none for the first page")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, bad
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if len(parts) != 3 || parts[0] != cursorVersion || parts[2] == "" {
		return cursor{}, bad
	}
	n, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return cursor{}, bad
	}
	return cursor{created: n, id: parts[2]}, nil
}

// scopes encodes a key's scopes as a JSON list. A nil and an empty list are both NULL
// (and read back as nil): either grants nothing, so nothing is lost.
func (e *encoder) scopes(s []domain.Scope) sql.NullString {
	if len(s) == 0 {
		return sql.NullString{}
	}
	return sql.NullString{String: e.json("scopes", s), Valid: true}
}

func decodeScopes(s sql.NullString) ([]domain.Scope, error) {
	if !s.Valid {
		return nil, nil
	}
	var out []domain.Scope
	if err := json.Unmarshal([]byte(s.String), &out); err != nil {
		return nil, fmt.Errorf("decoding scopes: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// clampNanos encodes a filter bound, clamping times outside the storable range to its
// ends (a bound far in the past or future still selects what it should).
func clampNanos(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return minTime.UnixNano()
	case t.After(maxTime):
		return maxTime.UnixNano()
	}
	return t.UnixNano()
}
