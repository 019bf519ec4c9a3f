package ledger_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/billing"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/sqlite"
)

// minutes is wall time in milliseconds.
func minutes(n int64) int64 { return n * 60_000 }

func wall(team, sandbox, d string, ms int64) domain.UsageDelta {
	return domain.UsageDelta{SandboxID: sandbox, TeamID: team, TemplateID: "base", Day: day(d), WallMS: ms}
}

// billedTeam creates a team on the default catalog's "payg" plan (0.0012 a minute, at
// least 0.01 per sandbox), created 2025-12-10, with this usage:
//
//	2025-12-20 s1 100 min                → 100 × 0.0012 = 0.12
//	2026-01    nothing                   → 0.00
//	2026-02-01 s3   1 min: 0.0012 < 0.01 → minimum charge 0.01
//	2026-02-28 s2  50 min                → 50 × 0.0012 = 0.06; period 0.07
//	2026-03-01 s4 1000 min               → 1000 × 0.0012 = 1.20 (the draft)
func billedTeam(t *testing.T, st *sqlite.Store, id string) {
	createTeam(t, st, domain.Team{ID: id, PlanID: "payg", CreatedAt: ts("2025-12-10T09:00:00Z")})
	record(t, st,
		wall(id, id+"-s1", "2025-12-20", minutes(100)),
		wall(id, id+"-s3", "2026-02-01", minutes(1)),
		wall(id, id+"-s2", "2026-02-28", minutes(50)),
		wall(id, id+"-s4", "2026-03-01", minutes(1000)),
	)
}

// repricedCatalog doubles payg's per-minute price to 0.0024, minimum still 0.01.
func repricedCatalog(t *testing.T) *billing.Catalog {
	t.Helper()
	cat, err := billing.NewCatalog("payg", []billing.Plan{{ID: "payg", PerMinute: dec("0.0024"), MinimumCharge: dec("0.01")}})
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

type wantInvoice struct {
	period string
	total  string
	final  bool
}

func checkInvoices(t *testing.T, team string, got []*domain.Invoice, want []wantInvoice) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d invoices, want %d: %s", len(got), len(want), jsonOf(t, got))
	}
	for i, w := range want {
		inv := got[i]
		start, end, err := billing.ParsePeriodKey(w.period)
		if err != nil {
			t.Fatal(err)
		}
		if !inv.PeriodStart.Equal(start) || !inv.PeriodEnd.Equal(end) {
			t.Errorf("invoice %d: period [%s, %s), want %s", i, inv.PeriodStart, inv.PeriodEnd, w.period)
		}
		if inv.Total != w.total {
			t.Errorf("invoice %s: total %q, want %q", w.period, inv.Total, w.total)
		}
		if inv.Final != w.final {
			t.Errorf("invoice %s: final %v, want %v", w.period, inv.Final, w.final)
		}
		wantIssued := time.Time{}
		if w.final {
			wantIssued = end
		}
		if !inv.IssuedAt.Equal(wantIssued) {
			t.Errorf("invoice %s: issued at %s, want %s", w.period, inv.IssuedAt, wantIssued)
		}
		if inv.TeamID != team || inv.ID != "inv_"+team+"_"+w.period {
			t.Errorf("invoice %s: team %q id %q, want team %q", w.period, inv.TeamID, inv.ID, team)
		}
	}
}

func savedPeriods(t *testing.T, st *sqlite.Store, team string) []string {
	t.Helper()
	saved, err := st.ListInvoices(context.Background(), team)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, inv := range saved {
		out = append(out, billing.PeriodKey(inv.PeriodStart))
	}
	return out
}

