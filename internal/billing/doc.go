// Package billing turns metered usage into invoices. It is pure logic: pricing plans
// come from a configuration file (or the built-in defaults), usage comes in as
// domain.UsageRow buckets, and out come domain.Invoice values, JSON or CSV.
//
// Money is exact. Every price and amount is a shopspring decimal.Decimal, usage
// quantities are integers, and no floating-point number is used on the way from one to
// the other.
//
// # Billing periods
//
// A billing period is a calendar month in UTC, [first day 00:00, first day of the next
// month 00:00). Its key is "YYYY-MM" (see Period, PeriodKey and ParsePeriodKey).
//
// # Units
//
//   - Sandbox minutes are wall-clock time: wall_ms / 60,000.
//   - CPU-hours: cpu_us / 3,600,000,000.
//   - Memory GB-hours: memory_mb_s / (1,024 × 3,600); one GB is 1,024 MB.
//   - Disk GB-months: disk_mb_s / (1,024 × 2,592,000); one GB is 1,024 MB and, for this
//     unit only, a month is 30 days (2,592,000 s) whatever the calendar month's length.
//   - Traffic GB: (net_rx_bytes + net_tx_bytes) / 1,073,741,824; one GB is 1,024³ bytes
//     (a GiB), received and sent traffic alike.
//
// # How an invoice is computed
//
// Only usage rows whose Day lies in [period start, period end) count. The invoice has at
// most these lines, in this order:
//
//  1. The package fee: MonthlyPrice for the period, present whenever MonthlyPrice > 0.
//  2. Sandbox minutes beyond the included hours, at PerMinute.
//  3. Minimum charges: one MinimumCharge per sandbox whose billable minutes would cost
//     less than MinimumCharge.
//  4. CPU-hours at PerCPUHour, memory GB-hours at PerGBHour, disk GB-months at
//     PerGBMonthDisk, traffic GB at PerGBTraffic.
//
// A line whose unit price and quantity are both zero is left out; a line with a zero
// price but some use stays, so the invoice shows what was used.
//
// Included hours and the minimum charge combine as follows. Each sandbox's wall time in
// the period is summed over its rows. The plan's IncludedHours are then handed out to
// the sandboxes shortest first (ties by sandbox id), so that they cover as many short
// sandboxes entirely as possible and spare them a minimum charge; what a sandbox ran
// beyond what was handed to it is its billable time. A sandbox with no billable time
// costs nothing more. A sandbox with billable time b is charged max(b × PerMinute,
// MinimumCharge): when b × PerMinute (exactly) is less than MinimumCharge it is counted
// on the minimum-charge line, otherwise its minutes go on the sandbox-minutes line.
// Minimums are per sandbox and per period: a sandbox that runs across a month boundary
// can be charged a minimum in both months. Rows without a sandbox id count as one
// sandbox.
//
// # Rounding
//
// Each line's quantity is the exact quantity rounded half-up to at most 6 decimals
// (trailing zeros dropped, so "150" or "0.027778"); its amount is the printed quantity
// times the unit price, rounded half-up to 2 decimals (cents). That way every line can
// be checked by hand: amount = round(quantity × unit_price, 2). Only line amounts are
// rounded; the total is the sum of the line amounts.
//
// # Spending limits
//
// Spent gives the running charges of the current period (the draft invoice's total,
// package fee included) and ExceedsLimit says whether they have reached a team's
// spending limit.
package billing
