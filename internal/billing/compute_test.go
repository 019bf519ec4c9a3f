package billing

import (
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/warren-sh/warren/internal/domain"
)

var (
	nov = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	dec = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
)

func day(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// workload is a month of three sandboxes, in November 2026:
//
//	sb-a: 90 s of wall time.
//	sb-b: 30 min; 0.5 CPU-hour; 256 MB for 30 min = 460,800 MB·s.
//	sb-c: 2 h, across Nov 20 and Nov 21 (1 h each); 1 CPU-hour; 512 MB for 2 h =
//	      3,686,400 MB·s; 100 GB (102,400 MB) of disk for 2 h = 737,280,000 MB·s;
//	      1 GiB received, 0.5 GiB sent.
//
// plus two rows outside the period (Oct 31 and Dec 1) that must be ignored. Totals:
//
//	wall     1.5 + 30 + 120 = 151.5 min
//	CPU      5,400,000,000 µs / 3.6e9 = 1.5 CPU-hours
//	memory   4,147,200 MB·s / (1024 × 3600) = 1.125 GB-hours
//	disk     737,280,000 / (1024 × 2,592,000) = 0.2777… → 0.277778 GB-months
//	traffic  1,610,612,736 B / 1024³ = 1.5 GB
func workload() []domain.UsageRow {
	return []domain.UsageRow{
		{SandboxID: "sb-a", Day: day(3), WallMS: 90_000},
		{SandboxID: "sb-b", Day: day(10), WallMS: 1_800_000, CPUMicros: 1_800_000_000,
			MemMBSeconds: 460_800},
		{SandboxID: "sb-c", Day: day(20), WallMS: 3_600_000, CPUMicros: 1_800_000_000,
			MemMBSeconds: 1_843_200, DiskMBSeconds: 368_640_000, NetRxBytes: 1 << 30},
		{SandboxID: "sb-c", Day: day(21), WallMS: 3_600_000, CPUMicros: 1_800_000_000,
			MemMBSeconds: 1_843_200, DiskMBSeconds: 368_640_000, NetTxBytes: 1 << 29},
		// Outside the period.
		{SandboxID: "sb-a", Day: time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC),
			WallMS: 3_600_000, CPUMicros: 3_600_000_000, NetRxBytes: 1 << 40},
		{SandboxID: "sb-b", Day: dec, WallMS: 3_600_000, MemMBSeconds: 1 << 40},
	}
}

func line(desc, qty, unit, price, amount string) domain.InvoiceLine {
	return domain.InvoiceLine{Description: desc, Quantity: qty, Unit: unit, UnitPrice: price, Amount: amount}
}

// The resource lines of workload() at price 0.
var zeroResourceLines = []domain.InvoiceLine{
	line("CPU time", "1.5", "CPU-hour", "0", "0.00"),
	line("Memory (1 GB = 1024 MB)", "1.125", "GB-hour", "0", "0.00"),
	line("Disk (1 GB = 1024 MB, 1 month = 30 days)", "0.277778", "GB-month", "0", "0.00"),
	line("Network traffic in + out (1 GB = 1024^3 bytes)", "1.5", "GB", "0", "0.00"),
}

