package cli

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/api/rest"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
)

// tenancyState backs fake.Teams and fake.Billing with in-memory teams, users and
// audit entries, and records what the CLI asked for.
type tenancyState struct {
	mu         sync.Mutex
	teams      map[string]*domain.Team
	users      map[string]*domain.User
	passwords  map[string]string // email -> password
	audit      []*domain.AuditEntry
	createSpec domain.TeamSpec
	patches    []domain.TeamSpec
	userSpec   domain.UserSpec
	userPatch  domain.UserPatch
	usageQ     domain.UsageQuery
	auditF     []domain.AuditFilter
	seq        int
}

// defaultQuota is what the fake gives a new team, like the server's configured default.
var defaultQuota = domain.Quota{MaxSandboxes: 10, MaxCPUCores: 8, MaxMemoryMB: 16384, MaxDiskMB: 65536}

var tt0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// newTenancyEnv is newTestEnv with the tenancy, usage and billing API served by fakes.
func newTenancyEnv(t *testing.T) (*testEnv, *tenancyState) {
	t.Helper()
	st := &tenancyState{teams: map[string]*domain.Team{}, users: map[string]*domain.User{}, passwords: map[string]string{}}
	for i := 1; i <= 5; i++ {
		st.audit = append(st.audit, &domain.AuditEntry{ID: int64(i), TeamID: "team_a", At: tt0.Add(time.Duration(i) * time.Minute),
			ActorType: "key", ActorID: "key_a", Action: []string{"sandbox.create", "sandbox.kill"}[i%2], Target: fmt.Sprint("sbx", i), Status: 201, RemoteAddr: "10.0.0.1", RequestID: fmt.Sprint("req_", i)})
	}
	svc, accounts := newMemService(), st.teamsFake()
	srv := httptest.NewServer(restServer(svc, rest.WithTeams(accounts), rest.WithUsers(accounts), rest.WithSessions(accounts),
		rest.WithAudit(accounts), rest.WithBilling(st.billingFake(), writeInvoiceCSV)))
	t.Cleanup(srv.Close)
	return &testEnv{t: t, svc: svc, url: srv.URL, vars: map[string]string{"WARREN_API_URL": srv.URL, "WARREN_API_KEY": keyA}}, st
}