func TestInvoices(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clock := now
	l := newLedger(t, st, billing.DefaultCatalog(), &clock)
	billedTeam(t, st, "acme")

	first, err := l.Invoices(ctx, reader("acme"))
	if err != nil {
		t.Fatal(err)
	}
	checkInvoices(t, "acme", first, []wantInvoice{
		{"2026-03", "1.20", false}, {"2026-02", "0.07", true}, {"2026-01", "0.00", true}, {"2025-12", "0.12", true},
	})
	// February in detail: 50 billed minutes, and one sandbox at the minimum charge.
	wantLines := `[{"description":"Sandbox minutes","quantity":"50","unit":"minute","unit_price":"0.0012","amount":"0.06"},` +
		`{"description":"Minimum charge per sandbox whose minutes cost less than 0.01","quantity":"1","unit":"sandbox","unit_price":"0.01","amount":"0.01"}]`
	if got := jsonOf(t, first[1].Lines); got != wantLines {
		t.Errorf("February's lines:\n got %s\nwant %s", got, wantLines)
	}
	if first[1].PlanID != "payg" || first[1].Currency != "USD" {
		t.Errorf("February: plan %q currency %q, want payg USD", first[1].PlanID, first[1].Currency)
	}
	// The ended periods were issued on this first read; the draft was not.
	if got, want := savedPeriods(t, st, "acme"), []string{"2026-02", "2026-01", "2025-12"}; !slices.Equal(got, want) {
		t.Errorf("saved invoices %v, want %v", got, want)
	}

	// The operator doubles the per-minute price. A ledger on the new catalog and the
	// same store shows the issued invoices unchanged and only the draft repriced:
	// 1000 × 0.0024 = 2.40.
	repriced := newLedger(t, st, repricedCatalog(t), &clock)
	again, err := repriced.Invoices(ctx, reader("acme"))
	if err != nil {
		t.Fatal(err)
	}
	checkInvoices(t, "acme", again, []wantInvoice{
		{"2026-03", "2.40", false}, {"2026-02", "0.07", true}, {"2026-01", "0.00", true}, {"2025-12", "0.12", true},
	})
	for i := 1; i < len(first); i++ {
		if got, want := jsonOf(t, again[i]), jsonOf(t, first[i]); got != want {
			t.Errorf("issued invoice changed after a price change:\n got %s\nwant %s", got, want)
		}
	}
	// Control: a team with the same usage whose invoices were never read is billed at
	// the new prices: 100 × 0.0024 = 0.24; 50 × 0.0024 = 0.12 plus the 0.01 minimum
	// (1 × 0.0024 < 0.01) = 0.13.
	billedTeam(t, st, "beta")
	fresh, err := repriced.Invoices(ctx, reader("beta"))
	if err != nil {
		t.Fatal(err)
	}
	checkInvoices(t, "beta", fresh, []wantInvoice{
		{"2026-03", "2.40", false}, {"2026-02", "0.13", true}, {"2026-01", "0.00", true}, {"2025-12", "0.24", true},
	})
	// Reading again gives the same list.
	if again2, err := repriced.Invoices(ctx, reader("beta")); err != nil {
		t.Fatal(err)
	} else if got, want := jsonOf(t, again2), jsonOf(t, fresh); got != want {
		t.Errorf("second read differs:\n got %s\nwant %s", got, want)
	}
}