func TestComputePlanTypes(t *testing.T) {
	team := &domain.Team{ID: "t1", Name: "Acme"}
	tests := []struct {
		name      string
		plan      Plan
		wantLines []domain.InvoiceLine
		wantTotal string
	}{{
		// Everything at price 0: usage is listed, nothing is charged.
		name: "free",
		plan: Plan{ID: "free", Name: "Free"},
		wantLines: append([]domain.InvoiceLine{
			line("Sandbox minutes", "151.5", "minute", "0", "0.00"),
		}, zeroResourceLines...),
		wantTotal: "0.00",
	}, {
		// 0.02/min, minimum 0.05 per sandbox:
		//   sb-a 1.5 min × 0.02 = 0.03 < 0.05 → minimum charge
		//   sb-b 30 min × 0.02 = 0.60, sb-c 120 min × 0.02 = 2.40 → 150 min
		// 150 × 0.02 = 3.00; 1 × 0.05 = 0.05; total 3.05.
		name: "payg",
		plan: Plan{ID: "payg", Name: "Pay as you go", PerMinute: d("0.02"), MinimumCharge: d("0.05")},
		wantLines: append([]domain.InvoiceLine{
			line("Sandbox minutes", "150", "minute", "0.02", "3.00"),
			line("Minimum charge per sandbox whose minutes cost less than 0.05", "1", "sandbox", "0.05", "0.05"),
		}, zeroResourceLines...),
		wantTotal: "3.05",
	}, {
		// CPU      1.5 × 0.05 = 0.075 → 0.08 (half-up)
		// memory   1.125 × 0.016 = 0.018 → 0.02
		// disk     0.277778 × 0.10 = 0.0277778 → 0.03
		// traffic  1.5 × 0.09 = 0.135 → 0.14 (half-up)
		// total    0.08 + 0.02 + 0.03 + 0.14 = 0.27
		name: "resources",
		plan: Plan{ID: "resources", Name: "Resources", PerCPUHour: d("0.05"), PerGBHour: d("0.016"),
			PerGBMonthDisk: d("0.10"), PerGBTraffic: d("0.09")},
		wantLines: []domain.InvoiceLine{
			line("Sandbox minutes", "151.5", "minute", "0", "0.00"),
			line("CPU time", "1.5", "CPU-hour", "0.05", "0.08"),
			line("Memory (1 GB = 1024 MB)", "1.125", "GB-hour", "0.016", "0.02"),
			line("Disk (1 GB = 1024 MB, 1 month = 30 days)", "0.277778", "GB-month", "0.1", "0.03"),
			line("Network traffic in + out (1 GB = 1024^3 bytes)", "1.5", "GB", "0.09", "0.14"),
		},
		wantTotal: "0.27",
	}, {
		// 150/month with 2 included hours (120 min), then 0.01/min, minimum 0.05.
		// Included minutes go shortest first: sb-a 1.5 (118.5 left), sb-b 30 (88.5 left),
		// sb-c 88.5 of its 120 → 31.5 billable min × 0.01 = 0.315 → 0.32 (≥ 0.05, so no
		// minimum). Total 150.00 + 0.32 = 150.32.
		name: "team",
		plan: Plan{ID: "team", Name: "Team", MonthlyPrice: d("150"), IncludedHours: d("2"),
			IncludedConcurrency: 10, PerMinute: d("0.01"), MinimumCharge: d("0.05")},
		wantLines: append([]domain.InvoiceLine{
			line("Team plan, 2026-11, 2 sandbox-hours included, up to 10 sandboxes at once", "1", "month", "150", "150.00"),
			line("Sandbox minutes beyond the 2 included hours", "31.5", "minute", "0.01", "0.32"),
		}, zeroResourceLines...),
		wantTotal: "150.32",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := Compute(team, tt.plan, nov, dec, workload(), day(15))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(inv.Lines, tt.wantLines) {
				t.Errorf("lines:\n got %q\nwant %q", inv.Lines, tt.wantLines)
			}
			if inv.Total != tt.wantTotal {
				t.Errorf("total = %s, want %s", inv.Total, tt.wantTotal)
			}
			checkLineArithmetic(t, inv)
		})
	}
}

// checkLineArithmetic checks the invariants every invoice keeps: amount =
// round(quantity × unit price, 2) and total = sum of the amounts.
func checkLineArithmetic(t *testing.T, inv *domain.Invoice) {
	t.Helper()
	sum := decimal.Zero
	for _, l := range inv.Lines {
		want := d(l.Quantity).Mul(d(l.UnitPrice)).StringFixed(2)
		if l.Amount != want {
			t.Errorf("line %q: amount %s, but %s × %s = %s", l.Description, l.Amount, l.Quantity, l.UnitPrice, want)
		}
		sum = sum.Add(d(l.Amount))
	}
	if sum.StringFixed(2) != inv.Total {
		t.Errorf("total %s, but the lines add up to %s", inv.Total, sum.StringFixed(2))
	}
}

// TestComputeBuiltinPlans bills workload() on the shipped plans. If you change a
// built-in price, redo the hand computation here.
func TestComputeBuiltinPlans(t *testing.T) {
	tests := []struct {
		plan string
		want string
	}{
		{"free", "0.00"},
		// sb-a 1.5 × 0.0012 = 0.0018 < 0.01 → minimum 0.01; 150 min × 0.0012 = 0.18.
		{"payg", "0.19"},
		// 1.5 × 0.05 → 0.08; 1.125 × 0.016 → 0.02; 0.277778 × 0.10 → 0.03; 1.5 × 0.09 → 0.14.
		{"resources", "0.27"},
		// 151.5 min is well within 3,000 included hours: just the package.
		{"team", "150.00"},
	}
	cat := DefaultCatalog()
	for _, tt := range tests {
		t.Run(tt.plan, func(t *testing.T) {
			p, err := cat.Plan(tt.plan)
			if err != nil {
				t.Fatal(err)
			}
			inv, err := Compute(&domain.Team{ID: "t1"}, p, nov, dec, workload(), day(15))
			if err != nil {
				t.Fatal(err)
			}
			if inv.Total != tt.want {
				t.Errorf("total = %s, want %s; lines %q", inv.Total, tt.want, inv.Lines)
			}
			checkLineArithmetic(t, inv)
		})
	}
}

