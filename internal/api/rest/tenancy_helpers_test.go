package rest

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
)

// newTenancyHarness is a harness with teams, users, sessions, the audit log and billing
// served from fakes.
func newTenancyHarness(t *testing.T, opts ...Option) (*harness, *fake.Teams, *fake.Billing) {
	t.Helper()
	teams, bill := &fake.Teams{}, &fake.Billing{}
	opts = append([]Option{withAccounts(teams), WithBilling(bill, testInvoiceCSV)}, opts...)
	return newHarness(t, opts...), teams, bill
}

// withAccounts serves teams, users, sessions and the audit log from one fake.
func withAccounts(f *fake.Teams) Option {
	return func(o *options) {
		for _, opt := range []Option{WithTeams(f), WithUsers(f), WithSessions(f), WithAudit(f)} {
			opt(o)
		}
	}
}

// as makes testKey authenticate as p.
func (h *harness) as(p domain.Principal) {
	h.keys.authenticate = func(_ context.Context, secret string) (domain.Principal, error) {
		if secret != testKey {
			return domain.Principal{}, domain.Errorf(domain.KindUnauthorized, "invalid API key")
		}
		return p, nil
	}
}

// testInvoiceCSV is a stand-in for billing.WriteCSV: one line per invoice line.
func testInvoiceCSV(w io.Writer, inv *domain.Invoice) error {
	if _, err := fmt.Fprintf(w, "description,amount\n"); err != nil {
		return err
	}
	for _, l := range inv.Lines {
		if _, err := fmt.Fprintf(w, "%s,%s\n", l.Description, l.Amount); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "Total,%s\n", inv.Total)
	return err
}

var tenancyT0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func testTeam(id string) *domain.Team {
	return &domain.Team{ID: id, Name: "Team " + id, CreatedAt: tenancyT0,
		Quota:  domain.Quota{MaxSandboxes: 10, MaxCPUCores: 8.5, MaxMemoryMB: 16384, MaxDiskMB: 65536, RequestsPerMinute: 600},
		PlanID: "pro", SpendLimit: "250.00"}
}

func testUser(id string) *domain.User {
	return &domain.User{ID: id, TeamID: "team_a", Email: "ada@example.com", Name: "Ada", Role: domain.RoleMember,
		PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA", CreatedAt: tenancyT0, LastLoginAt: tenancyT0.Add(time.Hour)}
}

func ptr[T any](v T) *T { return &v }
