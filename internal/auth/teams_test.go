package auth

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

var (
	defaultQuota = domain.Quota{MaxSandboxes: 5, MaxCPUCores: 8, MaxMemoryMB: 8192, MaxDiskMB: 20000, RequestsPerMinute: 300}
	knownPlans   = []string{"free", "pro"}
)

func checkPlan(id string) error {
	if !slices.Contains(knownPlans, id) {
		return domain.Errorf(domain.KindNotFound, "plan %q does not exist: use free or pro", id)
	}
	return nil
}

func newTeamFixture(t *testing.T) *fixture {
	return newFixture(t, WithTeamDefaults(defaultQuota, "free", checkPlan), WithRuntimes([]string{"gvisor", "runc"}))
}

func ptr[T any](v T) *T { return &v }

func TestCreateTeam(t *testing.T) {
	f := newTeamFixture(t)
	ctx := t.Context()
	q := domain.Quota{MaxSandboxes: 1, RequestsPerMinute: 10}
	tests := []struct {
		name string
		spec domain.TeamSpec
		want domain.Team // ID and CreatedAt are checked apart
	}{
		{"defaults", domain.TeamSpec{Name: "acme"}, domain.Team{Name: "acme", Quota: defaultQuota, PlanID: "free"}},
		{"name trimmed", domain.TeamSpec{Name: "  acme 2 "}, domain.Team{Name: "acme 2", Quota: defaultQuota, PlanID: "free"}},
		{"own quota", domain.TeamSpec{Name: "small", Quota: domain.FullPatch(q)}, domain.Team{Name: "small", Quota: q, PlanID: "free"}},
		{"unlimited quota", domain.TeamSpec{Name: "big", Quota: domain.FullPatch(domain.Quota{})}, domain.Team{Name: "big", PlanID: "free"}},
		{"own plan", domain.TeamSpec{Name: "payer", PlanID: ptr("pro")}, domain.Team{Name: "payer", Quota: defaultQuota, PlanID: "pro"}},
		{"server default plan", domain.TeamSpec{Name: "plain", PlanID: ptr("")}, domain.Team{Name: "plain", Quota: defaultQuota}},
		{"spend limit", domain.TeamSpec{Name: "capped", SpendLimit: ptr(" 49.99 ")}, domain.Team{Name: "capped", Quota: defaultQuota, PlanID: "free", SpendLimit: "49.99"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.ks.Teams.CreateTeam(ctx, f.admin, tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID == "" || !got.CreatedAt.Equal(f.clock.now()) {
				t.Errorf("team id %q created %v; want an id, created %v", got.ID, got.CreatedAt, f.clock.now())
			}
			tc.want.ID, tc.want.CreatedAt = got.ID, got.CreatedAt
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("CreateTeam = %+v, want %+v", *got, tc.want)
			}
			stored, err := f.store.GetTeam(ctx, got.ID)
			if err != nil || stored.Name != tc.want.Name || stored.Quota != tc.want.Quota ||
				stored.PlanID != tc.want.PlanID || stored.SpendLimit != tc.want.SpendLimit {
				t.Errorf("stored team = %+v, %v; want %+v", stored, err, tc.want)
			}
		})
	}
}

func TestCreateTeamNeedsPlatformAdmin(t *testing.T) {
	f := newTeamFixture(t)
	ctx := t.Context()
	for _, p := range []domain.Principal{
		f.a, // a team admin: every team scope, but not a platform admin
		{TeamID: "team-a", Scopes: []domain.Scope{domain.ScopeTeamWrite}},
		{TeamID: "team-a", UserID: "u", Scopes: viewerScopes},
		{},
	} {
		_, err := f.ks.Teams.CreateTeam(ctx, p, domain.TeamSpec{Name: "x"})
		wantKind(t, "CreateTeam by a non-admin", err, domain.KindForbidden, "")
		_, err = f.ks.Teams.UpdateTeam(ctx, p, "team-a", domain.TeamSpec{Name: "x"})
		wantKind(t, "UpdateTeam by a non-admin", err, domain.KindForbidden, "")
	}
	teams, err := f.store.ListTeams(ctx)
	if err != nil || len(teams) != 3 {
		t.Errorf("teams after refusals: %d (%v), want 3", len(teams), err)
	}
	if got, _ := f.store.GetTeam(ctx, "team-a"); got.Name != "team-a" {
		t.Errorf("team-a renamed to %q by a refused update", got.Name)
	}
}