func TestComputeRounding(t *testing.T) {
	tests := []struct {
		name      string
		perMinute string
		wallMS    int64
		wantQty   string
		wantTotal string
	}{
		// One minute at prices ending in 5 at the third decimal: half-up, which neither
		// banker's rounding (0.125 → 0.12) nor float64 (2.675 → 2.67) would give.
		{"0.125 up", "0.125", 60_000, "1", "0.13"},
		{"0.145 up", "0.145", 60_000, "1", "0.15"},
		{"2.675 up", "2.675", 60_000, "1", "2.68"},
		{"1.005 up", "1.005", 60_000, "1", "1.01"},
		{"0.005 up", "0.005", 60_000, "1", "0.01"},
		{"just under half", "0.0049999", 60_000, "1", "0.00"},
		// Quantities: 1 ms = 0.0000166… min → 0.000017; 30 ms = 0.0005 exactly.
		{"1 ms", "1", 1, "0.000017", "0.00"},
		{"30 ms", "1", 30, "0.0005", "0.00"},
		// 20 s = 0.333… min → 0.333333 × 3 = 0.999999 → 1.00.
		{"third of a minute", "3", 20_000, "0.333333", "1.00"},
		// 1,000 days of one sandbox: large numbers stay exact.
		{"large", "0.0001", 86_400_000_000, "1440000", "144.00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			usage := []domain.UsageRow{{SandboxID: "s", Day: day(1), WallMS: tt.wallMS}}
			inv, err := Compute(&domain.Team{ID: "t"}, Plan{ID: "p", PerMinute: d(tt.perMinute)},
				nov, dec, usage, day(2))
			if err != nil {
				t.Fatal(err)
			}
			if len(inv.Lines) != 1 || inv.Lines[0].Quantity != tt.wantQty {
				t.Fatalf("lines = %q, want one of quantity %s", inv.Lines, tt.wantQty)
			}
			if inv.Total != tt.wantTotal {
				t.Errorf("total = %s, want %s", inv.Total, tt.wantTotal)
			}
		})
	}
}

// TestComputeRoundsLinesNotTotal: only line amounts are rounded; the total adds them.
func TestComputeRoundsLinesNotTotal(t *testing.T) {
	tests := []struct {
		name  string
		price string
		want  string
	}{
		// 0.1 CPU-hour × 0.04 = 0.004 → 0.00, twice (CPU and memory): 0.00, not 0.01.
		{"down", "0.04", "0.00"},
		// 0.1 × 0.05 = 0.005 → 0.01, twice: 0.02.
		{"up", "0.05", "0.02"},
	}
	usage := []domain.UsageRow{{SandboxID: "s", Day: day(1),
		CPUMicros: 360_000_000, MemMBSeconds: 368_640}} // 0.1 CPU-hour; 1 GB for 6 min
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := Plan{ID: "p", PerCPUHour: d(tt.price), PerGBHour: d(tt.price)}
			inv, err := Compute(&domain.Team{ID: "t"}, plan, nov, dec, usage, day(2))
			if err != nil {
				t.Fatal(err)
			}
			if inv.Total != tt.want {
				t.Errorf("total = %s, want %s; lines %q", inv.Total, tt.want, inv.Lines)
			}
			checkLineArithmetic(t, inv)
		})
	}
}

