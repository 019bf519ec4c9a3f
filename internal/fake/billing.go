package fake

import (
	"context"

	"github.com/warren-sh/warren/internal/domain"
)

// Billing is a domain.BillingService. An unset PlansFn lists no plans and an unset
// CheckSpendFn admits every team: neither can report ErrNotSet usefully to a caller
// that does not expect to be refused.
type Billing struct {
	UsageFn      func(ctx context.Context, p domain.Principal, q domain.UsageQuery) (*domain.UsageReport, error)
	PlansFn      func(ctx context.Context) []domain.PlanInfo
	InvoicesFn   func(ctx context.Context, p domain.Principal) ([]*domain.Invoice, error)
	InvoiceFn    func(ctx context.Context, p domain.Principal, period string) (*domain.Invoice, error)
	CheckSpendFn func(ctx context.Context, team *domain.Team) error
}

var _ domain.BillingService = (*Billing)(nil)

func (f *Billing) Usage(ctx context.Context, p domain.Principal, q domain.UsageQuery) (*domain.UsageReport, error) {
	if f.UsageFn == nil {
		return nil, ErrNotSet
	}
	return f.UsageFn(ctx, p, q)
}

func (f *Billing) Plans(ctx context.Context) []domain.PlanInfo {
	if f.PlansFn == nil {
		return nil
	}
	return f.PlansFn(ctx)
}

func (f *Billing) Invoices(ctx context.Context, p domain.Principal) ([]*domain.Invoice, error) {
	if f.InvoicesFn == nil {
		return nil, ErrNotSet
	}
	return f.InvoicesFn(ctx, p)
}

func (f *Billing) Invoice(ctx context.Context, p domain.Principal, period string) (*domain.Invoice, error) {
	if f.InvoiceFn == nil {
		return nil, ErrNotSet
	}
	return f.InvoiceFn(ctx, p, period)
}

func (f *Billing) CheckSpend(ctx context.Context, team *domain.Team) error {
	if f.CheckSpendFn == nil {
		return nil
	}
	return f.CheckSpendFn(ctx, team)
}
