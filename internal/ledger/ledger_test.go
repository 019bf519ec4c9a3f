package ledger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/warren-sh/warren/internal/billing"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/ledger"
	"github.com/warren-sh/warren/internal/store/sqlite"
)

// now is the fixed clock of every test unless it says otherwise: mid-March 2026, so
// the current billing period is [2026-03-01, 2026-04-01).
var now = ts("2026-03-15T12:00:00Z")

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("closing store: %v", err)
		}
	})
	return st
}

// newLedger returns a ledger on st and cat whose clock reads *clock.
func newLedger(t *testing.T, st *sqlite.Store, cat *billing.Catalog, clock *time.Time) *ledger.Service {
	t.Helper()
	l, err := ledger.New(st, cat, func() time.Time { return *clock }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func createTeam(t *testing.T, st *sqlite.Store, team domain.Team) *domain.Team {
	t.Helper()
	if team.Name == "" {
		team.Name = team.ID
	}
	if err := st.CreateTeam(context.Background(), &team); err != nil {
		t.Fatal(err)
	}
	return &team
}

// record books each delta through the store, with a meter for its sandbox as metering
// does.
func record(t *testing.T, st *sqlite.Store, deltas ...domain.UsageDelta) {
	t.Helper()
	for _, d := range deltas {
		m := &domain.Meter{SandboxID: d.SandboxID, TeamID: d.TeamID, StartedAt: d.Day, SampledAt: d.Day.Add(time.Hour)}
		if err := st.RecordUsage(context.Background(), m, []domain.UsageDelta{d}); err != nil {
			t.Fatal(err)
		}
	}
}

// scaled is usage whose every quantity is a distinct multiple of n, so that a sum of
// scaled rows is scaled(sum of the n's) and a wrong sum shows which rows went in.
func scaled(n int64) domain.UsageRow {
	return domain.UsageRow{WallMS: n, CPUMicros: 2 * n, MemMBSeconds: 3 * n, DiskMBSeconds: 4 * n,
		NetRxBytes: 5 * n, NetTxBytes: 6 * n}
}

func delta(team, sandbox, template, d string, n int64) domain.UsageDelta {
	u := scaled(n)
	return domain.UsageDelta{SandboxID: sandbox, TeamID: team, TemplateID: template, Day: day(d),
		WallMS: u.WallMS, CPUMicros: u.CPUMicros, MemMBSeconds: u.MemMBSeconds, DiskMBSeconds: u.DiskMBSeconds,
		NetRxBytes: u.NetRxBytes, NetTxBytes: u.NetTxBytes}
}

// label returns scaled(n) labelled as a report row.
func label(n int64, sandbox, template, d string) domain.UsageRow {
	r := scaled(n)
	r.SandboxID, r.TemplateID = sandbox, template
	if d != "" {
		r.Day = day(d)
	}
	return r
}

func rowString(r domain.UsageRow) string {
	d := ""
	if !r.Day.IsZero() {
		d = r.Day.Format(time.RFC3339)
	}
	return fmt.Sprintf("{sandbox=%q team=%q template=%q day=%s wall=%d cpu=%d mem=%d disk=%d rx=%d tx=%d}",
		r.SandboxID, r.TeamID, r.TemplateID, d, r.WallMS, r.CPUMicros, r.MemMBSeconds, r.DiskMBSeconds,
		r.NetRxBytes, r.NetTxBytes)
}

func rowStrings(rows []domain.UsageRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = rowString(r)
	}
	return out
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// reader is a principal of team that may read usage.
func reader(team string) domain.Principal {
	return domain.Principal{TeamID: team, Scopes: []domain.Scope{domain.ScopeUsageRead}}
}

// usageFixture books usage of two teams. Each row's quantities are scaled(n), n a
// distinct power of ten, so every expected sum below is a sum of n's:
//
//	team ta: sb-a1 (py)   2026-03-01 n=1, 2026-03-02 n=10, 2026-02-28 n=10000
//	         sb-a2 (node) 2026-03-01 n=100, 2026-04-01 n=100000
//	         sb-a3 (py)   2026-03-02 n=1000
//	team tb: sb-b1 (py)   2026-03-01 n=1000000
func usageFixture(t *testing.T) *sqlite.Store {
	st := openStore(t)
	createTeam(t, st, domain.Team{ID: "ta", CreatedAt: ts("2025-06-01T00:00:00Z")})
	createTeam(t, st, domain.Team{ID: "tb", CreatedAt: ts("2025-06-01T00:00:00Z")})
	record(t, st,
		delta("ta", "sb-a1", "py", "2026-03-01", 1),
		delta("ta", "sb-a1", "py", "2026-03-02", 10),
		delta("ta", "sb-a1", "py", "2026-02-28", 10000),
		delta("ta", "sb-a2", "node", "2026-03-01", 100),
		delta("ta", "sb-a2", "node", "2026-04-01", 100000),
		delta("ta", "sb-a3", "py", "2026-03-02", 1000),
		delta("tb", "sb-b1", "py", "2026-03-01", 1000000),
	)
	return st
}

func TestNew(t *testing.T) {
	st := openStore(t)
	if _, err := ledger.New(nil, billing.DefaultCatalog(), nil, nil); err == nil {
		t.Error("New(nil store): no error")
	}
	if _, err := ledger.New(st, nil, nil, nil); err == nil {
		t.Error("New(nil catalog): no error")
	}
	// A nil clock is the wall clock: the default range is the real current period.
	l, err := ledger.New(st, billing.DefaultCatalog(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := l.Usage(context.Background(), reader("ta"), domain.UsageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if start, _ := billing.Period(time.Now()); !rep.From.Equal(start) {
		t.Errorf("nil clock: report from %s, want this month %s", rep.From, start)
	}
}

func TestUsage(t *testing.T) {
	eet := time.FixedZone("EET", 2*3600)
	st := usageFixture(t)
	clock := now
	l := newLedger(t, st, billing.DefaultCatalog(), &clock)
	tests := []struct {
		name      string
		p         domain.Principal
		q         domain.UsageQuery
		wantFrom  string
		wantTo    string
		wantGroup string
		wantRows  []domain.UsageRow
		wantTotal int64 // n of the total
	}{
		// Default range: the March period; 2026-02-28 and 2026-04-01 are outside.
		// By day: 03-01 = 1+100, 03-02 = 10+1000; total 1111.
		{name: "default range and grouping", p: reader("ta"),
			wantFrom: "2026-03-01T00:00:00Z", wantTo: "2026-04-01T00:00:00Z", wantGroup: "day",
			wantRows:  []domain.UsageRow{label(101, "", "", "2026-03-01"), label(1010, "", "", "2026-03-02")},
			wantTotal: 1111},
		{name: "group by day", p: reader("ta"), q: domain.UsageQuery{GroupBy: "day"},
			wantFrom: "2026-03-01T00:00:00Z", wantTo: "2026-04-01T00:00:00Z", wantGroup: "day",
			wantRows:  []domain.UsageRow{label(101, "", "", "2026-03-01"), label(1010, "", "", "2026-03-02")},
			wantTotal: 1111},
		// By sandbox, ordered by template then sandbox: node/sb-a2 = 100,
		// py/sb-a1 = 1+10, py/sb-a3 = 1000.
		{name: "group by sandbox", p: reader("ta"), q: domain.UsageQuery{GroupBy: "sandbox"},
			wantFrom: "2026-03-01T00:00:00Z", wantTo: "2026-04-01T00:00:00Z", wantGroup: "sandbox",
			wantRows: []domain.UsageRow{label(100, "sb-a2", "node", ""), label(11, "sb-a1", "py", ""),
				label(1000, "sb-a3", "py", "")},
			wantTotal: 1111},
		// By template: node = 100, py = 1+10+1000.
		{name: "group by template", p: reader("ta"), q: domain.UsageQuery{GroupBy: "template"},
			wantFrom: "2026-03-01T00:00:00Z", wantTo: "2026-04-01T00:00:00Z", wantGroup: "template",
			wantRows:  []domain.UsageRow{label(100, "", "node", ""), label(1011, "", "py", "")},
			wantTotal: 1111},
		// Series: 03-01 node = 100 (sb-a2), py = 1 (sb-a1); 03-02 py = 10 + 1000.
		{name: "group by day and template", p: reader("ta"), q: domain.UsageQuery{GroupBy: "day,template"},
			wantFrom: "2026-03-01T00:00:00Z", wantTo: "2026-04-01T00:00:00Z", wantGroup: "day,template",
			wantRows: []domain.UsageRow{label(100, "", "node", "2026-03-01"), label(1, "", "py", "2026-03-01"),
				label(1010, "", "py", "2026-03-02")},
			wantTotal: 1111},
		{name: "group by day and sandbox", p: reader("ta"), q: domain.UsageQuery{GroupBy: "day,sandbox"},
			wantFrom: "2026-03-01T00:00:00Z", wantTo: "2026-04-01T00:00:00Z", wantGroup: "day,sandbox",
			wantRows: []domain.UsageRow{label(100, "sb-a2", "node", "2026-03-01"), label(1, "sb-a1", "py", "2026-03-01"),
				label(10, "sb-a1", "py", "2026-03-02"), label(1000, "sb-a3", "py", "2026-03-02")},
			wantTotal: 1111},
		{name: "group none", p: reader("ta"), q: domain.UsageQuery{GroupBy: "none"},
			wantFrom: "2026-03-01T00:00:00Z", wantTo: "2026-04-01T00:00:00Z", wantGroup: "none",
			wantTotal: 1111},
		// sb-a1 alone: 03-01 = 1, 03-02 = 10.
		{name: "sandbox filter", p: reader("ta"), q: domain.UsageQuery{SandboxID: "sb-a1"},
			wantFrom: "2026-03-01T00:00:00Z", wantTo: "2026-04-01T00:00:00Z", wantGroup: "day",
			wantRows:  []domain.UsageRow{label(1, "", "", "2026-03-01"), label(10, "", "", "2026-03-02")},
			wantTotal: 11},
		{name: "sandbox filter by sandbox", p: reader("ta"), q: domain.UsageQuery{SandboxID: "sb-a1", GroupBy: "sandbox"},
			wantFrom: "2026-03-01T00:00:00Z", wantTo: "2026-04-01T00:00:00Z", wantGroup: "sandbox",
			wantRows: []domain.UsageRow{label(11, "sb-a1", "py", "")}, wantTotal: 11},
		// Another team's sandbox is invisible, even by id.
		{name: "other team's sandbox", p: reader("ta"), q: domain.UsageQuery{SandboxID: "sb-b1"},
			wantFrom: "2026-03-01T00:00:00Z", wantTo: "2026-04-01T00:00:00Z", wantGroup: "day"},
		// Team tb sees only its own 1000000.
		{name: "other team", p: reader("tb"), q: domain.UsageQuery{GroupBy: "sandbox"},
			wantFrom: "2026-03-01T00:00:00Z", wantTo: "2026-04-01T00:00:00Z", wantGroup: "sandbox",
			wantRows: []domain.UsageRow{label(1000000, "sb-b1", "py", "")}, wantTotal: 1000000},
		{name: "team without usage", p: reader("tc"),
			wantFrom: "2026-03-01T00:00:00Z", wantTo: "2026-04-01T00:00:00Z", wantGroup: "day"},
		// From rounds down to 02-28, To up to 03-02: 02-28 = 10000, 03-01 = 101.
		{name: "rounding to whole days", p: reader("ta"),
			q:        domain.UsageQuery{From: ts("2026-02-28T23:59:59Z"), To: ts("2026-03-01T00:00:01Z")},
			wantFrom: "2026-02-28T00:00:00Z", wantTo: "2026-03-02T00:00:00Z", wantGroup: "day",
			wantRows:  []domain.UsageRow{label(10000, "", "", "2026-02-28"), label(101, "", "", "2026-03-01")},
			wantTotal: 10101},
		// To is exclusive: midnight 04-01 leaves the 04-01 bucket out ...
		{name: "to at midnight is exclusive", p: reader("ta"),
			q:        domain.UsageQuery{From: day("2026-03-02"), To: day("2026-04-01"), GroupBy: "none"},
			wantFrom: "2026-03-02T00:00:00Z", wantTo: "2026-04-01T00:00:00Z", wantGroup: "none",
			wantTotal: 1010},
		// ... and one nanosecond past it takes the whole day: 1010 + 100000.
		{name: "to just past midnight", p: reader("ta"),
			q:        domain.UsageQuery{From: day("2026-03-02"), To: ts("2026-04-01T00:00:00.000000001Z"), GroupBy: "none"},
			wantFrom: "2026-03-02T00:00:00Z", wantTo: "2026-04-02T00:00:00Z", wantGroup: "none",
			wantTotal: 101010},
		// 01:00 at +02:00 is 23:00 UTC the day before: days are UTC days, so the
		// range is [03-01, 03-02) and holds 03-01's 101.
		{name: "rounding in UTC", p: reader("ta"),
			q: domain.UsageQuery{From: time.Date(2026, 3, 2, 1, 0, 0, 0, eet), To: time.Date(2026, 3, 2, 1, 1, 0, 0, eet),
				GroupBy: "none"},
			wantFrom: "2026-03-01T00:00:00Z", wantTo: "2026-03-02T00:00:00Z", wantGroup: "none",
			wantTotal: 101},
		// Only From: To is now (03-15 12:00), rounded up to 03-16; 03-02 = 1010.
		{name: "from only", p: reader("ta"), q: domain.UsageQuery{From: day("2026-03-02"), GroupBy: "none"},
			wantFrom: "2026-03-02T00:00:00Z", wantTo: "2026-03-16T00:00:00Z", wantGroup: "none",
			wantTotal: 1010},
		// Only To: From is a month earlier (02-02); 02-28 = 10000, 03-01 = 101.
		{name: "to only", p: reader("ta"), q: domain.UsageQuery{To: day("2026-03-02"), GroupBy: "none"},
			wantFrom: "2026-02-02T00:00:00Z", wantTo: "2026-03-02T00:00:00Z", wantGroup: "none",
			wantTotal: 10101},
		// 366 days, the most allowed: 2025-01-01 to 2026-01-02 (2025 has 365 days).
		{name: "366 days", p: reader("ta"), q: domain.UsageQuery{From: day("2025-01-01"), To: day("2026-01-02")},
			wantFrom: "2025-01-01T00:00:00Z", wantTo: "2026-01-02T00:00:00Z", wantGroup: "day"},
		// A platform admin reads its own team's usage (scopes are not needed).
		{name: "platform admin", p: domain.Principal{TeamID: "tb", Admin: true}, q: domain.UsageQuery{GroupBy: "none"},
			wantFrom: "2026-03-01T00:00:00Z", wantTo: "2026-04-01T00:00:00Z", wantGroup: "none",
			wantTotal: 1000000},
		{name: "admin scope", p: domain.Principal{TeamID: "tb", Scopes: []domain.Scope{domain.ScopeAdmin}},
			q:        domain.UsageQuery{GroupBy: "none"},
			wantFrom: "2026-03-01T00:00:00Z", wantTo: "2026-04-01T00:00:00Z", wantGroup: "none",
			wantTotal: 1000000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := l.Usage(context.Background(), tt.p, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.From.Equal(ts(tt.wantFrom)) || !rep.To.Equal(ts(tt.wantTo)) {
				t.Errorf("range = [%s, %s), want [%s, %s)", rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339),
					tt.wantFrom, tt.wantTo)
			}
			if rep.GroupBy != tt.wantGroup {
				t.Errorf("GroupBy = %q, want %q", rep.GroupBy, tt.wantGroup)
			}
			if got, want := rowStrings(rep.Rows), rowStrings(tt.wantRows); !slices.Equal(got, want) {
				t.Errorf("rows:\n got %q\nwant %q", got, want)
			}
			if got, want := rowString(rep.Total), rowString(scaled(tt.wantTotal)); got != want {
				t.Errorf("total = %s, want %s", got, want)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	st := usageFixture(t)
	clock := now
	l := newLedger(t, st, billing.DefaultCatalog(), &clock)
	tests := []struct {
		name      string
		p         domain.Principal
		q         domain.UsageQuery
		wantKind  domain.Kind
		wantField string
	}{
		{name: "no scopes", p: domain.Principal{TeamID: "ta"}, wantKind: domain.KindForbidden},
		{name: "other scopes", p: domain.Principal{TeamID: "ta", Scopes: []domain.Scope{
			domain.ScopeSandboxesRead, domain.ScopeSandboxesWrite, domain.ScopeTeamRead, domain.ScopeAuditRead}},
			wantKind: domain.KindForbidden},
		{name: "to equals from", p: reader("ta"), q: domain.UsageQuery{From: day("2026-03-02"), To: day("2026-03-02")},
			wantKind: domain.KindInvalid, wantField: "to"},
		{name: "to before from", p: reader("ta"), q: domain.UsageQuery{From: day("2026-03-03"), To: day("2026-03-02")},
			wantKind: domain.KindInvalid, wantField: "to"},
		// Rounding must not turn a reversed range within one day into a valid one.
		{name: "to before from in the same day", p: reader("ta"),
			q:        domain.UsageQuery{From: ts("2026-03-02T10:00:00Z"), To: ts("2026-03-02T09:00:00Z")},
			wantKind: domain.KindInvalid, wantField: "to"},
		{name: "to equals from in the day", p: reader("ta"),
			q:        domain.UsageQuery{From: ts("2026-03-02T10:00:00Z"), To: ts("2026-03-02T10:00:00Z")},
			wantKind: domain.KindInvalid, wantField: "to"},
		// From alone in the future: To defaults to now, before it.
		{name: "from after now", p: reader("ta"), q: domain.UsageQuery{From: day("2026-03-20")},
			wantKind: domain.KindInvalid, wantField: "to"},
		// 367 days: 2025-01-01 to 2026-01-03.
		{name: "367 days", p: reader("ta"), q: domain.UsageQuery{From: day("2025-01-01"), To: day("2026-01-03")},
			wantKind: domain.KindInvalid, wantField: "from"},
		// 366 days and a second: To rounds up to 2026-01-03, 367 days.
		{name: "367 days after rounding", p: reader("ta"),
			q:        domain.UsageQuery{From: day("2025-01-01"), To: ts("2026-01-02T00:00:01Z")},
			wantKind: domain.KindInvalid, wantField: "from"},
		{name: "unknown group_by", p: reader("ta"), q: domain.UsageQuery{GroupBy: "week"},
			wantKind: domain.KindInvalid, wantField: "group_by"},
		{name: "group_by is case sensitive", p: reader("ta"), q: domain.UsageQuery{GroupBy: "Day"},
			wantKind: domain.KindInvalid, wantField: "group_by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := l.Usage(context.Background(), tt.p, tt.q)
			if !domain.IsKind(err, tt.wantKind) {
				t.Fatalf("err = %v (kind %s), want kind %s; report %+v", err, domain.KindOf(err), tt.wantKind, rep)
			}
			if got := domain.FieldOf(err); got != tt.wantField {
				t.Errorf("field = %q, want %q", got, tt.wantField)
			}
			if domain.PublicMessage(err) == "" {
				t.Errorf("error %v has no message for the client", err)
			}
		})
	}
}

func TestPlans(t *testing.T) {
	st := openStore(t)
	clock := now
	t.Run("default catalog", func(t *testing.T) {
		got := newLedger(t, st, billing.DefaultCatalog(), &clock).Plans(context.Background())
		want := []domain.PlanInfo{
			{ID: "free", Name: "Free", Currency: "USD", MonthlyPrice: "0", PerMinute: "0", MinimumCharge: "0",
				PerCPUHour: "0", PerGBHour: "0", PerGBMonthDisk: "0", PerGBTraffic: "0", IncludedHours: "0"},
			{ID: "payg", Name: "Pay as you go", Currency: "USD", MonthlyPrice: "0", PerMinute: "0.0012",
				MinimumCharge: "0.01", PerCPUHour: "0", PerGBHour: "0", PerGBMonthDisk: "0", PerGBTraffic: "0",
				IncludedHours: "0", IncludedConcurrency: 20},
			{ID: "resources", Name: "Resources", Currency: "USD", MonthlyPrice: "0", PerMinute: "0",
				MinimumCharge: "0", PerCPUHour: "0.05", PerGBHour: "0.016", PerGBMonthDisk: "0.1",
				PerGBTraffic: "0.09", IncludedHours: "0", IncludedConcurrency: 50},
			{ID: "team", Name: "Team", Currency: "USD", MonthlyPrice: "150", PerMinute: "0.001",
				MinimumCharge: "0", PerCPUHour: "0", PerGBHour: "0", PerGBMonthDisk: "0", PerGBTraffic: "0",
				IncludedHours: "3000", IncludedConcurrency: 100},
		}
		if !slices.Equal(got, want) {
			t.Errorf("Plans:\n got %+v\nwant %+v", got, want)
		}
	})
	t.Run("name and currency default", func(t *testing.T) {
		// A catalog built by hand, not through NewCatalog, still shows a name and a
		// currency.
		cat := &billing.Catalog{Default: "x", Plans: []billing.Plan{
			{ID: "x", PerMinute: dec("0.5")},
			{ID: "y", Name: "Why", Currency: "EUR", MonthlyPrice: dec("9.90")},
		}}
		got := newLedger(t, st, cat, &clock).Plans(context.Background())
		want := []domain.PlanInfo{
			{ID: "x", Name: "x", Currency: "USD", MonthlyPrice: "0", PerMinute: "0.5", MinimumCharge: "0",
				PerCPUHour: "0", PerGBHour: "0", PerGBMonthDisk: "0", PerGBTraffic: "0", IncludedHours: "0"},
			{ID: "y", Name: "Why", Currency: "EUR", MonthlyPrice: "9.9", PerMinute: "0", MinimumCharge: "0",
				PerCPUHour: "0", PerGBHour: "0", PerGBMonthDisk: "0", PerGBTraffic: "0", IncludedHours: "0"},
		}
		if !slices.Equal(got, want) {
			t.Errorf("Plans:\n got %+v\nwant %+v", got, want)
		}
	})
}