// badTeamSpecs are refused by CreateTeam and UpdateTeam alike, naming the field.
var badTeamSpecs = []struct {
	name  string
	spec  domain.TeamSpec
	field string
}{
	{"blank name", domain.TeamSpec{Name: "   "}, "name"},
	{"long name", domain.TeamSpec{Name: strings.Repeat("n", 101)}, "name"},
	{"control in name", domain.TeamSpec{Name: "a\tb"}, "name"},
	{"negative sandboxes", domain.TeamSpec{Name: "x", Quota: domain.FullPatch(domain.Quota{MaxSandboxes: -1})}, "quota.max_sandboxes"},
	{"negative cores", domain.TeamSpec{Name: "x", Quota: domain.FullPatch(domain.Quota{MaxCPUCores: -0.5})}, "quota.max_cpu_cores"},
	{"negative memory", domain.TeamSpec{Name: "x", Quota: domain.FullPatch(domain.Quota{MaxMemoryMB: -1})}, "quota.max_memory_mb"},
	{"negative disk", domain.TeamSpec{Name: "x", Quota: domain.FullPatch(domain.Quota{MaxDiskMB: -1})}, "quota.max_disk_mb"},
	{"negative rate", domain.TeamSpec{Name: "x", Quota: domain.FullPatch(domain.Quota{RequestsPerMinute: -60})}, "quota.requests_per_minute"},
	{"unknown plan", domain.TeamSpec{Name: "x", PlanID: ptr("platinum")}, "plan_id"},
	{"spend limit words", domain.TeamSpec{Name: "x", SpendLimit: ptr("fifty")}, "spend_limit"},
	{"spend limit negative", domain.TeamSpec{Name: "x", SpendLimit: ptr("-5")}, "spend_limit"},
	{"spend limit exponent", domain.TeamSpec{Name: "x", SpendLimit: ptr("1e3")}, "spend_limit"},
	{"runtime not enabled", domain.TeamSpec{Name: "x", AllowedRuntimes: ptr([]string{"gvisor", "kata"})}, "allowed_runtimes"},
	{"runtime name with a comma", domain.TeamSpec{Name: "x", AllowedRuntimes: ptr([]string{"gvisor,runc"})}, "allowed_runtimes"},
	{"spend limit comma", domain.TeamSpec{Name: "x", SpendLimit: ptr("49,99")}, "spend_limit"},
	{"spend limit currency", domain.TeamSpec{Name: "x", SpendLimit: ptr("$50")}, "spend_limit"},
	{"spend limit bare point", domain.TeamSpec{Name: "x", SpendLimit: ptr("50.")}, "spend_limit"},
	{"spend limit too precise", domain.TeamSpec{Name: "x", SpendLimit: ptr("1.1234567")}, "spend_limit"},
	{"spend limit too large", domain.TeamSpec{Name: "x", SpendLimit: ptr("1234567890123")}, "spend_limit"},
}

func TestCreateTeamInvalid(t *testing.T) {
	f := newTeamFixture(t)
	ctx := t.Context()
	specs := append(badTeamSpecs[:len(badTeamSpecs):len(badTeamSpecs)],
		struct {
			name  string
			spec  domain.TeamSpec
			field string
		}{"no name", domain.TeamSpec{}, "name"})
	for _, tc := range specs {
		t.Run(tc.name, func(t *testing.T) {
			team, err := f.ks.Teams.CreateTeam(ctx, f.admin, tc.spec)
			wantKind(t, "CreateTeam", err, domain.KindInvalid, tc.field)
			if team != nil {
				t.Errorf("refused CreateTeam returned %+v", team)
			}
		})
	}
	if teams, _ := f.store.ListTeams(ctx); len(teams) != 3 {
		t.Errorf("%d teams after invalid creations, want 3", len(teams))
	}
	// The plan check's message reaches the client.
	_, err := f.ks.Teams.CreateTeam(ctx, f.admin, domain.TeamSpec{Name: "x", PlanID: ptr("platinum")})
	if msg := domain.PublicMessage(err); !strings.Contains(msg, "free or pro") {
		t.Errorf("unknown plan message %q does not pass on the plan check's advice", msg)
	}
}

func TestSpendLimitAccepted(t *testing.T) {
	f := newTeamFixture(t)
	for _, v := range []string{"", "0", "50", "49.99", "0.000001", "999999999999.999999"} {
		team, err := f.ks.Teams.CreateTeam(t.Context(), f.admin, domain.TeamSpec{Name: "x", SpendLimit: &v})
		if err != nil || team.SpendLimit != v {
			t.Errorf("spend limit %q: %+v, %v", v, team, err)
		}
	}
}