func TestInvoicesPeriods(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clock := now
	l := newLedger(t, st, billing.DefaultCatalog(), &clock)
	tests := []struct {
		name    string
		created string
		want    []string // periods, newest first
	}{
		{"created this month", "2026-03-14T23:59:00Z", []string{"2026-03"}},
		{"created at this period's start", "2026-03-01T00:00:00Z", []string{"2026-03"}},
		{"created at last period's start", "2026-02-01T00:00:00Z", []string{"2026-03", "2026-02"}},
		{"created last period's last instant", "2026-02-28T23:59:59Z", []string{"2026-03", "2026-02"}},
		{"created across a year", "2025-11-30T12:00:00Z", []string{"2026-03", "2026-02", "2026-01", "2025-12", "2025-11"}},
		// 39 periods since 2023-01: only the newest 24, 2026-03 back to 2024-04.
		{"at most 24", "2023-01-05T00:00:00Z", []string{"2026-03", "2026-02", "2026-01", "2025-12", "2025-11",
			"2025-10", "2025-09", "2025-08", "2025-07", "2025-06", "2025-05", "2025-04", "2025-03", "2025-02",
			"2025-01", "2024-12", "2024-11", "2024-10", "2024-09", "2024-08", "2024-07", "2024-06", "2024-05", "2024-04"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "t" + string(rune('a'+i))
			createTeam(t, st, domain.Team{ID: id, CreatedAt: ts(tt.created)})
			invs, err := l.Invoices(ctx, reader(id))
			if err != nil {
				t.Fatal(err)
			}
			// The default plan is free: every total is 0.00.
			want := make([]wantInvoice, len(tt.want))
			for j, p := range tt.want {
				want[j] = wantInvoice{period: p, total: "0.00", final: j > 0}
			}
			checkInvoices(t, id, invs, want)
			if got := savedPeriods(t, st, id); !slices.Equal(got, tt.want[1:]) {
				t.Errorf("saved %v, want the ended periods %v", got, tt.want[1:])
			}
		})
	}
}

// TestInvoicesPeriodEnds follows one period from draft to issued invoice.
func TestInvoicesPeriodEnds(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clock := now
	l := newLedger(t, st, billing.DefaultCatalog(), &clock)
	createTeam(t, st, domain.Team{ID: "acme", PlanID: "payg", CreatedAt: ts("2026-03-05T00:00:00Z")})

	// 1000 min × 0.0012 = 1.20, still a draft.
	record(t, st, wall("acme", "s1", "2026-03-10", minutes(1000)))
	invs, err := l.Invoices(ctx, reader("acme"))
	if err != nil {
		t.Fatal(err)
	}
	checkInvoices(t, "acme", invs, []wantInvoice{{"2026-03", "1.20", false}})

	// The draft grows: + 500 min = 1500 × 0.0012 = 1.80.
	record(t, st, wall("acme", "s2", "2026-03-20", minutes(500)))
	invs, err = l.Invoices(ctx, reader("acme"))
	if err != nil {
		t.Fatal(err)
	}
	checkInvoices(t, "acme", invs, []wantInvoice{{"2026-03", "1.80", false}})
	if got := savedPeriods(t, st, "acme"); len(got) != 0 {
		t.Errorf("drafts were saved: %v", got)
	}

	// Within the grace hour after March ends, March is still a draft that takes usage
	// the meters book late: + 100 min = 1.92.
	clock = ts("2026-04-01T00:30:00Z")
	record(t, st, wall("acme", "s4", "2026-03-31", minutes(100)))
	invs, err = l.Invoices(ctx, reader("acme"))
	if err != nil {
		t.Fatal(err)
	}
	checkInvoices(t, "acme", invs, []wantInvoice{{"2026-04", "0.00", false}, {"2026-03", "1.92", false}})
	if got := savedPeriods(t, st, "acme"); len(got) != 0 {
		t.Errorf("an invoice was issued within the grace period: %v", got)
	}

	// April 2nd: March is issued at 1.92 and April's draft is empty.
	clock = ts("2026-04-02T00:00:00Z")
	invs, err = l.Invoices(ctx, reader("acme"))
	if err != nil {
		t.Fatal(err)
	}
	checkInvoices(t, "acme", invs, []wantInvoice{{"2026-04", "0.00", false}, {"2026-03", "1.92", true}})

	// Usage booked later still on March 31st does not change the issued invoice.
	record(t, st, wall("acme", "s3", "2026-03-31", minutes(1000)))
	inv, err := l.Invoice(ctx, reader("acme"), "2026-03")
	if err != nil {
		t.Fatal(err)
	}
	checkInvoices(t, "acme", []*domain.Invoice{inv}, []wantInvoice{{"2026-03", "1.92", true}})
}

