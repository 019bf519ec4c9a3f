package sqlstore

import (
	"context"

	"github.com/warren-sh/warren/internal/domain"
)

// Invoices is the domain.InvoiceStore.
type Invoices struct{ db *db }

var _ domain.InvoiceStore = (*Invoices)(nil)

// SaveInvoice stores inv. A second invoice for the same team and period start, or a
// taken id, is KindConflict; an unknown team is KindNotFound.
func (s *Invoices) SaveInvoice(ctx context.Context, inv *domain.Invoice) error {
	e := encoder{d: s.db.d}
	args := []any{inv.ID, inv.TeamID, e.at("period_start", inv.PeriodStart), e.at("period_end", inv.PeriodEnd),
		inv.Final, inv.Total, e.json("invoice", inv)}
	if e.err != nil {
		return s.db.wrap(e.err, "saving invoice %s", inv.ID)
	}
	_, err := s.db.exec(ctx, `INSERT INTO invoices (id, team_id, period_start, period_end, final, total, body)
		VALUES (`+marks(7)+`)`, args...)
	if err != nil {
		return s.db.insertErr(err, inv.TeamID, domain.Errorf(domain.KindConflict,
			"team %s already has an invoice for the period starting %s (or invoice id %q is taken)",
			inv.TeamID, inv.PeriodStart.UTC().Format("2006-01-02"), inv.ID),
			"saving invoice %s", inv.ID)
	}
	return nil
}

// ListInvoices returns the team's saved invoices, newest period first.
func (s *Invoices) ListInvoices(ctx context.Context, teamID string) ([]*domain.Invoice, error) {
	return list(ctx, s.db, scanInvoice, "listing invoices of team "+teamID,
		`SELECT body FROM invoices WHERE team_id = ? ORDER BY period_start DESC, id DESC`, teamID)
}

func scanInvoice(_ Dialect, r rowScanner) (*domain.Invoice, error) {
	var inv domain.Invoice
	if err := r.Scan(scanJSON(&inv)); err != nil {
		return nil, err
	}
	return &inv, nil
}
