package postgres

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Times are TIMESTAMPTZ, which keeps microseconds (pgx truncates the rest). Storable
// times run from one microsecond after the zero time, which NOT NULL ordering columns
// use to stand for it, to the end of year 9999.
var (
	zeroSort = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	minTime  = zeroSort.Add(time.Microsecond)
	maxTime  = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// encoder turns domain values into column values, remembering the first error so that
// call sites can encode a whole row and check once.
type encoder struct{ err error }

func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// at checks that t is storable and returns it.
func (e *encoder) at(field string, t time.Time) time.Time {
	if t.Before(minTime) || t.After(maxTime) {
		e.fail(domain.Invalid(field, "time %s is outside the storable range (years 1 to 9999)", t.Format(time.RFC3339)))
		return zeroSort
	}
	return t
}

// time encodes t for a nullable column: the zero time is NULL.
func (e *encoder) time(field string, t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return e.at(field, t)
}

// sortTime encodes t for a NOT NULL column that orders rows: the zero time sorts first.
func (e *encoder) sortTime(field string, t time.Time) time.Time {
	if t.IsZero() {
		return zeroSort
	}
	return e.at(field, t)
}

// jsonb encodes v as JSON text for a JSONB column.
func (e *encoder) jsonb(field string, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		e.fail(fmt.Errorf("encoding %s: %w", field, err))
	}
	return b
}

// strMap encodes a map for a JSONB column; a nil map is NULL so that nil and empty
// differ.
func (e *encoder) strMap(field string, m map[string]string) any {
	if m == nil {
		return nil
	}
	return e.jsonb(field, m)
}

// scopes encodes a key's scopes as a JSON list. A nil and an empty list are both NULL
// (and read back as nil): either grants nothing, so nothing is lost.
func (e *encoder) scopes(s []domain.Scope) any {
	if len(s) == 0 {
		return nil
	}
	return e.jsonb("scopes", s)
}

// blob keeps nil and empty apart: nil is NULL, empty is a zero-length BYTEA.
func blob(b []byte) any {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// decodeTime undoes encoder.time: a NULL (nil) is the zero time.
func decodeTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// decodeSortTime undoes encoder.sortTime.
func decodeSortTime(t time.Time) time.Time {
	if t.Equal(zeroSort) {
		return time.Time{}
	}
	return t.UTC()
}

// clamp bounds a filter time to the storable range (a bound far in the past or future
// still selects what it should).
func clamp(t time.Time) time.Time {
	switch {
	case t.Before(zeroSort):
		return zeroSort
	case t.After(maxTime):
		return maxTime
	}
	return t
}

func decodeMap(field string, b []byte) (map[string]string, error) {
	if b == nil {
		return nil, nil
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", field, err)
	}
	return m, nil
}

func decodeScopes(b []byte) ([]domain.Scope, error) {
	if b == nil {
		return nil, nil
	}
	var out []domain.Scope
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decoding scopes: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// cursor is a position in a listing: the last item of the previous page, its creation
// time in unix microseconds.
type cursor struct {
	created int64
	id      string
}

const cursorVersion = "p1"

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
