package billing

import (
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func TestPeriod(t *testing.T) {
	est := time.FixedZone("EST", -5*3600)
	tests := []struct {
		name      string
		t         time.Time
		wantStart time.Time
		wantEnd   time.Time
		wantKey   string
	}{
		{"mid-month", time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), "2026-11"},
		{"first instant", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), "2026-11"},
		{"December rolls over to January", time.Date(2026, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
			time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "2026-12"},
		// 2026-11-30 20:00 in New York is already December in UTC.
		{"other zone", time.Date(2026, 11, 30, 20, 0, 0, 0, est),
			time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "2026-12"},
		{"leap February", time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC),
			time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC), "2028-02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end := Period(tt.t)
			if !start.Equal(tt.wantStart) || !end.Equal(tt.wantEnd) || start.Location() != time.UTC {
				t.Errorf("Period = %v, %v; want %v, %v", start, end, tt.wantStart, tt.wantEnd)
			}
			key := PeriodKey(start)
			if key != tt.wantKey {
				t.Errorf("PeriodKey = %q, want %q", key, tt.wantKey)
			}
			ps, pe, err := ParsePeriodKey(key)
			if err != nil || !ps.Equal(start) || !pe.Equal(end) {
				t.Errorf("ParsePeriodKey(%q) = %v, %v, %v", key, ps, pe, err)
			}
		})
	}
}

func TestParsePeriodKeyInvalid(t *testing.T) {
	for _, s := range []string{"", "2026-13", "2026-00", "2026-1", "26-11", "2026-11-01", "2026/11",
		" 2026-11", "2026-11 ", "november"} {
		t.Run(s, func(t *testing.T) {
			_, _, err := ParsePeriodKey(s)
			if !domain.IsKind(err, domain.KindInvalid) || domain.FieldOf(err) != "period" {
				t.Fatalf("error = %v, want invalid period", err)
			}
			if msg := domain.PublicMessage(err); msg == "" || !strings.Contains(msg, "YYYY-MM") {
				t.Errorf("message %q does not say how to write a period", msg)
			}
		})
	}
}