func TestUpdateTeam(t *testing.T) {
	f := newTeamFixture(t)
	ctx := t.Context()
	created, err := f.ks.Teams.CreateTeam(ctx, f.admin, domain.TeamSpec{Name: "acme", PlanID: ptr("pro"), SpendLimit: ptr("10")})
	if err != nil {
		t.Fatal(err)
	}
	newQuota := domain.Quota{MaxSandboxes: 2}
	steps := []struct {
		name  string
		patch domain.TeamSpec
		want  domain.Team
	}{
		{"nothing", domain.TeamSpec{}, domain.Team{Name: "acme", Quota: defaultQuota, PlanID: "pro", SpendLimit: "10"}},
		{"rename", domain.TeamSpec{Name: "acme inc"}, domain.Team{Name: "acme inc", Quota: defaultQuota, PlanID: "pro", SpendLimit: "10"}},
		{"quota", domain.TeamSpec{Quota: domain.FullPatch(newQuota)}, domain.Team{Name: "acme inc", Quota: newQuota, PlanID: "pro", SpendLimit: "10"}},
		{"plan", domain.TeamSpec{PlanID: ptr("free")}, domain.Team{Name: "acme inc", Quota: newQuota, PlanID: "free", SpendLimit: "10"}},
		{"drop spend limit", domain.TeamSpec{SpendLimit: ptr("")}, domain.Team{Name: "acme inc", Quota: newQuota, PlanID: "free"}},
		{"limit runtimes", domain.TeamSpec{AllowedRuntimes: ptr([]string{"gvisor", "gvisor"})},
			domain.Team{Name: "acme inc", Quota: newQuota, PlanID: "free", AllowedRuntimes: []string{"gvisor"}}},
		{"runtimes stay", domain.TeamSpec{Name: "acme"},
			domain.Team{Name: "acme", Quota: newQuota, PlanID: "free", AllowedRuntimes: []string{"gvisor"}}},
		{"all runtimes again", domain.TeamSpec{AllowedRuntimes: ptr([]string{})}, domain.Team{Name: "acme", Quota: newQuota, PlanID: "free"}},
	}
	for _, st := range steps {
		got, err := f.ks.Teams.UpdateTeam(ctx, f.admin, created.ID, st.patch)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		st.want.ID, st.want.CreatedAt = created.ID, created.CreatedAt
		stored, err := f.store.GetTeam(ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*got, st.want) || !reflect.DeepEqual(*stored, st.want) {
			t.Errorf("%s: UpdateTeam = %+v, stored %+v; want %+v", st.name, *got, *stored, st.want)
		}
	}
	before, _ := f.store.GetTeam(ctx, created.ID)
	for _, tc := range badTeamSpecs {
		_, err := f.ks.Teams.UpdateTeam(ctx, f.admin, created.ID, tc.spec)
		wantKind(t, "UpdateTeam "+tc.name, err, domain.KindInvalid, tc.field)
	}
	if after, _ := f.store.GetTeam(ctx, created.ID); !reflect.DeepEqual(*after, *before) {
		t.Errorf("refused updates changed the team: %+v, was %+v", *after, *before)
	}
	_, err = f.ks.Teams.UpdateTeam(ctx, f.admin, "no-such-team", domain.TeamSpec{Name: "x"})
	wantKind(t, "UpdateTeam of a missing team", err, domain.KindNotFound, "")
}

func TestListTeams(t *testing.T) {
	f := newTeamFixture(t)
	ctx := t.Context()
	ids := func(ts []*domain.Team) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.ID)
		}
		return out
	}
	tests := []struct {
		name string
		p    domain.Principal
		want []string
		kind domain.Kind
	}{
		{"platform admin sees all", f.admin, []string{"ops", "team-a", "team-b"}, 0},
		{"team admin sees own", f.a, []string{"team-a"}, 0},
		{"viewer sees own", domain.Principal{TeamID: "team-b", UserID: "v", Scopes: viewerScopes}, []string{"team-b"}, 0},
		{"no team:read", domain.Principal{TeamID: "team-a", Scopes: []domain.Scope{domain.ScopeSandboxesWrite}}, nil, domain.KindForbidden},
		{"nobody", domain.Principal{}, nil, domain.KindUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.ks.Teams.ListTeams(ctx, tc.p)
			if tc.want == nil {
				wantKind(t, "ListTeams", err, tc.kind, "")
				return
			}
			if err != nil || !slices.Equal(ids(got), tc.want) {
				t.Errorf("ListTeams = %v, %v; want %v", ids(got), err, tc.want)
			}
		})
	}
}