func TestInvoice(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clock := now
	l := newLedger(t, st, billing.DefaultCatalog(), &clock)
	billedTeam(t, st, "acme")
	billedTeam(t, st, "beta")

	tests := []struct {
		name      string
		p         domain.Principal
		period    string
		wantKind  domain.Kind
		wantField string
	}{
		{name: "month 13", p: reader("acme"), period: "2026-13", wantKind: domain.KindInvalid, wantField: "period"},
		{name: "one-digit month", p: reader("acme"), period: "2026-2", wantKind: domain.KindInvalid, wantField: "period"},
		{name: "a day", p: reader("acme"), period: "2026-02-01", wantKind: domain.KindInvalid, wantField: "period"},
		{name: "a name", p: reader("acme"), period: "February", wantKind: domain.KindInvalid, wantField: "period"},
		{name: "empty", p: reader("acme"), period: "", wantKind: domain.KindInvalid, wantField: "period"},
		{name: "next period", p: reader("acme"), period: "2026-04", wantKind: domain.KindNotFound},
		{name: "far future", p: reader("acme"), period: "2030-01", wantKind: domain.KindNotFound},
		{name: "before the team", p: reader("acme"), period: "2025-11", wantKind: domain.KindNotFound},
		{name: "unknown team", p: reader("nope"), period: "2026-03", wantKind: domain.KindNotFound},
		{name: "no scope", p: domain.Principal{TeamID: "acme", Scopes: []domain.Scope{domain.ScopeTeamRead}},
			period: "2026-02", wantKind: domain.KindForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := l.Invoice(ctx, tt.p, tt.period)
			if !domain.IsKind(err, tt.wantKind) {
				t.Fatalf("err = %v (kind %s), want kind %s; invoice %+v", err, domain.KindOf(err), tt.wantKind, inv)
			}
			if got := domain.FieldOf(err); got != tt.wantField {
				t.Errorf("field = %q, want %q", got, tt.wantField)
			}
		})
	}
	if got := savedPeriods(t, st, "acme"); len(got) != 0 {
		t.Errorf("refused reads saved invoices: %v", got)
	}

	// Every period's invoice equals the list's entry, whichever is read first: acme
	// lists first, beta reads each period first.
	list, err := l.Invoices(ctx, reader("acme"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range list {
		period := billing.PeriodKey(want.PeriodStart)
		got, err := l.Invoice(ctx, reader("acme"), period)
		if err != nil {
			t.Fatalf("Invoice(%s): %v", period, err)
		}
		if g, w := jsonOf(t, got), jsonOf(t, want); g != w {
			t.Errorf("Invoice(%s):\n got %s\nwant %s", period, g, w)
		}
	}
	var single []*domain.Invoice
	for _, period := range []string{"2026-03", "2026-02", "2026-01", "2025-12"} {
		inv, err := l.Invoice(ctx, reader("beta"), period)
		if err != nil {
			t.Fatalf("Invoice(%s): %v", period, err)
		}
		single = append(single, inv)
	}
	checkInvoices(t, "beta", single, []wantInvoice{
		{"2026-03", "1.20", false}, {"2026-02", "0.07", true}, {"2026-01", "0.00", true}, {"2025-12", "0.12", true},
	})
	list, err = l.Invoices(ctx, reader("beta"))
	if err != nil {
		t.Fatal(err)
	}
	if g, w := jsonOf(t, list), jsonOf(t, single); g != w {
		t.Errorf("Invoices after Invoice:\n got %s\nwant %s", g, w)
	}
}

func TestInvoicesErrors(t *testing.T) {
	st := openStore(t)
	clock := now
	l := newLedger(t, st, billing.DefaultCatalog(), &clock)
	createTeam(t, st, domain.Team{ID: "acme", CreatedAt: ts("2025-01-01T00:00:00Z")})
	createTeam(t, st, domain.Team{ID: "gold", PlanID: "gold", CreatedAt: ts("2025-01-01T00:00:00Z")})
	tests := []struct {
		name     string
		p        domain.Principal
		wantKind domain.Kind
	}{
		{"no scopes", domain.Principal{TeamID: "acme"}, domain.KindForbidden},
		{"other scopes", domain.Principal{TeamID: "acme", Scopes: []domain.Scope{domain.ScopeSandboxesRead}}, domain.KindForbidden},
		{"unknown team", reader("nope"), domain.KindNotFound},
		// The team's plan is not in the catalog: the operator's mistake, not the caller's.
		{"unknown plan", reader("gold"), domain.KindInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			invs, err := l.Invoices(context.Background(), tt.p)
			if !domain.IsKind(err, tt.wantKind) {
				t.Fatalf("err = %v (kind %s), want kind %s; invoices %d", err, domain.KindOf(err), tt.wantKind, len(invs))
			}
		})
	}
}

