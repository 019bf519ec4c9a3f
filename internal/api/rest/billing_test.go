package rest

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func TestUsage(t *testing.T) {
	nov1, dec1 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		query string
		want  domain.UsageQuery
		field string // a 400 on this field instead
	}{
		{"defaults", "", domain.UsageQuery{}, ""},
		{"dates", "?from=2026-11-01&to=2026-12-01", domain.UsageQuery{From: nov1, To: dec1}, ""},
		{"RFC 3339", "?from=2026-11-01T01:00:00%2B01:00&to=2026-12-01T00:00:00Z", domain.UsageQuery{From: nov1, To: dec1}, ""},
		{"group and sandbox", "?group_by=sandbox&sandbox_id=" + sbID, domain.UsageQuery{GroupBy: "sandbox", SandboxID: sbID}, ""},
		{"group none", "?group_by=none", domain.UsageQuery{GroupBy: "none"}, ""},
		{"bad from", "?from=11/01/2026", domain.UsageQuery{}, "from"},
		{"bad to", "?from=2026-11-01&to=2026-12-32", domain.UsageQuery{}, "to"},
		{"date with time but no zone", "?to=2026-12-01T00:00:00", domain.UsageQuery{}, "to"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, _, bill := newTenancyHarness(t)
			var got domain.UsageQuery
			calls := 0
			bill.UsageFn = func(_ context.Context, p domain.Principal, q domain.UsageQuery) (*domain.UsageReport, error) {
				got = q
				calls++
				if p.TeamID != "team_a" {
					t.Errorf("principal = %+v", p)
				}
				return &domain.UsageReport{From: nov1, To: dec1, GroupBy: "day"}, nil
			}
			res := h.do("GET", "/v1/usage"+c.query, nil)
			if c.field != "" {
				h.wantError(res, 400, "invalid", c.field)
				if calls != 0 {
					t.Error("service called for an invalid query")
				}
				return
			}
			if res.Status != 200 || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("%d %s: query %+v, want %+v", res.Status, res.Body, got, c.want)
			}
			m := res.Obj(t)
			if m["from"] != "2026-11-01T00:00:00Z" || m["to"] != "2026-12-01T00:00:00Z" || m["group_by"] != "day" ||
				!reflect.DeepEqual(m["rows"], []any{}) || m["total"].(map[string]any)["wall_ms"] != 0.0 {
				t.Errorf("empty report: %s", res.Body)
			}
		})
	}
}

