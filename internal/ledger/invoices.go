package ledger

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/warren-sh/warren/internal/billing"
	"github.com/warren-sh/warren/internal/domain"
)

// IssueGrace is how long after a period ends its invoice stays a draft, so that usage
// the meters book late (up to one sampling interval, or a server restart) is billed.
const IssueGrace = time.Hour

// Invoices returns the team's invoices, newest first: the current period's draft, then
// one per ended period since the team was created (at most maxInvoices). An ended
// period's invoice is computed and saved the first time it is asked for, and from then
// on read back as issued, so a later price change never rewrites a past bill.
func (s *Service) Invoices(ctx context.Context, p domain.Principal) ([]*domain.Invoice, error) {
	if err := p.Need(domain.ScopeUsageRead); err != nil {
		return nil, err
	}
	team, err := s.store.GetTeam(ctx, p.TeamID)
	if err != nil {
		return nil, err
	}
	saved, err := s.store.ListInvoices(ctx, team.ID)
	if err != nil {
		return nil, fmt.Errorf("reading invoices: %w", err)
	}
	now := s.now()
	cur, _ := billing.Period(now)
	first, _ := billing.Period(team.CreatedAt)
	var out []*domain.Invoice
	for start := cur; !start.Before(first) && len(out) < maxInvoices; start = start.AddDate(0, -1, 0) {
		inv, err := s.invoice(ctx, team, start, saved)
		if err != nil {
			return nil, err
		}
		out = append(out, inv)
	}
	return out, nil
}

// Invoice returns the team's invoice for a period "YYYY-MM".
func (s *Service) Invoice(ctx context.Context, p domain.Principal, period string) (*domain.Invoice, error) {
	if err := p.Need(domain.ScopeUsageRead); err != nil {
		return nil, err
	}
	start, _, err := billing.ParsePeriodKey(period)
	if err != nil {
		return nil, err
	}
	team, err := s.store.GetTeam(ctx, p.TeamID)
	if err != nil {
		return nil, err
	}
	cur, _ := billing.Period(s.now())
	first, _ := billing.Period(team.CreatedAt)
	if start.After(cur) || start.Before(first) {
		return nil, domain.Errorf(domain.KindNotFound, "no invoice for %s: the team's periods run from %s to %s",
			period, billing.PeriodKey(first), billing.PeriodKey(cur))
	}
	saved, err := s.store.ListInvoices(ctx, team.ID)
	if err != nil {
		return nil, fmt.Errorf("reading invoices: %w", err)
	}
	return s.invoice(ctx, team, start, saved)
}

// invoice returns the saved invoice of the period starting at start, or computes it
// (and saves it when the period has ended).
func (s *Service) invoice(ctx context.Context, team *domain.Team, start time.Time, saved []*domain.Invoice) (*domain.Invoice, error) {
	if i := slices.IndexFunc(saved, func(inv *domain.Invoice) bool { return inv.PeriodStart.Equal(start) }); i >= 0 {
		return saved[i], nil
	}
	plan, err := s.catalog.Plan(team.PlanID)
	if err != nil {
		return nil, fmt.Errorf("team %s's plan %q is not in the pricing catalog (fix WARREN_PLANS or the team's plan_id): %v", team.ID, team.PlanID, err)
	}
	_, end := billing.Period(start)
	rows, err := s.store.ListUsage(ctx, domain.UsageFilter{TeamID: team.ID, From: start, To: end})
	if err != nil {
		return nil, fmt.Errorf("reading usage: %w", err)
	}
	now := s.now()
	inv, err := billing.Compute(team, plan, start, end, rows, now)
	if err != nil {
		return nil, err
	}
	if inv.Final && now.Before(end.Add(IssueGrace)) {
		// The meters may still book the period's last interval: keep it a draft a while.
		inv.Final, inv.IssuedAt = false, time.Time{}
	}
	if inv.Final {
		if err := s.store.SaveInvoice(ctx, inv); err != nil {
			if !domain.IsKind(err, domain.KindConflict) {
				return nil, fmt.Errorf("issuing invoice %s: %w", inv.ID, err)
			}
			// Another request (or replica) issued it first: read theirs back.
			again, lerr := s.store.ListInvoices(ctx, team.ID)
			if lerr != nil {
				return nil, fmt.Errorf("reading invoices: %w", lerr)
			}
			if i := slices.IndexFunc(again, func(x *domain.Invoice) bool { return x.PeriodStart.Equal(start) }); i >= 0 {
				return again[i], nil
			}
			return nil, fmt.Errorf("issuing invoice %s: %w", inv.ID, err)
		}
	}
	return inv, nil
}

// Admit decides whether the team may start another sandbox: it refuses once the
// current period's charges reach the team's spending limit, and returns the quota to
// enforce, the team's quota tightened by its plan's included concurrency.
func (s *Service) Admit(ctx context.Context, team *domain.Team) (domain.Quota, error) {
	q := team.Quota
	plan, err := s.catalog.Plan(team.PlanID)
	if err != nil {
		return q, fmt.Errorf("team %s's plan %q is not in the pricing catalog (fix WARREN_PLANS or the team's plan_id): %v", team.ID, team.PlanID, err)
	}
	if c := plan.IncludedConcurrency; c > 0 && (q.MaxSandboxes == 0 || c < q.MaxSandboxes) {
		q.MaxSandboxes = c
	}
	return q, s.CheckSpend(ctx, team)
}

// CheckSpend refuses when the team's charges this period reached its spending limit.
func (s *Service) CheckSpend(ctx context.Context, team *domain.Team) error {
	limit, set, err := billing.ParseSpendLimit(team.SpendLimit)
	if err != nil || !set {
		return err
	}
	plan, err := s.catalog.Plan(team.PlanID)
	if err != nil {
		return fmt.Errorf("team %s's plan %q is not in the pricing catalog (fix WARREN_PLANS or the team's plan_id): %v", team.ID, team.PlanID, err)
	}
	now := s.now()
	start, end := billing.Period(now)
	rows, err := s.store.ListUsage(ctx, domain.UsageFilter{TeamID: team.ID, From: start, To: end})
	if err != nil {
		return fmt.Errorf("reading usage: %w", err)
	}
	spent, err := billing.Spent(plan, rows, now)
	if err != nil {
		return err
	}
	if spent.LessThan(limit) {
		return nil
	}
	cur := plan.Currency
	if cur == "" {
		cur = billing.DefaultCurrency
	}
	return &domain.Error{Kind: domain.KindQuotaExceeded,
		Message: fmt.Sprintf("spending limit reached: this period's charges are %s %s of a %s %s limit; new sandboxes are refused until a team admin raises spend_limit or the period ends",
			spent.StringFixed(2), cur, limit.StringFixed(2), cur),
		Err: &domain.QuotaError{Quota: "spending_limit", Limit: toFloat(limit), Used: toFloat(spent)}}
}

// toFloat is for the error body's numbers only; the message carries the exact amounts.
func toFloat(d decimal.Decimal) float64 {
	f, _ := d.Float64()
	return f
}
