package billing

import (
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// periodKeyLayout formats a billing period's key, "2026-11".
const periodKeyLayout = "2006-01"

// Period returns the billing period that t falls in: the calendar month in UTC, from
// its first midnight (inclusive) to the next month's first midnight (exclusive).
func Period(t time.Time) (start, end time.Time) {
	t = t.UTC()
	start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 1, 0)
}

// PeriodKey returns the key of the billing period starting at start, "YYYY-MM".
func PeriodKey(start time.Time) string { return start.UTC().Format(periodKeyLayout) }

// ParsePeriodKey returns the bounds of the billing period named by a key "YYYY-MM". A
// malformed key is a KindInvalid error on field "period".
func ParsePeriodKey(s string) (start, end time.Time, err error) {
	t, perr := time.Parse(periodKeyLayout, s)
	if perr != nil || PeriodKey(t) != s {
		return time.Time{}, time.Time{}, domain.Invalid("period",
			"period %q is not a billing period; write it as YYYY-MM, for example \"2026-11\"", s)
	}
	start, end = Period(t)
	return start, end, nil
}