func TestComputeMinutes(t *testing.T) {
	type sb struct {
		id     string
		wallMS int64
	}
	tests := []struct {
		name      string
		plan      Plan
		sandboxes []sb
		wantLines []domain.InvoiceLine
		wantTotal string
	}{{
		// 5 s × 0.01/min = 0.000833 < 0.01 → the minimum, 0.01.
		name:      "minimum applies",
		plan:      Plan{ID: "p", PerMinute: d("0.01"), MinimumCharge: d("0.01")},
		sandboxes: []sb{{"a", 5_000}},
		wantLines: []domain.InvoiceLine{
			line("Sandbox minutes", "0", "minute", "0.01", "0.00"),
			line("Minimum charge per sandbox whose minutes cost less than 0.01", "1", "sandbox", "0.01", "0.01"),
		},
		wantTotal: "0.01",
	}, {
		// 60 s × 0.01 = 0.01, exactly the minimum: billed by the minute.
		name:      "exactly the minimum",
		plan:      Plan{ID: "p", PerMinute: d("0.01"), MinimumCharge: d("0.01")},
		sandboxes: []sb{{"a", 60_000}},
		wantLines: []domain.InvoiceLine{line("Sandbox minutes", "1", "minute", "0.01", "0.01")},
		wantTotal: "0.01",
	}, {
		// Three short sandboxes (1 s, 10 s, 59.999 s) pay the minimum each; the long one
		// (10 min × 0.01 = 0.10) pays its minutes; the one with no wall time pays nothing.
		name:      "minimum per sandbox",
		plan:      Plan{ID: "p", PerMinute: d("0.01"), MinimumCharge: d("0.01")},
		sandboxes: []sb{{"a", 1_000}, {"b", 10_000}, {"c", 59_999}, {"d", 600_000}, {"idle", 0}},
		wantLines: []domain.InvoiceLine{
			line("Sandbox minutes", "10", "minute", "0.01", "0.10"),
			line("Minimum charge per sandbox whose minutes cost less than 0.01", "3", "sandbox", "0.01", "0.03"),
		},
		wantTotal: "0.13",
	}, {
		// A minimum without a per-minute price is a flat fee per sandbox that ran.
		name:      "flat fee per sandbox",
		plan:      Plan{ID: "p", MinimumCharge: d("0.02")},
		sandboxes: []sb{{"a", 1}, {"b", 3_600_000}},
		wantLines: []domain.InvoiceLine{
			line("Minimum charge per sandbox whose minutes cost less than 0.02", "2", "sandbox", "0.02", "0.04"),
		},
		wantTotal: "0.04",
	}, {
		// 20 + 40 min = exactly the included hour: nothing billable, no minimum.
		name:      "included hours exactly used",
		plan:      Plan{ID: "p", IncludedHours: d("1"), PerMinute: d("0.01"), MinimumCharge: d("0.05")},
		sandboxes: []sb{{"a", 1_200_000}, {"b", 2_400_000}},
		wantLines: []domain.InvoiceLine{
			line("Sandbox minutes beyond the 1 included hours", "0", "minute", "0.01", "0.00"),
		},
		wantTotal: "0.00",
	}, {
		// One second over: b has 1 s billable = 0.000167 × 0.01 < 0.05 → the minimum.
		name:      "included hours exceeded by a second",
		plan:      Plan{ID: "p", IncludedHours: d("1"), PerMinute: d("0.01"), MinimumCharge: d("0.05")},
		sandboxes: []sb{{"a", 1_200_000}, {"b", 2_401_000}},
		wantLines: []domain.InvoiceLine{
			line("Sandbox minutes beyond the 1 included hours", "0", "minute", "0.01", "0.00"),
			line("Minimum charge per sandbox whose minutes cost less than 0.05", "1", "sandbox", "0.05", "0.05"),
		},
		wantTotal: "0.05",
	}, {
		// 30 included min go shortest first: b (1 min) is covered, a keeps 40 - 29 = 11
		// billable min × 0.01 = 0.11. (Handed out by id, a would keep 10 min = 0.10 and b
		// 1 min, under the minimum: 0.15.)
		name:      "included hours shortest first",
		plan:      Plan{ID: "p", IncludedHours: d("0.5"), PerMinute: d("0.01"), MinimumCharge: d("0.05")},
		sandboxes: []sb{{"a", 2_400_000}, {"b", 60_000}},
		wantLines: []domain.InvoiceLine{
			line("Sandbox minutes beyond the 0.5 included hours", "11", "minute", "0.01", "0.11"),
		},
		wantTotal: "0.11",
	}, {
		// Equal lengths: ties go by id, so a is covered and b pays (both 30 min,
		// 0.5 h included): 30 × 0.01 = 0.30 either way; the result does not depend on
		// the rows' order.
		name:      "ties by id",
		plan:      Plan{ID: "p", IncludedHours: d("0.5"), PerMinute: d("0.01")},
		sandboxes: []sb{{"b", 1_800_000}, {"a", 1_800_000}},
		wantLines: []domain.InvoiceLine{
			line("Sandbox minutes beyond the 0.5 included hours", "30", "minute", "0.01", "0.30"),
		},
		wantTotal: "0.30",
	}, {
		// 0.25 h = 15 min included; 20 min ran: 5 × 0.01 = 0.05.
		name:      "fractional included hours",
		plan:      Plan{ID: "p", IncludedHours: d("0.25"), PerMinute: d("0.01")},
		sandboxes: []sb{{"a", 1_200_000}},
		wantLines: []domain.InvoiceLine{
			line("Sandbox minutes beyond the 0.25 included hours", "5", "minute", "0.01", "0.05"),
		},
		wantTotal: "0.05",
	}, {
		name:      "no usage, no prices: no lines",
		plan:      Plan{ID: "p"},
		wantTotal: "0.00",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var usage []domain.UsageRow
			for _, s := range tt.sandboxes {
				usage = append(usage, domain.UsageRow{SandboxID: s.id, Day: day(5), WallMS: s.wallMS})
			}
			inv, err := Compute(&domain.Team{ID: "t"}, tt.plan, nov, dec, usage, day(6))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(inv.Lines, tt.wantLines) {
				t.Errorf("lines:\n got %q\nwant %q", inv.Lines, tt.wantLines)
			}
			if inv.Total != tt.wantTotal {
				t.Errorf("total = %s, want %s", inv.Total, tt.wantTotal)
			}
			checkLineArithmetic(t, inv)
		})
	}
}

