package server

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/warren-sh/warren/internal/auth"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/sqlite"
)

// TestTeamQuotaDefaults: teams are bounded unless the operator says otherwise, and an
// operator's 0 still means no limit.
func TestTeamQuotaDefaults(t *testing.T) {
	if got, want := DefaultTeamQuota(2, 24000), (domain.Quota{MaxSandboxes: 20, MaxCPUCores: 8, MaxMemoryMB: 18000, MaxDiskMB: 51200, RequestsPerMinute: 3000, MaxSnapshots: 20,
		MaxTemplates: 20, MaxTemplateMB: 20480}); got != want {
		t.Errorf("DefaultTeamQuota(2 cores, 24000 MiB) = %+v, want %+v", got, want)
	}
	if got := DefaultTeamQuota(16, 4096).MaxCPUCores; got != 32 {
		t.Errorf("16 cores: max_cpu_cores %g, want 32", got)
	}
	c, err := ParseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	q := c.TeamQuota
	if q.MaxSandboxes != 20 || q.MaxCPUCores < 8 || q.MaxMemoryMB <= 0 || q.MaxDiskMB != 51200 || q.RequestsPerMinute != 3000 || q.MaxSnapshots != 20 {
		t.Errorf("default team quota %+v: want every quota bounded", q)
	}
	t.Setenv("WARREN_TEAM_MAX_SANDBOXES", "0")
	t.Setenv("WARREN_TEAM_REQUESTS_PER_MINUTE", "60")
	if c, err = ParseFlags(nil); err != nil || c.TeamQuota.MaxSandboxes != 0 || c.TeamQuota.RequestsPerMinute != 60 {
		t.Errorf("with WARREN_TEAM_MAX_SANDBOXES=0 and _REQUESTS_PER_MINUTE=60: %+v, %v", c.TeamQuota, err)
	}
}

// TestQuotaDefaultTeam: a first start gives the admin's team the default quota, and a
// quota the operator set later is never overwritten.
func TestQuotaDefaultTeam(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "warren.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := auth.Bootstrap(ctx, st, filepath.Join(dir, "admin.key")); err != nil {
		t.Fatal(err)
	}
	q := DefaultTeamQuota(2, 8000)
	if err := quotaDefaultTeam(ctx, st, q); err != nil {
		t.Fatal(err)
	}
	team := defaultTeam(t, st)
	if team.Quota != q {
		t.Fatalf("default team quota %+v, want %+v", team.Quota, q)
	}
	team.Quota = domain.Quota{MaxSandboxes: 3}
	if err := st.UpdateTeam(ctx, team); err != nil {
		t.Fatal(err)
	}
	if err := quotaDefaultTeam(ctx, st, q); err != nil {
		t.Fatal(err)
	}
	if got := defaultTeam(t, st).Quota; got != (domain.Quota{MaxSandboxes: 3}) {
		t.Errorf("the operator's quota was overwritten: %+v", got)
	}
}

func defaultTeam(t *testing.T, st domain.Store) *domain.Team {
	t.Helper()
	teams, err := st.ListTeams(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range teams {
		if tm.Name == auth.DefaultTeam {
			return tm
		}
	}
	t.Fatal("no default team")
	return nil
}
