package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// day returns UTC midnight n days after 2031-05-01.
func day(n int) time.Time { return time.Date(2031, 5, 1+n, 0, 0, 0, 0, time.UTC) }

// delta returns a delta of the sandbox on day d whose quantities are all multiples of k
// (distinct per quantity, so that swapped columns show).
func delta(teamID, sandboxID string, d time.Time, k int64) domain.UsageDelta {
	return domain.UsageDelta{SandboxID: sandboxID, TeamID: teamID, TemplateID: "tpl-" + teamID, Day: d,
		WallMS: k, CPUMicros: 2 * k, MemMBSeconds: 3 * k, DiskMBSeconds: 4 * k, NetRxBytes: 5 * k, NetTxBytes: 6 * k}
}

// usageKey identifies a bucket.
type usageKey struct {
	sandbox string
	day     int64
}

// ledger is the reference: the sums RecordUsage must have booked.
type ledger map[usageKey]domain.UsageRow

func (l ledger) add(d domain.UsageDelta) {
	y, m, dd := d.Day.UTC().Date()
	dayStart := time.Date(y, m, dd, 0, 0, 0, 0, time.UTC)
	k := usageKey{d.SandboxID, dayStart.Unix()}
	r, ok := l[k]
	if !ok {
		r = domain.UsageRow{SandboxID: d.SandboxID, TeamID: d.TeamID, TemplateID: d.TemplateID, Day: dayStart}
	}
	r.Add(domain.UsageRow{WallMS: d.WallMS, CPUMicros: d.CPUMicros, MemMBSeconds: d.MemMBSeconds,
		DiskMBSeconds: d.DiskMBSeconds, NetRxBytes: d.NetRxBytes, NetTxBytes: d.NetTxBytes})
	l[k] = r
}

// rows returns the buckets f selects, by day then sandbox id (bytewise).
func (l ledger) rows(f domain.UsageFilter) []domain.UsageRow {
	out := []domain.UsageRow{}
	for _, r := range l {
		if (f.TeamID == domain.AnyTeam || r.TeamID == f.TeamID) && (f.SandboxID == "" || r.SandboxID == f.SandboxID) &&
			(f.From.IsZero() || !r.Day.Before(f.From)) && (f.To.IsZero() || r.Day.Before(f.To)) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b domain.UsageRow) int {
		return cmp.Or(a.Day.Compare(b.Day), cmp.Compare(a.SandboxID, b.SandboxID))
	})
	return out
}

// sameRows compares usage rows, days as instants.
func sameRows(t *testing.T, what string, got, want []domain.UsageRow) {
	t.Helper()
	norm := func(rs []domain.UsageRow) []domain.UsageRow {
		out := slices.Clone(rs)
		for i := range out {
			out[i].Day = normTime(out[i].Day)
		}
		return out
	}
	if g, w := norm(got), norm(want); !slices.Equal(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func testRecordUsage(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "metered")
	l := ledger{}
	record := func(m *domain.Meter, ds ...domain.UsageDelta) {
		t.Helper()
		must(t, "recording usage", s.RecordUsage(ctx, m, ds))
		for _, d := range ds {
			l.add(d)
		}
	}
	// Two sandboxes over three days, several calls per bucket, large values.
	record(nil, delta(team.ID, "sb-1", day(0), 1))
	record(nil, delta(team.ID, "sb-1", day(0), 10), delta(team.ID, "sb-2", day(0), 100))
	record(nil, delta(team.ID, "sb-1", day(1), 1000), delta(team.ID, "sb-1", day(1), 1<<40))
	record(nil) // nothing to book: a no-op
	// A Day that is not midnight is booked on the UTC day it falls in: 01:30 at UTC+2
	// on day 3 is 23:30 UTC on day 2.
	late := day(3).Add(90 * time.Minute).In(time.FixedZone("UTC+2", 2*3600)).Add(-2 * time.Hour)
	record(nil, delta(team.ID, "sb-2", late, 7))
	if got := l.rows(domain.UsageFilter{TeamID: domain.AnyTeam}); len(got) != 4 {
		t.Fatalf("fixture: ledger has %d buckets, want 4", len(got))
	}

	got, err := s.ListUsage(ctx, domain.UsageFilter{TeamID: team.ID})
	must(t, "listing usage", err)
	sameRows(t, "booked usage", got, l.rows(domain.UsageFilter{TeamID: domain.AnyTeam}))
}

func testRecordUsageAtomic(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "atomic")
	m := &domain.Meter{SandboxID: "sb-1", TeamID: team.ID, StartedAt: at(0, 0), SampledAt: at(10, 0), CPUMicros: 5}
	must(t, "recording usage", s.RecordUsage(ctx, m, []domain.UsageDelta{delta(team.ID, "sb-1", day(0), 1)}))

	// A bad delta after a good one: nothing of the call is saved, meter included.
	next := *m
	next.SampledAt, next.CPUMicros = at(20, 0), 50
	bad := delta(team.ID, "sb-1", time.Time{}, 1)
	err := s.RecordUsage(ctx, &next, []domain.UsageDelta{delta(team.ID, "sb-1", day(0), 1000), bad})
	wantKind(t, "a delta without a day", err, domain.KindInvalid)

	got, err := s.GetMeter(ctx, "sb-1")
	must(t, "getting meter", err)
	same(t, "meter after a failed RecordUsage", got, m, normMeter)
	rows, err := s.ListUsage(ctx, domain.UsageFilter{TeamID: team.ID})
	must(t, "listing usage", err)
	l := ledger{}
	l.add(delta(team.ID, "sb-1", day(0), 1))
	sameRows(t, "usage after a failed RecordUsage", rows, l.rows(domain.UsageFilter{TeamID: domain.AnyTeam}))
}