func (st *tenancyState) teamsFake() *fake.Teams {
	return &fake.Teams{
		CreateTeamFn: func(_ context.Context, _ domain.Principal, spec domain.TeamSpec) (*domain.Team, error) {
			st.mu.Lock()
			defer st.mu.Unlock()
			st.createSpec = spec
			st.seq++
			tm := &domain.Team{ID: fmt.Sprint("team_", st.seq), Name: spec.Name, CreatedAt: tt0, Quota: defaultQuota, PlanID: "free"}
			st.apply(tm, spec)
			st.teams[tm.ID] = tm
			cp := *tm
			return &cp, nil
		},
		ListTeamsFn: func(context.Context, domain.Principal) ([]*domain.Team, error) {
			st.mu.Lock()
			defer st.mu.Unlock()
			var out []*domain.Team
			for _, tm := range st.teams {
				cp := *tm
				out = append(out, &cp)
			}
			sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
			return out, nil
		},
		GetTeamFn: func(_ context.Context, _ domain.Principal, id string) (*domain.Team, domain.QuotaUsage, error) {
			st.mu.Lock()
			defer st.mu.Unlock()
			tm, ok := st.teams[id]
			if !ok {
				return nil, domain.QuotaUsage{}, domain.NotFound("team", id)
			}
			cp := *tm
			return &cp, domain.QuotaUsage{Sandboxes: 1, CPUCores: 0.5, MemoryMB: 512, DiskMB: 1024}, nil
		},
		UpdateTeamFn: func(_ context.Context, _ domain.Principal, id string, patch domain.TeamSpec) (*domain.Team, error) {
			st.mu.Lock()
			defer st.mu.Unlock()
			tm, ok := st.teams[id]
			if !ok {
				return nil, domain.NotFound("team", id)
			}
			st.patches = append(st.patches, patch)
			st.apply(tm, patch)
			cp := *tm
			return &cp, nil
		},
		CreateUserFn: func(_ context.Context, p domain.Principal, spec domain.UserSpec) (*domain.User, error) {
			st.mu.Lock()
			defer st.mu.Unlock()
			st.userSpec = spec
			st.seq++
			team := spec.TeamID
			if team == "" {
				team = p.TeamID
			}
			u := &domain.User{ID: fmt.Sprint("user_", st.seq), TeamID: team, Email: spec.Email, Name: spec.Name, Role: spec.Role, CreatedAt: tt0}
			st.users[u.ID], st.passwords[spec.Email] = u, spec.Password
			cp := *u
			return &cp, nil
		},
		GetUserFn: func(_ context.Context, _ domain.Principal, id string) (*domain.User, error) {
			return st.user(id)
		},
		ListUsersFn: func(_ context.Context, _ domain.Principal, teamID string) ([]*domain.User, error) {
			st.mu.Lock()
			defer st.mu.Unlock()
			out := []*domain.User{}
			for _, u := range st.users {
				if teamID == "" || u.TeamID == teamID {
					cp := *u
					out = append(out, &cp)
				}
			}
			sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
			return out, nil
		},
		UpdateUserFn: func(_ context.Context, _ domain.Principal, id string, patch domain.UserPatch) (*domain.User, error) {
			u, err := st.user(id)
			if err != nil {
				return nil, err
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			st.userPatch = patch
			if patch.Role != nil {
				u.Role = *patch.Role
			}
			if patch.Name != nil {
				u.Name = *patch.Name
			}
			st.users[id] = u
			return u, nil
		},
		DeleteUserFn: func(_ context.Context, _ domain.Principal, id string) error {
			if _, err := st.user(id); err != nil {
				return err
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			delete(st.users, id)
			return nil
		},
		LoginFn:  st.login,
		AuditFn:  st.auditPage,
		RecordFn: func(context.Context, *domain.AuditEntry) {},
	}
}

// apply sets the fields a spec gives. Preconditions: st.mu held.
func (st *tenancyState) apply(tm *domain.Team, spec domain.TeamSpec) {
	if spec.Name != "" {
		tm.Name = spec.Name
	}
	if spec.Quota != nil {
		tm.Quota = tm.Quota.Apply(spec.Quota)
	}
	if spec.PlanID != nil {
		tm.PlanID = *spec.PlanID
	}
	if spec.SpendLimit != nil {
		tm.SpendLimit = *spec.SpendLimit
	}
}

func (st *tenancyState) user(id string) (*domain.User, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	u, ok := st.users[id]
	if !ok {
		return nil, domain.NotFound("user", id)
	}
	cp := *u
	return &cp, nil
}

func (st *tenancyState) login(_ context.Context, email, password string) (*domain.Session, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if pw, ok := st.passwords[email]; !ok || pw != password {
		return nil, domain.Errorf(domain.KindUnauthorized, "wrong email or password")
	}
	for _, u := range st.users {
		if u.Email == email {
			cp := *u
			tm := st.teams[u.TeamID]
			if tm == nil {
				tm = &domain.Team{ID: u.TeamID, Name: "team " + u.TeamID}
			}
			return &domain.Session{Token: "ws_session_token", ExpiresAt: tt0.Add(12 * time.Hour), User: &cp, Team: tm}, nil
		}
	}
	return nil, domain.Errorf(domain.KindUnauthorized, "wrong email or password")
}

// auditPage returns the newest entries before f.BeforeID, f.Limit of them (default 100).
func (st *tenancyState) auditPage(_ context.Context, _ domain.Principal, f domain.AuditFilter) ([]*domain.AuditEntry, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.auditF = append(st.auditF, f)
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	var out []*domain.AuditEntry
	for i := len(st.audit) - 1; i >= 0 && len(out) < limit; i-- {
		e := st.audit[i]
		if (f.BeforeID == 0 || e.ID < f.BeforeID) && (f.Action == "" || e.Action == f.Action) && !e.At.Before(f.Since) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (st *tenancyState) billingFake() *fake.Billing {
	return &fake.Billing{
		UsageFn: func(_ context.Context, _ domain.Principal, q domain.UsageQuery) (*domain.UsageReport, error) {
			st.mu.Lock()
			st.usageQ = q
			st.mu.Unlock()
			row := domain.UsageRow{SandboxID: "sbx1", TemplateID: "base", Day: tt0, WallMS: 3_600_000, CPUMicros: 1_500_000,
				MemMBSeconds: 512 * 3600, DiskMBSeconds: 1024 * 3600, NetRxBytes: 2048, NetTxBytes: 1 << 20}
			return &domain.UsageReport{From: tt0, To: tt0.AddDate(0, 1, 0), GroupBy: q.GroupBy, Rows: []domain.UsageRow{row}, Total: row}, nil
		},
		PlansFn: func(context.Context) []domain.PlanInfo {
			return []domain.PlanInfo{{ID: "pro", Name: "Pro", Currency: "EUR", MonthlyPrice: "20", PerCPUHour: "0.04", IncludedConcurrency: 5}}
		},
		InvoicesFn: func(context.Context, domain.Principal) ([]*domain.Invoice, error) {
			return []*domain.Invoice{testInvoice("2026-11", false), testInvoice("2026-10", true)}, nil
		},
		InvoiceFn: func(_ context.Context, _ domain.Principal, period string) (*domain.Invoice, error) {
			if period != "2026-10" && period != "2026-11" {
				return nil, domain.NotFound("invoice", period)
			}
			return testInvoice(period, period == "2026-10"), nil
		},
	}
}

func testInvoice(period string, final bool) *domain.Invoice {
	start, _ := time.Parse("2006-01", period)
	inv := &domain.Invoice{ID: "inv_" + period, TeamID: "team_a", PlanID: "pro", Currency: "EUR", PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0),
		Lines: []domain.InvoiceLine{{Description: "Pro plan", Quantity: "1", Unit: "month", UnitPrice: "20.00", Amount: "20.00"},
			{Description: "CPU", Quantity: "12.5", Unit: "cpu-hour", UnitPrice: "0.04", Amount: "0.50"}},
		Total: "20.50", Final: final}
	if final {
		inv.IssuedAt = start.AddDate(0, 1, 0)
	}
	return inv
}

// writeInvoiceCSV is the CSV writer the fake server uses.
func writeInvoiceCSV(w io.Writer, inv *domain.Invoice) error {
	if _, err := fmt.Fprintln(w, "description,quantity,unit,unit_price,amount"); err != nil {
		return err
	}
	for _, l := range inv.Lines {
		fmt.Fprintf(w, "%s,%s,%s,%s,%s\n", l.Description, l.Quantity, l.Unit, l.UnitPrice, l.Amount)
	}
	_, err := fmt.Fprintf(w, "Total,,,,%s\n", inv.Total)
	return err
}
