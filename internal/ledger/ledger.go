// Package ledger answers the money questions on top of the store: usage reports, a
// team's invoices (issued once a billing period ends, kept as issued), and whether a
// team may start another sandbox under its plan and spending limit. Prices and the
// arithmetic live in package billing; this package finds the numbers and checks who may
// see them.
package ledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/warren-sh/warren/internal/billing"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// maxRange bounds a usage report, so that one request cannot scan years of buckets.
const maxRange = 366 * 24 * time.Hour

// maxInvoices bounds how many invoices Invoices lists: the draft and 23 ended periods.
const maxInvoices = 24

// Store is the part of domain.Store the ledger reads and writes.
type Store interface {
	GetTeam(ctx context.Context, id string) (*domain.Team, error)
	ListUsage(ctx context.Context, f domain.UsageFilter) ([]domain.UsageRow, error)
	SaveInvoice(ctx context.Context, inv *domain.Invoice) error
	ListInvoices(ctx context.Context, teamID string) ([]*domain.Invoice, error)
}

// Service implements domain.BillingService.
type Service struct {
	store   Store
	catalog *billing.Catalog
	now     func() time.Time
	log     *slog.Logger
}

var _ domain.BillingService = (*Service)(nil)

// New returns a ledger on store pricing with catalog. now and log may be nil.
func New(store Store, catalog *billing.Catalog, now func() time.Time, log *slog.Logger) (*Service, error) {
	if store == nil || catalog == nil {
		return nil, errors.New("ledger: store and catalog are required")
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, catalog: catalog, now: now, log: log.With(logkey.Subsystem, "ledger")}, nil
}

// Usage sums the caller's team's usage over [From, To), grouped. Buckets are per day:
// From is rounded down and To up to whole UTC days. The default range is the current
// billing period and the default grouping is by day.
func (s *Service) Usage(ctx context.Context, p domain.Principal, q domain.UsageQuery) (*domain.UsageReport, error) {
	if err := p.Need(domain.ScopeUsageRead); err != nil {
		return nil, err
	}
	if p.TeamID == "" {
		// The store reads an empty team as "every team": never let that through.
		return nil, domain.Errorf(domain.KindUnauthorized, "no team: authenticate with an API key or a console session")
	}
	if q.From.IsZero() && q.To.IsZero() {
		q.From, q.To = billing.Period(s.now())
	}
	if q.From.IsZero() {
		q.From = q.To.AddDate(0, -1, 0)
	}
	if q.To.IsZero() {
		q.To = s.now()
	}
	from, to := floorDay(q.From), ceilDay(q.To)
	// Compare before rounding, which would turn a reversed range within one day into that day.
	if !q.To.After(q.From) {
		return nil, domain.Invalid("to", "to (%s) must be after from (%s)", q.To.Format(time.RFC3339), q.From.Format(time.RFC3339))
	}
	if to.Sub(from) > maxRange {
		return nil, domain.Invalid("from", "the range is %d days: ask for at most 366 at a time", int(to.Sub(from).Hours()/24))
	}
	group := cmp.Or(q.GroupBy, "day")
	key, ok := groupKeys[group]
	if !ok {
		return nil, domain.Invalid("group_by", "group_by %q is not supported: use sandbox, day, template, day,template, day,sandbox or none", group)
	}
	rows, err := s.store.ListUsage(ctx, domain.UsageFilter{TeamID: p.TeamID, SandboxID: q.SandboxID, From: from, To: to})
	if err != nil {
		return nil, fmt.Errorf("reading usage: %w", err)
	}
	rep := &domain.UsageReport{From: from, To: to, GroupBy: group}
	index := map[string]int{}
	for _, r := range rows {
		rep.Total.Add(r)
		if group == "none" {
			continue
		}
		k, label := key(r)
		i, seen := index[k]
		if !seen {
			i = len(rep.Rows)
			index[k] = i
			rep.Rows = append(rep.Rows, label)
		}
		rep.Rows[i].Add(r)
	}
	slices.SortStableFunc(rep.Rows, func(a, b domain.UsageRow) int {
		if c := a.Day.Compare(b.Day); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.TemplateID, b.TemplateID), cmp.Compare(a.SandboxID, b.SandboxID))
	})
	return rep, nil
}

// groupKeys maps a grouping to the function giving a bucket's group key and the
// labelled, empty row that group's sums start from.
var groupKeys = map[string]func(domain.UsageRow) (string, domain.UsageRow){
	"sandbox": func(r domain.UsageRow) (string, domain.UsageRow) {
		return r.SandboxID, domain.UsageRow{SandboxID: r.SandboxID, TemplateID: r.TemplateID}
	},
	"day": func(r domain.UsageRow) (string, domain.UsageRow) {
		return r.Day.Format(time.DateOnly), domain.UsageRow{Day: r.Day}
	},
	"template": func(r domain.UsageRow) (string, domain.UsageRow) {
		return r.TemplateID, domain.UsageRow{TemplateID: r.TemplateID}
	},
	"none": func(domain.UsageRow) (string, domain.UsageRow) { return "", domain.UsageRow{} },
	// Series over time: one row per day and template, or per day and sandbox.
	"day,template": func(r domain.UsageRow) (string, domain.UsageRow) {
		return r.Day.Format(time.DateOnly) + "/" + r.TemplateID, domain.UsageRow{Day: r.Day, TemplateID: r.TemplateID}
	},
	"day,sandbox": func(r domain.UsageRow) (string, domain.UsageRow) {
		return r.Day.Format(time.DateOnly) + "/" + r.SandboxID, domain.UsageRow{Day: r.Day, SandboxID: r.SandboxID, TemplateID: r.TemplateID}
	},
}

func floorDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func ceilDay(t time.Time) time.Time {
	f := floorDay(t)
	if f.Equal(t.UTC()) {
		return f
	}
	return f.AddDate(0, 0, 1)
}

// Plans lists the price plans.
func (s *Service) Plans(context.Context) []domain.PlanInfo {
	out := make([]domain.PlanInfo, 0, len(s.catalog.Plans))
	for _, p := range s.catalog.Plans {
		out = append(out, PlanInfo(p))
	}
	return out
}

// PlanInfo is a plan as clients see it.
func PlanInfo(p billing.Plan) domain.PlanInfo {
	return domain.PlanInfo{ID: p.ID, Name: cmp.Or(p.Name, p.ID), Currency: cmp.Or(p.Currency, billing.DefaultCurrency),
		MonthlyPrice: p.MonthlyPrice.String(), PerMinute: p.PerMinute.String(), MinimumCharge: p.MinimumCharge.String(),
		PerCPUHour: p.PerCPUHour.String(), PerGBHour: p.PerGBHour.String(), PerGBMonthDisk: p.PerGBMonthDisk.String(),
		PerGBTraffic: p.PerGBTraffic.String(), IncludedHours: p.IncludedHours.String(), IncludedConcurrency: p.IncludedConcurrency}
}