func TestAdmitConcurrency(t *testing.T) {
	st := openStore(t)
	clock := now
	l := newLedger(t, st, billing.DefaultCatalog(), &clock)
	// Plans' included concurrency: free 0 (no cap), payg 20, resources 50, team 100.
	tests := []struct {
		plan  string
		quota int64 // the team's max_sandboxes
		want  int64
	}{
		{"free", 0, 0},
		{"free", 7, 7},
		{"", 3, 3}, // the default plan, free
		{"payg", 0, 20},
		{"payg", 5, 5},
		{"payg", 20, 20},
		{"payg", 21, 20},
		{"resources", 0, 50},
		{"team", 0, 100},
		{"team", 99, 99},
		{"team", 150, 100},
	}
	for _, tt := range tests {
		team := &domain.Team{ID: "t", PlanID: tt.plan, Quota: domain.Quota{MaxSandboxes: tt.quota,
			MaxCPUCores: 8, MaxMemoryMB: 4096, MaxDiskMB: 10240, RequestsPerMinute: 60}}
		q, err := l.Admit(context.Background(), team)
		if err != nil {
			t.Errorf("plan %q quota %d: %v", tt.plan, tt.quota, err)
			continue
		}
		want := team.Quota
		want.MaxSandboxes = tt.want
		if q != want {
			t.Errorf("plan %q quota %d: Admit = %+v, want %+v", tt.plan, tt.quota, q, want)
		}
		if team.Quota.MaxSandboxes != tt.quota {
			t.Errorf("plan %q: Admit changed the team's own quota to %d", tt.plan, team.Quota.MaxSandboxes)
		}
	}
	if _, err := l.Admit(context.Background(), &domain.Team{ID: "t", PlanID: "gold"}); err == nil || domain.KindOf(err) != domain.KindInternal || !strings.Contains(err.Error(), "WARREN_PLANS") {
		t.Errorf("unknown plan: err = %v, want an internal error telling the operator what to fix", err)
	}
}

