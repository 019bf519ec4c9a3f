package postgres

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
	args := []any{inv.ID, inv.TeamID, e.at("period_start", inv.PeriodStart), e.at("period_end", inv.PeriodEnd),
		inv.Final, inv.Total, e.jsonb("invoice", inv)}
	if e.err != nil {
		return fmt.Errorf("saving invoice %s: %w", inv.ID, e.err)
	}
	_, err := s.exec(ctx, `INSERT INTO invoices (id, team_id, period_start, period_end, final, total, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, args...)
	switch {
	case isUniqueViolation(err):
		return domain.Errorf(domain.KindConflict, "team %s already has an invoice for the period starting %s (or invoice id %q is taken)",
			inv.TeamID, inv.PeriodStart.UTC().Format("2006-01-02"), inv.ID)
	case isForeignKeyViolation(err):
		return domain.NotFound("team", inv.TeamID)
	case err != nil:
		return fmt.Errorf("saving invoice %s: %w", inv.ID, classify(err))
	}
	return nil
}

// ListInvoices returns the team's saved invoices, newest period first.
func (s *Store) ListInvoices(ctx context.Context, teamID string) ([]*domain.Invoice, error) {
	rows, err := s.pool.Query(ctx, `SELECT body FROM invoices WHERE team_id = $1 ORDER BY period_start DESC, id DESC`, teamID)
	if err != nil {
		return nil, fmt.Errorf("listing invoices of team %s: %w", teamID, classify(err))
	}
	invs, err := collect(rows, scanInvoice)
	if err != nil {
		return nil, fmt.Errorf("listing invoices of team %s: %w", teamID, classify(err))
	}
	return invs, nil
}

func scanInvoice(r rowScanner) (*domain.Invoice, error) {
	var body []byte
	if err := r.Scan(&body); err != nil {
		return nil, err
	}
	var inv domain.Invoice
	if err := json.Unmarshal(body, &inv); err != nil {
		return nil, fmt.Errorf("decoding invoice: %w", err)
	}
	return &inv, nil
}
