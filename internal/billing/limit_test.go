package billing

import (
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func TestSpent(t *testing.T) {
	team := Plan{ID: "team", MonthlyPrice: d("150"), IncludedHours: d("2"),
		PerMinute: d("0.01"), MinimumCharge: d("0.05")}
	tests := []struct {
		name string
		now  time.Time
		want string
	}{
		// November: as in TestComputePlanTypes, 150 + 31.5 min × 0.01 → 150.32.
		{"november", day(15), "150.32"},
		// December: only the Dec 1 row (sb-b, 1 h), within the 2 included hours.
		{"december", dec.Add(time.Hour), "150"},
		// September: no usage, but the package fee is charged.
		{"september", time.Date(2026, 9, 9, 0, 0, 0, 0, time.UTC), "150"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Spent(team, workload(), tt.now)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(d(tt.want)) {
				t.Errorf("Spent = %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := Spent(team, []domain.UsageRow{{Day: day(1), WallMS: -1}}, day(2)); err == nil {
		t.Error("negative usage: no error")
	}
}

func TestExceedsLimit(t *testing.T) {
	tests := []struct {
		limit   string
		total   string
		want    bool
		wantErr bool
	}{
		{"", "1000000", false, false},
		{"  ", "1", false, false},
		{"100", "99.99", false, false},
		{"100", "100", true, false},
		{"100.00", "100.01", true, false},
		{"49.5", "49.49", false, false},
		{"0", "0", true, false},
		{"abc", "0", false, true},
		{"1,000", "0", false, true},
		{"-5", "0", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.limit+"/"+tt.total, func(t *testing.T) {
			got, err := ExceedsLimit(tt.limit, d(tt.total))
			if tt.wantErr {
				if !domain.IsKind(err, domain.KindInvalid) || domain.FieldOf(err) != "spend_limit" {
					t.Fatalf("error = %v, want invalid spend_limit", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ExceedsLimit = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