func TestAdmitSpendingLimit(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clock := now
	l := newLedger(t, st, billing.DefaultCatalog(), &clock)
	created := ts("2025-01-01T00:00:00Z")
	for _, team := range []domain.Team{
		{ID: "payg", PlanID: "payg", CreatedAt: created},
		{ID: "idle", PlanID: "payg", CreatedAt: created},
		{ID: "pkg", PlanID: "team", CreatedAt: created},
		{ID: "free", PlanID: "free", CreatedAt: created},
	} {
		createTeam(t, st, team)
	}
	record(t, st,
		// payg this period: 1000 min × 0.0012 = 1.20. February's 10000 min (12.00)
		// belong to the last period and do not count.
		wall("payg", "p1", "2026-03-02", minutes(1000)),
		wall("payg", "p1", "2026-02-27", minutes(10000)),
		// team plan: 10 min, inside the 3000 included hours; the 150 fee is all.
		wall("pkg", "k1", "2026-03-03", minutes(10)),
		// free: a lot of use, all at price zero.
		wall("free", "f1", "2026-03-04", minutes(1_000_000)),
	)
	tests := []struct {
		team      string
		limit     string
		wantKind  domain.Kind // 0 for admitted
		wantUsed  string      // the period's charges, as in the message
		wantLimit string
	}{
		{team: "payg", limit: ""},
		{team: "payg", limit: "1.21"},
		{team: "payg", limit: "12"}, // last period's 12.00 not counted
		{team: "payg", limit: "1.20", wantKind: domain.KindQuotaExceeded, wantUsed: "1.20", wantLimit: "1.20"},
		{team: "payg", limit: "1.2", wantKind: domain.KindQuotaExceeded, wantUsed: "1.20", wantLimit: "1.20"},
		{team: "payg", limit: "1", wantKind: domain.KindQuotaExceeded, wantUsed: "1.20", wantLimit: "1.00"},
		{team: "payg", limit: "0.5", wantKind: domain.KindQuotaExceeded, wantUsed: "1.20", wantLimit: "0.50"},
		{team: "payg", limit: " 0.75 ", wantKind: domain.KindQuotaExceeded, wantUsed: "1.20", wantLimit: "0.75"},
		// The package fee counts on its own: 150.00 spent with no billable minutes.
		{team: "pkg", limit: ""},
		{team: "pkg", limit: "150.01"},
		{team: "pkg", limit: "150", wantKind: domain.KindQuotaExceeded, wantUsed: "150.00", wantLimit: "150.00"},
		{team: "pkg", limit: "100", wantKind: domain.KindQuotaExceeded, wantUsed: "150.00", wantLimit: "100.00"},
		{team: "free", limit: ""},
		{team: "free", limit: "0.01"},
		{team: "idle", limit: "0.01"},
		// A limit of 0 allows no charges at all: 0.00 spent has reached it.
		{team: "idle", limit: "0", wantKind: domain.KindQuotaExceeded, wantUsed: "0.00", wantLimit: "0.00"},
		{team: "payg", limit: "ten", wantKind: domain.KindInvalid},
		{team: "payg", limit: "-1", wantKind: domain.KindInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.team+" limit "+tt.limit, func(t *testing.T) {
			team, err := st.GetTeam(ctx, tt.team)
			if err != nil {
				t.Fatal(err)
			}
			team.SpendLimit = tt.limit
			_, err = l.Admit(ctx, team)
			if cerr := l.CheckSpend(ctx, team); domain.KindOf(cerr) != domain.KindOf(err) || (cerr == nil) != (err == nil) {
				t.Errorf("CheckSpend = %v, Admit = %v: they disagree", cerr, err)
			}
			switch tt.wantKind {
			case 0:
				if err != nil {
					t.Fatalf("Admit refused: %v", err)
				}
				return
			case domain.KindInvalid:
				if !domain.IsKind(err, domain.KindInvalid) || domain.FieldOf(err) != "spend_limit" {
					t.Fatalf("err = %v (field %q), want KindInvalid on spend_limit", err, domain.FieldOf(err))
				}
				return
			}
			if !domain.IsKind(err, tt.wantKind) {
				t.Fatalf("err = %v (kind %s), want kind %s", err, domain.KindOf(err), tt.wantKind)
			}
			var qe *domain.QuotaError
			if !errors.As(err, &qe) {
				t.Fatalf("err = %v has no *domain.QuotaError", err)
			}
			if qe.Quota != "spending_limit" || qe.Limit != toFloat(t, tt.wantLimit) || qe.Used != toFloat(t, tt.wantUsed) {
				t.Errorf("QuotaError = %+v, want spending_limit limit %s used %s", qe, tt.wantLimit, tt.wantUsed)
			}
			msg := domain.PublicMessage(err)
			for _, amount := range []string{tt.wantUsed + " USD", tt.wantLimit + " USD"} {
				if !strings.Contains(msg, amount) {
					t.Errorf("message %q does not say %q", msg, amount)
				}
			}
		})
	}
}

func toFloat(t *testing.T, s string) float64 {
	t.Helper()
	f, _ := dec(s).Float64()
	return f
}
