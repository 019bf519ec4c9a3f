package billing

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/warren-sh/warren/internal/domain"
)

// Decimal places of printed quantities and of money.
const (
	quantityPlaces = 6
	moneyPlaces    = 2
)

// Divisors that turn integer usage into billed units (see the package documentation).
var (
	msPerMinute        = decimal.NewFromInt(60_000)
	msPerHour          = decimal.NewFromInt(3_600_000)
	microsPerHour      = decimal.NewFromInt(3_600_000_000)
	mbSecondsPerGBHour = decimal.NewFromInt(1024 * 3600)
	// A disk GB-month is 1,024 MB held for 30 days, whatever the month's length.
	mbSecondsPerGBMonth = decimal.NewFromInt(1024 * 2_592_000)
	bytesPerGB          = decimal.NewFromInt(1 << 30)
)

// Compute bills a team's usage of [start, end) on plan. usage holds per-(sandbox, day)
// buckets; rows whose Day is outside the period are ignored. now decides whether the
// invoice is final (the period has ended) or a draft; a final invoice is issued at the
// period's end, so computing it again gives the same invoice. The rules are in the
// package documentation.
func Compute(team *domain.Team, plan Plan, start, end time.Time, usage []domain.UsageRow, now time.Time) (*domain.Invoice, error) {
	if team == nil {
		return nil, fmt.Errorf("billing: computing an invoice without a team")
	}
	if !start.Before(end) {
		return nil, domain.Invalid("period", "billing period start %s is not before its end %s",
			start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	plan = plan.withDefaults()
	lines, total, err := computeLines(plan, start, end, usage)
	if err != nil {
		return nil, fmt.Errorf("billing team %s for %s: %w", team.ID, PeriodKey(start), err)
	}
	inv := &domain.Invoice{
		ID:          "inv_" + team.ID + "_" + PeriodKey(start),
		TeamID:      team.ID,
		PlanID:      plan.ID,
		Currency:    plan.Currency,
		PeriodStart: start.UTC(),
		PeriodEnd:   end.UTC(),
		Lines:       lines,
		Total:       total.StringFixed(moneyPlaces),
		Final:       !now.Before(end),
	}
	if inv.Final {
		inv.IssuedAt = end.UTC()
	}
	return inv, nil
}

// periodUsage is the usage of one period, summed.
type periodUsage struct {
	wallMS   map[string]decimal.Decimal // by sandbox id
	cpuUS    decimal.Decimal
	memMBs   decimal.Decimal
	diskMBs  decimal.Decimal
	netBytes decimal.Decimal
}

// sumUsage adds up the rows with Day in [start, end). Sums are decimals so that no
// amount of usage can overflow.
func sumUsage(start, end time.Time, usage []domain.UsageRow) (periodUsage, error) {
	u := periodUsage{wallMS: map[string]decimal.Decimal{}}
	for _, r := range usage {
		if r.Day.Before(start) || !r.Day.Before(end) {
			continue
		}
		if r.WallMS < 0 || r.CPUMicros < 0 || r.MemMBSeconds < 0 || r.DiskMBSeconds < 0 ||
			r.NetRxBytes < 0 || r.NetTxBytes < 0 {
			return u, fmt.Errorf("usage of sandbox %q on %s has a negative quantity: %+v",
				r.SandboxID, r.Day.Format(time.DateOnly), r)
		}
		u.wallMS[r.SandboxID] = u.wallMS[r.SandboxID].Add(decimal.NewFromInt(r.WallMS))
		u.cpuUS = u.cpuUS.Add(decimal.NewFromInt(r.CPUMicros))
		u.memMBs = u.memMBs.Add(decimal.NewFromInt(r.MemMBSeconds))
		u.diskMBs = u.diskMBs.Add(decimal.NewFromInt(r.DiskMBSeconds))
		u.netBytes = u.netBytes.Add(decimal.NewFromInt(r.NetRxBytes)).
			Add(decimal.NewFromInt(r.NetTxBytes))
	}
	return u, nil
}

// computeLines returns the invoice lines of plan for the usage of [start, end) and their
// total. plan has its defaults filled in.
func computeLines(plan Plan, start, end time.Time, usage []domain.UsageRow) ([]domain.InvoiceLine, decimal.Decimal, error) {
	u, err := sumUsage(start, end, usage)
	if err != nil {
		return nil, decimal.Zero, err
	}
	b := invoiceBuilder{lines: []domain.InvoiceLine{}}
	if plan.MonthlyPrice.IsPositive() {
		b.add(packageDescription(plan, start), decimal.NewFromInt(1), "month", plan.MonthlyPrice)
	}
	billedMS, underMinimum := splitMinutes(plan, u.wallMS)
	desc := "Sandbox minutes"
	if plan.IncludedHours.IsPositive() {
		desc = fmt.Sprintf("Sandbox minutes beyond the %s included hours", plan.IncludedHours)
	}
	b.metered(desc, billedMS, msPerMinute, "minute", plan.PerMinute)
	if underMinimum > 0 {
		b.add(fmt.Sprintf("Minimum charge per sandbox whose minutes cost less than %s",
			plan.MinimumCharge), decimal.NewFromInt(underMinimum), "sandbox", plan.MinimumCharge)
	}
	b.metered("CPU time", u.cpuUS, microsPerHour, "CPU-hour", plan.PerCPUHour)
	b.metered("Memory (1 GB = 1024 MB)", u.memMBs, mbSecondsPerGBHour, "GB-hour", plan.PerGBHour)
	b.metered("Disk (1 GB = 1024 MB, 1 month = 30 days)", u.diskMBs, mbSecondsPerGBMonth,
		"GB-month", plan.PerGBMonthDisk)
	b.metered("Network traffic in + out (1 GB = 1024^3 bytes)", u.netBytes, bytesPerGB,
		"GB", plan.PerGBTraffic)
	return b.lines, b.total, nil
}

// splitMinutes hands the plan's included hours out to the sandboxes, shortest first
// (ties by id), and sorts each sandbox's remaining billable time: sandboxes whose
// billable minutes cost at least the minimum charge add them to billedMS; the others
// are counted in underMinimum and pay the minimum charge instead.
func splitMinutes(plan Plan, wallMS map[string]decimal.Decimal) (billedMS decimal.Decimal, underMinimum int64) {
	ids := make([]string, 0, len(wallMS))
	for id := range wallMS {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		if c := wallMS[a].Cmp(wallMS[b]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	pool := plan.IncludedHours.Mul(msPerHour)
	// Minimum charge in "price × ms" units, so that the comparison below is exact:
	// billable/60000 × PerMinute < MinimumCharge  ⇔  billable × PerMinute < MinimumCharge × 60000.
	minimum := plan.MinimumCharge.Mul(msPerMinute)
	for _, id := range ids {
		billable := wallMS[id]
		covered := decimal.Min(billable, pool)
		pool = pool.Sub(covered)
		billable = billable.Sub(covered)
		if !billable.IsPositive() {
			continue
		}
		if plan.MinimumCharge.IsPositive() && billable.Mul(plan.PerMinute).LessThan(minimum) {
			underMinimum++
			continue
		}
		billedMS = billedMS.Add(billable)
	}
	return billedMS, underMinimum
}

func packageDescription(plan Plan, start time.Time) string {
	s := fmt.Sprintf("%s plan, %s", plan.Name, PeriodKey(start))
	if plan.IncludedHours.IsPositive() {
		s += fmt.Sprintf(", %s sandbox-hours included", plan.IncludedHours)
	}
	if plan.IncludedConcurrency > 0 {
		s += fmt.Sprintf(", up to %d sandboxes at once", plan.IncludedConcurrency)
	}
	return s
}

// invoiceBuilder collects lines and their total.
type invoiceBuilder struct {
	lines []domain.InvoiceLine
	total decimal.Decimal
}

// metered adds a line for amount/per units at price, the quantity rounded half-up to
// quantityPlaces; a line with neither a price nor a quantity is left out.
func (b *invoiceBuilder) metered(desc string, amount, per decimal.Decimal, unit string, price decimal.Decimal) {
	qty := amount.DivRound(per, quantityPlaces)
	if qty.IsZero() && price.IsZero() {
		return
	}
	b.add(desc, qty, unit, price)
}

// add adds a line of qty × price, rounded half-up to the cent.
func (b *invoiceBuilder) add(desc string, qty decimal.Decimal, unit string, price decimal.Decimal) {
	amount := qty.Mul(price).Round(moneyPlaces)
	b.lines = append(b.lines, domain.InvoiceLine{
		Description: desc,
		Quantity:    qty.String(),
		Unit:        unit,
		UnitPrice:   price.String(),
		Amount:      amount.StringFixed(moneyPlaces),
	})
	b.total = b.total.Add(amount)
}