func TestUsageRows(t *testing.T) {
	h, _, bill := newTenancyHarness(t)
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	row := domain.UsageRow{SandboxID: sbID, TemplateID: "base", Day: day, WallMS: 60000, CPUMicros: 1500000,
		MemMBSeconds: 30720, DiskMBSeconds: 61440, NetRxBytes: 1 << 20, NetTxBytes: 4096}
	bill.UsageFn = func(_ context.Context, _ domain.Principal, q domain.UsageQuery) (*domain.UsageReport, error) {
		if q.GroupBy == "week" {
			return nil, domain.Invalid("group_by", "group_by %q is not supported: use sandbox, day, template or none", q.GroupBy)
		}
		return &domain.UsageReport{From: day, To: day.AddDate(0, 0, 1), GroupBy: "sandbox", Rows: []domain.UsageRow{row, {SandboxID: "other", WallMS: 1}},
			Total: domain.UsageRow{WallMS: 60001, CPUMicros: 1500000}}, nil
	}
	res := h.do("GET", "/v1/usage?group_by=sandbox", nil)
	if res.Status != 200 {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	rows := res.Obj(t)["rows"].([]any)
	want := map[string]any{"sandbox_id": sbID, "template_id": "base", "day": "2026-11-02T00:00:00Z", "wall_ms": 60000.0, "cpu_us": 1500000.0,
		"memory_mb_s": 30720.0, "disk_mb_s": 61440.0, "net_rx_bytes": 1048576.0, "net_tx_bytes": 4096.0}
	if len(rows) != 2 || !reflect.DeepEqual(rows[0], want) {
		t.Errorf("rows = %v, want first %v", rows, want)
	}
	if second := rows[1].(map[string]any); second["day"] != nil || second["template_id"] != nil {
		t.Errorf("unset labels are not omitted: %v", second)
	}
	h.wantError(h.do("GET", "/v1/usage?group_by=week", nil), 400, "invalid", "group_by")
	bill.UsageFn = func(context.Context, domain.Principal, domain.UsageQuery) (*domain.UsageReport, error) {
		return nil, domain.Errorf(domain.KindForbidden, "this credential lacks the \"usage:read\" scope")
	}
	h.wantError(h.do("GET", "/v1/usage", nil), 403, "forbidden", "")
}

func TestPlans(t *testing.T) {
	h, _, bill := newTenancyHarness(t)
	bill.PlansFn = func(context.Context) []domain.PlanInfo {
		return []domain.PlanInfo{
			{ID: "free", Name: "Free", Currency: "USD", MonthlyPrice: "0", PerMinute: "0", MinimumCharge: "0", PerCPUHour: "0",
				PerGBHour: "0", PerGBMonthDisk: "0", PerGBTraffic: "0", IncludedHours: "0"},
			{ID: "team", Name: "Team", Currency: "USD", MonthlyPrice: "150", PerMinute: "0.001", MinimumCharge: "", PerCPUHour: "",
				PerGBHour: "", PerGBMonthDisk: "", PerGBTraffic: "", IncludedHours: "3000", IncludedConcurrency: 100},
		}
	}
	res := h.do("GET", "/v1/plans", nil)
	plans, _ := res.Obj(t)["plans"].([]any)
	if res.Status != 200 || len(plans) != 2 {
		t.Fatalf("plans: %d %s", res.Status, res.Body)
	}
	team := plans[1].(map[string]any)
	if team["monthly_price"] != "150" || team["per_minute"] != "0.001" || team["included_concurrency"] != 100.0 {
		t.Errorf("plan: %v", team)
	}
}

func testInvoice(period string, final bool) *domain.Invoice {
	start, _ := time.Parse("2006-01", period)
	inv := &domain.Invoice{ID: "inv_team_a_" + period, TeamID: "team_a", PlanID: "payg", Currency: "USD",
		PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0),
		Lines: []domain.InvoiceLine{
			{Description: "Sandbox minutes", Quantity: "1234.5", Unit: "minute", UnitPrice: "0.0012", Amount: "1.48"},
			{Description: "Minimum charge per sandbox", Quantity: "3", Unit: "sandbox", UnitPrice: "0.01", Amount: "0.03"},
		},
		Total: "1.51", Final: final}
	if final {
		inv.IssuedAt = inv.PeriodEnd
	}
	return inv
}

func TestListInvoices(t *testing.T) {
	h, _, bill := newTenancyHarness(t)
	bill.InvoicesFn = func(context.Context, domain.Principal) ([]*domain.Invoice, error) {
		free := testInvoice("2025-01", true)
		free.Lines, free.Total = []domain.InvoiceLine{}, "0.00"
		return []*domain.Invoice{testInvoice("2025-03", false), testInvoice("2025-02", true), free}, nil
	}
	res := h.do("GET", "/v1/invoices", nil)
	invs, _ := res.Obj(t)["invoices"].([]any)
	if res.Status != 200 || len(invs) != 3 {
		t.Fatalf("invoices: %d %s", res.Status, res.Body)
	}
	draft, final := invs[0].(map[string]any), invs[1].(map[string]any)
	if draft["final"] != false || draft["issued_at"] != nil || final["final"] != true || final["issued_at"] != "2025-03-01T00:00:00Z" ||
		final["total"] != "1.51" || len(final["lines"].([]any)) != 2 {
		t.Errorf("invoices: %s", res.Body)
	}

	bill.InvoicesFn = func(context.Context, domain.Principal) ([]*domain.Invoice, error) { return nil, nil }
	if res := h.do("GET", "/v1/invoices", nil); res.Status != 200 || !strings.Contains(string(res.Body), `"invoices":[]`) {
		t.Errorf("no invoices: %d %s", res.Status, res.Body)
	}
	bill.InvoicesFn = func(context.Context, domain.Principal) ([]*domain.Invoice, error) {
		return nil, domain.Errorf(domain.KindForbidden, "this credential lacks the \"usage:read\" scope")
	}
	h.wantError(h.do("GET", "/v1/invoices", nil), 403, "forbidden", "")
}

