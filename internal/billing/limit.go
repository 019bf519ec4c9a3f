package billing

import (
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/warren-sh/warren/internal/domain"
)

// Spent returns what usage costs on plan so far in the billing period that now falls
// in: the total of that period's draft invoice, package fee included. The server
// compares it with the team's spending limit (ExceedsLimit).
func Spent(plan Plan, usage []domain.UsageRow, now time.Time) (decimal.Decimal, error) {
	start, end := Period(now)
	_, total, err := computeLines(plan.withDefaults(), start, end, usage)
	return total, err
}

// ParseSpendLimit reads a team's spending limit: "" means none (set is false); anything
// else must be a non-negative decimal amount. Errors are KindInvalid on "spend_limit".
func ParseSpendLimit(s string) (limit decimal.Decimal, set bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return decimal.Zero, false, nil
	}
	limit, err = decimal.NewFromString(s)
	if err != nil {
		return decimal.Zero, false, domain.Invalid("spend_limit", "spend_limit %q is not "+
			"a decimal amount; write it as a string like \"100\" or \"49.50\", or \"\" for no limit", s)
	}
	if limit.IsNegative() {
		return decimal.Zero, false, domain.Invalid("spend_limit", "spend_limit %s is "+
			"negative; use a positive amount, or \"\" for no limit", s)
	}
	return limit, true, nil
}

// ExceedsLimit reports whether total has reached the spending limit: true when a limit
// is set and total >= limit (so a limit of "0" allows no charges at all). An empty
// limit never is reached. A malformed limit is an error, as in ParseSpendLimit.
func ExceedsLimit(limit string, total decimal.Decimal) (bool, error) {
	l, set, err := ParseSpendLimit(limit)
	if err != nil || !set {
		return false, err
	}
	return total.GreaterThanOrEqual(l), nil
}