func testMeters(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "meters")
	_, err := s.GetMeter(ctx, "never-sampled")
	wantKind(t, "GetMeter of an unsampled sandbox", err, domain.KindNotFound)
	open, err := s.OpenMeters(ctx)
	must(t, "OpenMeters of an empty store", err)
	if len(open) != 0 {
		t.Fatalf("empty store has %d open meters", len(open))
	}

	ms := []*domain.Meter{
		{SandboxID: "sb-c", TeamID: team.ID, StartedAt: at(0, 1), SampledAt: at(5, 2), CPUMicros: 1 << 50,
			NetRxBytes: 1 << 40, NetTxBytes: 3},
		{SandboxID: "sb-a", TeamID: team.ID, StartedAt: at(1, 0)}, // started, never sampled yet
		{SandboxID: "sb-b", TeamID: team.ID, StartedAt: at(2, 0), SampledAt: at(3, 0), CPUMicros: 9,
			ClosedAt: at(4, 0)},
	}
	for _, m := range ms {
		must(t, "saving meter", s.RecordUsage(ctx, m, nil))
		got, err := s.GetMeter(ctx, m.SandboxID)
		must(t, "getting meter", err)
		same(t, "meter "+m.SandboxID, got, m, normMeter)
	}
	checkOpen := func(what string, want ...*domain.Meter) {
		t.Helper()
		got, err := s.OpenMeters(ctx)
		must(t, "OpenMeters", err)
		if len(got) != len(want) {
			t.Fatalf("OpenMeters %s: %d meters, want %d", what, len(got), len(want))
		}
		for i := range want {
			same(t, fmt.Sprintf("open meter %d %s", i, what), got[i], want[i], normMeter)
		}
	}
	checkOpen("", ms[1], ms[0])

	// A later sample replaces the meter; closing it takes it out of OpenMeters.
	upd := *ms[0]
	upd.SampledAt, upd.CPUMicros, upd.NetRxBytes, upd.NetTxBytes = at(60, 0), upd.CPUMicros+7, upd.NetRxBytes+1, 4
	must(t, "updating meter", s.RecordUsage(ctx, &upd, []domain.UsageDelta{delta(team.ID, "sb-c", day(0), 1)}))
	got, err := s.GetMeter(ctx, "sb-c")
	must(t, "getting updated meter", err)
	same(t, "updated meter", got, &upd, normMeter)
	checkOpen("after an update", ms[1], &upd)

	upd.ClosedAt = at(61, 0)
	must(t, "closing meter", s.RecordUsage(ctx, &upd, nil))
	checkOpen("after closing", ms[1])
	got, err = s.GetMeter(ctx, "sb-c")
	must(t, "getting closed meter", err)
	same(t, "closed meter", got, &upd, normMeter)
}