func TestGetInvoice(t *testing.T) {
	const csvBody = "description,amount\nSandbox minutes,1.48\nMinimum charge per sandbox,0.03\nTotal,1.51\n"
	cases := []struct {
		name, target, accept string
		wantCSV              bool
		field                string // a 400 on this field instead
	}{
		{"json by default", "/v1/invoices/2025-02", "", false, ""},
		{"format json", "/v1/invoices/2025-02?format=json", "", false, ""},
		{"format csv", "/v1/invoices/2025-02?format=csv", "", true, ""},
		{"accept csv", "/v1/invoices/2025-02", "text/csv", true, ""},
		{"accept csv among others", "/v1/invoices/2025-02", "application/json;q=0.5, text/csv", true, ""},
		{"format wins over accept", "/v1/invoices/2025-02?format=json", "text/csv", false, ""},
		{"format xml", "/v1/invoices/2025-02?format=xml", "", false, "format"},
		{"format pdf with accept csv", "/v1/invoices/2025-02?format=pdf", "text/csv", false, "format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, _, bill := newTenancyHarness(t)
			var gotPeriod string
			bill.InvoiceFn = func(_ context.Context, _ domain.Principal, period string) (*domain.Invoice, error) {
				gotPeriod = period
				return testInvoice(period, true), nil
			}
			r := h.req("GET", c.target, nil)
			if c.accept != "" {
				r.Header.Set("Accept", c.accept)
			}
			res := h.serve(r)
			if c.field != "" {
				h.wantError(res, 400, "invalid", c.field)
				if gotPeriod != "" {
					t.Error("service called for a bad format")
				}
				return
			}
			if res.Status != 200 || gotPeriod != "2025-02" {
				t.Fatalf("%d %s (period %q)", res.Status, res.Body, gotPeriod)
			}
			ct := res.Header.Get("Content-Type")
			if c.wantCSV {
				if !strings.HasPrefix(ct, "text/csv") || string(res.Body) != csvBody ||
					res.Header.Get("Content-Disposition") != `attachment; filename="inv_team_a_2025-02.csv"` {
					t.Errorf("CSV: Content-Type %q, Content-Disposition %q, body %q", ct, res.Header.Get("Content-Disposition"), res.Body)
				}
				return
			}
			if ct != "application/json" || res.Header.Get("Content-Disposition") != "" {
				t.Errorf("JSON: Content-Type %q, Content-Disposition %q", ct, res.Header.Get("Content-Disposition"))
			}
			if m := res.Obj(t); m["id"] != "inv_team_a_2025-02" || m["period_start"] != "2025-02-01T00:00:00Z" || m["total"] != "1.51" {
				t.Errorf("invoice: %s", res.Body)
			}
		})
	}
}

func TestGetInvoiceErrors(t *testing.T) {
	h, _, bill := newTenancyHarness(t)
	bill.InvoiceFn = func(_ context.Context, _ domain.Principal, period string) (*domain.Invoice, error) {
		if period != "2025-02" {
			return nil, domain.Errorf(domain.KindNotFound, "no invoice for %s", period)
		}
		return testInvoice(period, true), nil
	}
	h.wantError(h.do("GET", "/v1/invoices/1999-01", nil), 404, "not_found", "")
	h.wantError(h.do("GET", "/v1/invoices/1999-01?format=csv", nil), 404, "not_found", "")

	// Without a CSV writer, CSV is unavailable but JSON still works.
	h, _, bill = newTenancyHarness(t, WithBilling(bill, nil))
	h.wantError(h.do("GET", "/v1/invoices/2025-02?format=csv", nil), 503, "unavailable", "")
	if res := h.do("GET", "/v1/invoices/2025-02", nil); res.Status != 200 {
		t.Errorf("JSON without a CSV writer: %d %s", res.Status, res.Body)
	}
}

func TestBillingOtherTeam(t *testing.T) {
	h, _, bill := newTenancyHarness(t)
	called := 0
	bill.UsageFn = func(_ context.Context, p domain.Principal, q domain.UsageQuery) (*domain.UsageReport, error) {
		called++
		return &domain.UsageReport{GroupBy: "day"}, nil
	}
	// Naming one's own team is the same as naming none; another team is not found
	// (only platform admins may act for other teams, see domain.Principal.ActingFor).
	if res := h.do("GET", "/v1/usage?team_id=team_a", nil); res.Status != 200 || called != 1 {
		t.Errorf("own team: %d %s", res.Status, res.Body)
	}
	for _, path := range []string{"/v1/usage?team_id=team_b", "/v1/invoices?team_id=team_b", "/v1/invoices/2026-11?team_id=team_b"} {
		res := h.do("GET", path, nil)
		h.wantError(res, 404, "not_found", "")
	}
	if called != 1 {
		t.Errorf("the billing service was called for another team")
	}
}
