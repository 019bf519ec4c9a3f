package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/warren-sh/warren/internal/domain"
)

// SaveInvoice stores inv. A second invoice for the same team and period start, or a
// taken id, is KindConflict; an unknown team is KindNotFound.
func (s *Store) SaveInvoice(ctx context.Context, inv *domain.Invoice) error {
	var e encoder
	args := []any{inv.ID, inv.TeamID, e.nanos("period_start", inv.PeriodStart), e.nanos("period_end", inv.PeriodEnd),
		boolInt(inv.Final), inv.Total, e.json("invoice", inv)}
	if e.err != nil {
		return fmt.Errorf("saving invoice %s: %w", inv.ID, e.err)
	}
	_, err := s.exec(ctx, `INSERT INTO invoices (id, team_id, period_start, period_end, final, total, body)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, args...)
	switch {
	case isUniqueViolation(err):
		return domain.Errorf(domain.KindConflict, "team %s already has an invoice for the period starting %s (or invoice id %q is taken)",
			inv.TeamID, inv.PeriodStart.UTC().Format("2006-01-02"), inv.ID)
	case isForeignKeyViolation(err):
		return domain.NotFound("team", inv.TeamID)
	case err != nil:
		return fmt.Errorf("saving invoice %s: %w", inv.ID, err)
	}
	return nil
}

// ListInvoices returns the team's saved invoices, newest period first.
func (s *Store) ListInvoices(ctx context.Context, teamID string) ([]*domain.Invoice, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT body FROM invoices WHERE team_id = ? ORDER BY period_start DESC, id DESC`, teamID)
	if err != nil {
		return nil, fmt.Errorf("listing invoices of team %s: %w", teamID, err)
	}
	invs, err := collect(rows, scanInvoice)
	if err != nil {
		return nil, fmt.Errorf("listing invoices of team %s: %w", teamID, err)
	}
	return invs, nil
}

func scanInvoice(r rowScanner) (*domain.Invoice, error) {
	var body string
	if err := r.Scan(&body); err != nil {
		return nil, err
	}
	var inv domain.Invoice
	if err := json.Unmarshal([]byte(body), &inv); err != nil {
		return nil, fmt.Errorf("decoding invoice: %w", err)
	}
	return &inv, nil
}
