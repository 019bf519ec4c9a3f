package templates

import (
	"context"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// UsageStore is where template storage is booked (a domain.Store has it).
type UsageStore interface {
	GetMeter(ctx context.Context, sandboxID string) (*domain.Meter, error)
	RecordUsage(ctx context.Context, m *domain.Meter, deltas []domain.UsageDelta) error
}

// StorageUsageID is the usage id a team's template's storage is booked under (in
// place of a sandbox id; sandbox ids never hold a ':').
func StorageUsageID(teamID, templateID string) string { return "template:" + teamID + ":" + templateID }

// MeterStorage books the disk each team's built template holds as disk MB·s, from its
// last booking (its build, at first) to now, split by UTC day, on its
// StorageUsageID; plans price it like sandboxes' disk. Its meter row stays closed (no
// sandbox runs), and moves on with each booking, so a restart books nothing twice.
func (s *Service) MeterStorage(ctx context.Context, us UsageStore, now time.Time) error {
	ts, err := s.cfg.Store.ListTemplates(ctx, domain.AnyTeam)
	if err != nil {
		return err
	}
	now = now.UTC().Truncate(time.Millisecond)
	for _, t := range ts {
		if t.TeamID == "" || !t.Ready || t.SizeBytes <= 0 {
			continue
		}
		id := StorageUsageID(t.TeamID, t.ID)
		from := t.BuiltAt
		m, err := us.GetMeter(ctx, id)
		switch {
		case err == nil:
			// A template deleted and made again starts anew.
			from = m.SampledAt
			if t.CreatedAt.After(from) {
				from = t.CreatedAt
			}
		case domain.IsKind(err, domain.KindNotFound):
			m = &domain.Meter{SandboxID: id, TeamID: t.TeamID, StartedAt: from}
		default:
			return err
		}
		from = from.UTC().Truncate(time.Millisecond)
		if !now.After(from) {
			continue
		}
		mb := (t.SizeBytes + domain.MiB - 1) / domain.MiB
		var deltas []domain.UsageDelta
		for a := from; a.Before(now); {
			day := time.Date(a.Year(), a.Month(), a.Day(), 0, 0, 0, 0, time.UTC)
			b := day.AddDate(0, 0, 1)
			if b.After(now) {
				b = now
			}
			if ms := b.Sub(a).Milliseconds(); ms > 0 {
				deltas = append(deltas, domain.UsageDelta{SandboxID: id, TeamID: t.TeamID, TemplateID: t.ID, Day: day,
					DiskMBSeconds: mb * ms / 1000})
			}
			a = b
		}
		m.SampledAt, m.ClosedAt = now, now
		if err := us.RecordUsage(ctx, m, deltas); err != nil {
			return err
		}
	}
	return nil
}
