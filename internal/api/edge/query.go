package edge

import (
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// TimeParam reads a time query parameter: RFC 3339, or a date (YYYY-MM-DD, midnight
// UTC). "" is the zero time; anything else is KindInvalid naming field.
func TimeParam(v, field string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, domain.Invalid(field, "%s %q is not a time: write 2026-11-01 or 2026-11-01T12:00:00Z", field, v)
}