func TestComputePeriodBounds(t *testing.T) {
	// Only Day in [start, end) counts: the first day does, the next month's first does
	// not, nor does a row without a day.
	usage := []domain.UsageRow{
		{SandboxID: "a", Day: nov, WallMS: 60_000},
		{SandboxID: "a", Day: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), WallMS: 60_000},
		{SandboxID: "a", Day: dec, WallMS: 600_000},
		{SandboxID: "a", Day: nov.AddDate(0, 0, -1), WallMS: 600_000},
		{SandboxID: "a", WallMS: 600_000},
	}
	inv, err := Compute(&domain.Team{ID: "t"}, Plan{ID: "p", PerMinute: d("1")}, nov, dec, usage, dec)
	if err != nil {
		t.Fatal(err)
	}
	if got := inv.Lines[0].Quantity; got != "2" {
		t.Errorf("minutes = %s, want 2", got)
	}
}

func TestComputeInvoiceFields(t *testing.T) {
	team := &domain.Team{ID: "team_42"}
	plan := Plan{ID: "payg", PerMinute: d("1")} // no name or currency: defaults
	tests := []struct {
		name      string
		now       time.Time
		wantFinal bool
	}{
		{"draft", dec.Add(-time.Nanosecond), false},
		{"final at the end", dec, true},
		{"final later", dec.AddDate(0, 2, 0), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := Compute(team, plan, nov, dec, nil, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			if inv.ID != "inv_team_42_2026-11" || inv.TeamID != "team_42" || inv.PlanID != "payg" ||
				inv.Currency != "USD" || !inv.PeriodStart.Equal(nov) || !inv.PeriodEnd.Equal(dec) {
				t.Errorf("invoice = %+v", inv)
			}
			if inv.Final != tt.wantFinal {
				t.Errorf("final = %v, want %v", inv.Final, tt.wantFinal)
			}
			if wantIssued := tt.wantFinal; inv.IssuedAt.Equal(dec) != wantIssued || !wantIssued && !inv.IssuedAt.IsZero() {
				t.Errorf("issued at %v (final %v)", inv.IssuedAt, inv.Final)
			}
		})
	}
}

func TestComputeErrors(t *testing.T) {
	plan := Plan{ID: "p"}
	tests := []struct {
		name     string
		team     *domain.Team
		start    time.Time
		end      time.Time
		usage    []domain.UsageRow
		wantKind domain.Kind
	}{
		{"no team", nil, nov, dec, nil, domain.KindInternal},
		{"empty period", &domain.Team{ID: "t"}, nov, nov, nil, domain.KindInvalid},
		{"negative usage", &domain.Team{ID: "t"}, nov, dec,
			[]domain.UsageRow{{SandboxID: "a", Day: day(2), NetTxBytes: -1}}, domain.KindInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compute(tt.team, plan, tt.start, tt.end, tt.usage, dec)
			if err == nil {
				t.Fatal("no error")
			}
			if k := domain.KindOf(err); k != tt.wantKind {
				t.Errorf("kind = %v, want %v (%v)", k, tt.wantKind, err)
			}
		})
	}
}
