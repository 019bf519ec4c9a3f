package sqlstore

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Column conventions, the same in both dialects: a nullable time column holds NULL for
// the zero time; a NOT NULL time column that orders rows holds the dialect's ZeroTime;
// maps, lists and limits are JSON (TEXT or JSONB), a nil map NULL and an empty one '{}';
// a nil RuntimeHandle is NULL and an empty one a zero-length blob.

// encoder turns domain values into column values, remembering the first error so that
// call sites can encode a whole row and check once.
type encoder struct {
	d   Dialect
	err error
}

func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// at encodes t for a NOT NULL column; the zero time is out of range there.
func (e *encoder) at(field string, t time.Time) any {
	v, ok := e.d.TimeValue(t)
	if !ok {
		e.fail(domain.Invalid(field, "time %s is outside the storable range (%s)", t.Format(time.RFC3339), e.d.TimeRange()))
		return e.d.ZeroTime()
	}
	return v
}

// time encodes t for a nullable column: the zero time is NULL.
func (e *encoder) time(field string, t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return e.at(field, t)
}

// sortTime encodes t for a NOT NULL column that orders rows: the zero time sorts first.
func (e *encoder) sortTime(field string, t time.Time) any {
	if t.IsZero() {
		return e.d.ZeroTime()
	}
	return e.at(field, t)
}

// json encodes v as JSON text. Text, not bytes: SQLite would store bytes as a BLOB,
// and PostgreSQL takes text for JSONB as well.
func (e *encoder) json(field string, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		e.fail(fmt.Errorf("encoding %s: %w", field, err))
	}
	return string(b)
}

// strMap encodes a map as JSON; a nil map is NULL so that nil and empty differ.
func (e *encoder) strMap(field string, m map[string]string) any {
	if m == nil {
		return nil
	}
	return e.json(field, m)
}

// scopes encodes a key's scopes as a JSON list. A nil and an empty list are both NULL
// (and read back as nil): either grants nothing, so nothing is lost.
func (e *encoder) scopes(s []domain.Scope) any {
	if len(s) == 0 {
		return nil
	}
	return e.json("scopes", s)
}

// names encodes a list of names as JSON. A nil and an empty list are both NULL (and
// read back as nil).
func (e *encoder) names(field string, names []string) any {
	if len(names) == 0 {
		return nil
	}
	return e.json(field, names)
}

// blob keeps nil and empty apart: nil is NULL, empty is a zero-length blob.
func blob(b []byte) any {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// The scanners below are sql.Scanners that decode a column straight into a domain
// field, so that scan functions need no temporaries.

// timeDest scans a time column: NULL and the dialect's ZeroTime are the zero time.
type timeDest struct {
	d Dialect
	p *time.Time
}

func scanTime(d Dialect, p *time.Time) timeDest { return timeDest{d, p} }

func (t timeDest) Scan(v any) error {
	if v == nil {
		*t.p = time.Time{}
		return nil
	}
	tt, err := t.d.ScanTime(v)
	*t.p = tt
	return err
}

// jsonDest scans a JSON column into the value p points to; NULL is T's zero value (a
// nil map or slice), so that nil and empty maps stay apart.
type jsonDest[T any] struct{ p *T }

func scanJSON[T any](p *T) jsonDest[T] { return jsonDest[T]{p} }

func (j jsonDest[T]) Scan(v any) error {
	var zero T
	*j.p = zero // json.Unmarshal would merge into what is there
	var b []byte
	switch v := v.(type) {
	case nil:
		return nil
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		return fmt.Errorf("unexpected JSON column type %T", v)
	}
	return json.Unmarshal(b, j.p)
}

// blobDest scans a nullable blob: NULL is nil, a zero-length blob a non-nil empty
// slice (SQLite's driver hands that over as a nil []byte, which is not a NULL).
type blobDest struct{ p *[]byte }

func scanBlob(p *[]byte) blobDest { return blobDest{p} }

func (b blobDest) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*b.p = nil
	case []byte:
		*b.p = append([]byte{}, v...) // the driver may reuse v
	case string:
		*b.p = []byte(v)
	default:
		return fmt.Errorf("unexpected blob column type %T", v)
	}
	return nil
}

// cursor is a position in a listing: the last item of the previous page, by its
// creation time as the dialect's CursorKey and its id.
type cursor struct {
	created int64
	id      string
}

// encode encodes the cursor opaquely, tagged with the dialect's version; clients must pass it back unchanged.
func (c cursor) encode(version string) string {
	raw := version + "|" + strconv.FormatInt(c.created, 10) + "|" + c.id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func parseCursor(version, s string) (cursor, error) {
	bad := domain.Invalid("cursor", "malformed cursor: pass the 'next' value of the previous page unchanged, or none for the first page")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, bad
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if len(parts) != 3 || parts[0] != version || parts[2] == "" {
		return cursor{}, bad
	}
	n, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return cursor{}, bad
	}
	return cursor{created: n, id: parts[2]}, nil
}

// encodePorts stores a port list as "p1,p2" (” for none), in a TEXT column of both
// dialects.
func encodePorts(ports []int) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		parts[i] = strconv.Itoa(p)
	}
	return strings.Join(parts, ",")
}

// decodePorts reads encodePorts' form; ” is no ports (nil).
func decodePorts(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var ports []int
	for _, part := range strings.Split(s, ",") {
		p, err := strconv.Atoi(part)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("private_ports: bad port %q", part)
		}
		ports = append(ports, p)
	}
	return ports, nil
}