func TestGetTeam(t *testing.T) {
	f := newTeamFixture(t)
	ctx := t.Context()
	sandboxes := []*domain.Sandbox{
		{ID: "sb1", TeamID: "team-a", TemplateID: "base", State: domain.StateRunning, Limits: domain.Limits{CPUCores: 1.5, MemoryMB: 512, DiskMB: 1024}},
		{ID: "sb2", TeamID: "team-a", TemplateID: "base", State: domain.StateStarting, Limits: domain.Limits{CPUCores: 1, MemoryMB: 256, DiskMB: 2048}},
		{ID: "sb3", TeamID: "team-a", TemplateID: "base", State: domain.StateStopped, Limits: domain.Limits{CPUCores: 4, MemoryMB: 4096, DiskMB: 4096}},
		{ID: "sb4", TeamID: "team-b", TemplateID: "base", State: domain.StateRunning, Limits: domain.Limits{CPUCores: 2, MemoryMB: 1024, DiskMB: 1024}},
	}
	for i, sb := range sandboxes {
		sb.CreatedAt = f.clock.now().Add(time.Duration(i) * time.Second)
		sb.Slot = i
		if err := f.store.CreateSandbox(ctx, sb); err != nil {
			t.Fatal(err)
		}
	}
	aUsage := domain.QuotaUsage{Sandboxes: 2, CPUCores: 2.5, MemoryMB: 768, DiskMB: 3072}
	tests := []struct {
		name  string
		p     domain.Principal
		id    string
		usage domain.QuotaUsage
		kind  domain.Kind // 0: found
	}{
		{"own team", f.a, "team-a", aUsage, 0},
		{"viewer, own team", domain.Principal{TeamID: "team-a", UserID: "v", Scopes: viewerScopes}, "team-a", aUsage, 0},
		{"platform admin, any team", f.admin, "team-a", aUsage, 0},
		{"other team", f.b, "team-a", domain.QuotaUsage{}, domain.KindNotFound},
		{"other team without team:read", domain.Principal{TeamID: "team-b", Scopes: []domain.Scope{domain.ScopeUsageRead}}, "team-a", domain.QuotaUsage{}, domain.KindNotFound},
		{"own team without team:read", domain.Principal{TeamID: "team-a", Scopes: []domain.Scope{domain.ScopeUsageRead}}, "team-a", domain.QuotaUsage{}, domain.KindForbidden},
		{"platform admin, missing team", f.admin, "no-such-team", domain.QuotaUsage{}, domain.KindNotFound},
		{"nobody", domain.Principal{}, "team-a", domain.QuotaUsage{}, domain.KindUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			team, usage, err := f.ks.Teams.GetTeam(ctx, tc.p, tc.id)
			if tc.kind != 0 {
				wantKind(t, "GetTeam", err, tc.kind, "")
				if team != nil {
					t.Errorf("refused GetTeam returned %+v", team)
				}
				return
			}
			if err != nil || team.ID != tc.id || usage != tc.usage {
				t.Errorf("GetTeam = %+v, %+v, %v; want %s with usage %+v", team, usage, err, tc.id, tc.usage)
			}
		})
	}
}

func TestTeamQuotaReachesAuthenticate(t *testing.T) {
	f := newTeamFixture(t)
	ctx := t.Context()
	rpm := func() int64 {
		t.Helper()
		return f.authenticate(t, f.aSecret).RequestsPerMinute
	}
	if got := rpm(); got != 0 {
		t.Fatalf("RequestsPerMinute = %d before any quota, want 0", got)
	}
	// An update through the service applies at once on this replica...
	if _, err := f.ks.Teams.UpdateTeam(ctx, f.admin, "team-a", domain.TeamSpec{Quota: domain.FullPatch(domain.Quota{RequestsPerMinute: 120})}); err != nil {
		t.Fatal(err)
	}
	if got := rpm(); got != 120 {
		t.Errorf("RequestsPerMinute = %d right after UpdateTeam, want 120", got)
	}
	// ...one made elsewhere (another replica) within the cache's lifetime.
	team, err := f.store.GetTeam(ctx, "team-a")
	if err != nil {
		t.Fatal(err)
	}
	team.Quota.RequestsPerMinute = 7
	if err := f.store.UpdateTeam(ctx, team); err != nil {
		t.Fatal(err)
	}
	if got := rpm(); got != 120 {
		t.Errorf("RequestsPerMinute = %d straight after another replica's change, want the cached 120", got)
	}
	f.clock.add(teamCacheTTL)
	if got := rpm(); got != 7 {
		t.Errorf("RequestsPerMinute = %d after the cache lifetime, want 7", got)
	}
	// Other teams are unaffected.
	if got := f.authenticate(t, f.bSecret).RequestsPerMinute; got != 0 {
		t.Errorf("team-b RequestsPerMinute = %d, want 0", got)
	}
}

func TestListTeamsStoreFailure(t *testing.T) {
	f := newTeamFixture(t)
	boom := errors.New("boom")
	f.store.listTeams = func(context.Context) ([]*domain.Team, error) { return nil, boom }
	if _, err := f.ks.Teams.ListTeams(t.Context(), f.admin); !errors.Is(err, boom) || domain.KindOf(err) != domain.KindInternal {
		t.Errorf("ListTeams during an outage = %v; want the store error, unclassified", err)
	}
}