func testListUsage(t *testing.T, s domain.Store) {
	ctx := t.Context()
	a, b := addTeam(t, s, "a"), addTeam(t, s, "b")
	l := ledger{}
	// Ids that sort differently bytewise than in a natural-language collation.
	sandboxes := []struct {
		team *domain.Team
		id   string
	}{{a, "alpha"}, {a, "Zeta"}, {a, "_under"}, {b, "beta"}, {b, "Beta-2"}}
	for d := range 4 {
		for i, sb := range sandboxes {
			if (d+i)%3 == 2 {
				continue // not every sandbox runs every day
			}
			ds := delta(sb.team.ID, sb.id, day(d), int64(1+d*10+i))
			must(t, "recording usage", s.RecordUsage(ctx, nil, []domain.UsageDelta{ds}))
			l.add(ds)
		}
	}
	tests := []struct {
		name string
		f    domain.UsageFilter
	}{
		{"everything", domain.UsageFilter{TeamID: domain.AnyTeam}},
		{"team a", domain.UsageFilter{TeamID: a.ID}},
		{"team b", domain.UsageFilter{TeamID: b.ID}},
		{"unknown team", domain.UsageFilter{TeamID: "no-such-team"}},
		{"sandbox", domain.UsageFilter{TeamID: domain.AnyTeam, SandboxID: "Zeta"}},
		{"sandbox of the team", domain.UsageFilter{TeamID: a.ID, SandboxID: "alpha"}},
		{"sandbox of another team", domain.UsageFilter{TeamID: b.ID, SandboxID: "alpha"}},
		{"from, inclusive", domain.UsageFilter{TeamID: a.ID, From: day(1)}},
		{"to, exclusive", domain.UsageFilter{TeamID: a.ID, To: day(2)}},
		{"from and to", domain.UsageFilter{TeamID: domain.AnyTeam, From: day(1), To: day(3)}},
		{"from mid-day", domain.UsageFilter{TeamID: domain.AnyTeam, From: day(1).Add(time.Hour)}},
		{"to mid-day", domain.UsageFilter{TeamID: domain.AnyTeam, To: day(1).Add(time.Hour)}},
		{"bounds in another zone", domain.UsageFilter{TeamID: domain.AnyTeam, From: day(1).In(time.FixedZone("UTC-7", -7*3600)),
			To: day(3).In(time.FixedZone("UTC+9", 9*3600))}},
		{"empty range", domain.UsageFilter{TeamID: domain.AnyTeam, From: day(2), To: day(2)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListUsage(ctx, tc.f)
			must(t, "listing usage", err)
			sameRows(t, fmt.Sprintf("ListUsage(%+v)", tc.f), got, l.rows(tc.f))
		})
	}
}

func testInvoices(t *testing.T, s domain.Store) {
	ctx := t.Context()
	a, b := addTeam(t, s, "a"), addTeam(t, s, "b")
	zone := time.FixedZone("UTC+2", 2*3600)
	month := func(m time.Month) time.Time { return time.Date(2031, m, 1, 0, 0, 0, 0, time.UTC) }
	inv := func(id string, team *domain.Team, m time.Month) *domain.Invoice {
		return &domain.Invoice{ID: id, TeamID: team.ID, PlanID: "pro", Currency: "EUR",
			PeriodStart: month(m), PeriodEnd: month(m + 1), Total: "12.34", Final: true,
			IssuedAt: month(m + 1).Add(90 * time.Minute).In(zone),
			Lines: []domain.InvoiceLine{
				{Description: "Sandbox time", Quantity: "12.5", Unit: "hour", UnitPrice: "0.50", Amount: "6.25"},
				{Description: "Übertragung \"egress\"", Quantity: "3", Unit: "GB", UnitPrice: "2.03", Amount: "6.09"},
			}}
	}
	apr, may, jun := inv("inv-a-04", a, 4), inv("inv-a-05", a, 5), inv("inv-a-06", a, 6)
	jun.Lines, jun.Total, jun.IssuedAt = []domain.InvoiceLine{}, "0.00", time.Time{}
	otherMay := inv("inv-b-05", b, 5)
	for _, i := range []*domain.Invoice{may, jun, otherMay, apr} {
		must(t, "saving invoice "+i.ID, s.SaveInvoice(ctx, i))
	}

	tests := []struct {
		name string
		err  error
		kind domain.Kind
	}{
		{"same team and period", s.SaveInvoice(ctx, inv("inv-a-05-again", a, 5)), domain.KindConflict},
		{"same period start in another zone", s.SaveInvoice(ctx, func() *domain.Invoice {
			i := inv("inv-a-05-zoned", a, 5)
			i.PeriodStart = i.PeriodStart.In(zone)
			return i
		}()), domain.KindConflict},
		{"same id", s.SaveInvoice(ctx, inv("inv-a-04", b, 7)), domain.KindConflict},
		{"unknown team", s.SaveInvoice(ctx, inv("inv-x", &domain.Team{ID: "no-such-team"}, 5)), domain.KindNotFound},
	}
	for _, tc := range tests {
		wantKind(t, tc.name, tc.err, tc.kind)
	}

	for _, tc := range []struct {
		team *domain.Team
		want []*domain.Invoice
	}{
		{a, []*domain.Invoice{jun, may, apr}},
		{b, []*domain.Invoice{otherMay}},
		{&domain.Team{ID: "no-such-team"}, nil},
	} {
		got, err := s.ListInvoices(ctx, tc.team.ID)
		must(t, "listing invoices", err)
		if len(got) != len(tc.want) {
			t.Errorf("ListInvoices(%s) returned %d invoices, want %d", tc.team.ID, len(got), len(tc.want))
			continue
		}
		for i := range got {
			same(t, "invoice", got[i], tc.want[i], normInvoice)
		}
	}
}
