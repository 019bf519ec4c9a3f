package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

// wantQuotaError fails the test unless err is a KindQuotaExceeded refusal carrying a
// *QuotaError with that quota, limit and usage.
func wantQuotaError(t *testing.T, what string, err error, quota string, limit, used float64) {
	t.Helper()
	wantKind(t, what, err, domain.KindQuotaExceeded)
	var qe *domain.QuotaError
	if !errors.As(err, &qe) {
		t.Errorf("%s: error %v carries no *domain.QuotaError", what, err)
		return
	}
	if qe.Quota != quota || qe.Limit != limit || qe.Used != used {
		t.Errorf("%s: QuotaError{Quota: %q, Limit: %v, Used: %v}, want {%q, %v, %v}",
			what, qe.Quota, qe.Limit, qe.Used, quota, limit, used)
	}
	if domain.PublicMessage(err) == "" {
		t.Errorf("%s: the refusal has no message for the client", what)
	}
}

// admitConcurrently tries n sandboxes of the team at once, spread over the stores, and
// returns how many were admitted. Every refusal must be a max_sandboxes refusal at the
// limit; any other error fails the test.
func admitConcurrently(t *testing.T, stores []domain.Store, teamID string, q domain.Quota, n int) int {
	t.Helper()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted int
		refusals []error
	)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sb := newSandbox(teamID, at(i, 0))
			err := stores[i%len(stores)].CreateSandboxWithinQuota(t.Context(), sb, q)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				admitted++
			case domain.IsKind(err, domain.KindQuotaExceeded):
				refusals = append(refusals, err)
			default:
				errs <- fmt.Errorf("sandbox %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, err := range refusals {
		wantQuotaError(t, "concurrent refusal", err, "max_sandboxes", float64(q.MaxSandboxes), float64(q.MaxSandboxes))
	}
	return admitted
}

func testQuotaConcurrent(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team, other := addTeam(t, s, "q"), addTeam(t, s, "other")
	// Terminal sandboxes and other teams' sandboxes do not count.
	for _, st := range []domain.SandboxState{domain.StateStopped, domain.StateError, domain.StateStopped} {
		sb := newSandbox(team.ID, at(-1, 0))
		sb.State = st
		addSandbox(t, s, sb)
	}
	for range 3 {
		addSandbox(t, s, newSandbox(other.ID, at(-1, 0)))
	}

	q := domain.Quota{MaxSandboxes: 10}
	if got := admitConcurrently(t, []domain.Store{s}, team.ID, q, 50); got != 10 {
		t.Fatalf("50 concurrent creates against max_sandboxes 10 admitted %d", got)
	}
	u, err := s.TeamUsage(ctx, team.ID)
	must(t, "TeamUsage", err)
	if u.Sandboxes != 10 {
		t.Errorf("TeamUsage.Sandboxes = %d after admitting 10", u.Sandboxes)
	}
	running, _, err := s.ListSandboxes(ctx, domain.SandboxFilter{TeamID: team.ID,
		States: []domain.SandboxState{domain.StateRunning}, Limit: 1000})
	must(t, "listing", err)
	if len(running) != 10 {
		t.Fatalf("%d running sandboxes stored, want 10", len(running))
	}

	// Stopping one frees room for exactly one more.
	running[0].State = domain.StateStopped
	must(t, "stopping a sandbox", s.UpdateSandbox(ctx, running[0]))
	must(t, "creating into the freed room", s.CreateSandboxWithinQuota(ctx, newSandbox(team.ID, at(100, 0)), q))
	err = s.CreateSandboxWithinQuota(ctx, newSandbox(team.ID, at(101, 0)), q)
	wantQuotaError(t, "creating past the quota again", err, "max_sandboxes", 10, 10)

	// A raised quota admits more; the other team is unaffected by this team's usage.
	must(t, "creating under a raised quota", s.CreateSandboxWithinQuota(ctx, newSandbox(team.ID, at(102, 0)),
		domain.Quota{MaxSandboxes: 11}))
	must(t, "creating in the other team", s.CreateSandboxWithinQuota(ctx, newSandbox(other.ID, at(103, 0)),
		domain.Quota{MaxSandboxes: 4}))
}

// QuotaAcrossStores checks that two stores opened on the same database (as two server
// processes would) enforce a quota together: 40 creates spread over both admit exactly
// the quota. Backends call it with two fresh stores on one new database.
func QuotaAcrossStores(t *testing.T, a, b domain.Store) {
	team := addTeam(t, a, "shared")
	q := domain.Quota{MaxSandboxes: 7}
	if got := admitConcurrently(t, []domain.Store{a, b}, team.ID, q, 40); got != 7 {
		t.Fatalf("40 creates over two stores against max_sandboxes 7 admitted %d", got)
	}
	for _, s := range []domain.Store{a, b} {
		u, err := s.TeamUsage(t.Context(), team.ID)
		must(t, "TeamUsage", err)
		if u.Sandboxes != 7 {
			t.Errorf("TeamUsage.Sandboxes = %d, want 7", u.Sandboxes)
		}
	}
}

func testQuotaResources(t *testing.T, s domain.Store) {
	ctx := t.Context()
	type lim = domain.Limits
	tests := []struct {
		name     string
		q        domain.Quota
		existing []lim // running sandboxes (a stopped one with huge limits is always added)
		try      lim
		quota    string // "" = admitted
		limit    float64
		used     float64
	}{
		{"cpu over", domain.Quota{MaxCPUCores: 2}, []lim{{CPUCores: 1}, {CPUCores: 0.5}}, lim{CPUCores: 0.75},
			"max_cpu_cores", 2, 1.5},
		{"cpu exact fit", domain.Quota{MaxCPUCores: 2}, []lim{{CPUCores: 1}, {CPUCores: 0.5}}, lim{CPUCores: 0.5}, "", 0, 0},
		{"cpu tenths add up", domain.Quota{MaxCPUCores: 1}, []lim{{CPUCores: 0.1}, {CPUCores: 0.1}, {CPUCores: 0.1},
			{CPUCores: 0.1}, {CPUCores: 0.1}, {CPUCores: 0.1}, {CPUCores: 0.1}, {CPUCores: 0.1}, {CPUCores: 0.1}},
			lim{CPUCores: 0.1}, "", 0, 0},
		{"memory over", domain.Quota{MaxMemoryMB: 1024}, []lim{{MemoryMB: 512}, {MemoryMB: 256}}, lim{MemoryMB: 512},
			"max_memory_mb", 1024, 768},
		{"memory fit", domain.Quota{MaxMemoryMB: 1024}, []lim{{MemoryMB: 512}, {MemoryMB: 256}}, lim{MemoryMB: 256}, "", 0, 0},
		{"disk over", domain.Quota{MaxDiskMB: 10240}, []lim{{DiskMB: 10000}}, lim{DiskMB: 241}, "max_disk_mb", 10240, 10000},
		{"disk fit", domain.Quota{MaxDiskMB: 10240}, []lim{{DiskMB: 10000}}, lim{DiskMB: 240}, "", 0, 0},
		{"sandboxes checked first", domain.Quota{MaxSandboxes: 1, MaxCPUCores: 1, MaxMemoryMB: 1, MaxDiskMB: 1},
			[]lim{{CPUCores: 1, MemoryMB: 1, DiskMB: 1}}, lim{CPUCores: 1, MemoryMB: 1, DiskMB: 1}, "max_sandboxes", 1, 1},
		{"cpu before memory", domain.Quota{MaxCPUCores: 1, MaxMemoryMB: 1, MaxDiskMB: 1},
			[]lim{{CPUCores: 1, MemoryMB: 1, DiskMB: 1}}, lim{CPUCores: 1, MemoryMB: 1, DiskMB: 1}, "max_cpu_cores", 1, 1},
		{"memory before disk", domain.Quota{MaxMemoryMB: 1, MaxDiskMB: 1},
			[]lim{{MemoryMB: 1, DiskMB: 1}}, lim{MemoryMB: 1, DiskMB: 1}, "max_memory_mb", 1, 1},
		{"first sandbox bigger than the quota", domain.Quota{MaxCPUCores: 1}, nil, lim{CPUCores: 2}, "max_cpu_cores", 1, 0},
		{"zero quota is no limit", domain.Quota{}, []lim{{CPUCores: 64, MemoryMB: 1 << 20, DiskMB: 1 << 30}},
			lim{CPUCores: 64, MemoryMB: 1 << 20, DiskMB: 1 << 30}, "", 0, 0},
		{"requests per minute is not a sandbox quota", domain.Quota{RequestsPerMinute: 1}, []lim{{}, {}}, lim{}, "", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			team := addTeam(t, s, tc.name)
			gone := newSandbox(team.ID, at(0, 0))
			gone.State, gone.Limits = domain.StateStopped, lim{CPUCores: 1000, MemoryMB: 1 << 40, DiskMB: 1 << 40}
			addSandbox(t, s, gone)
			for i, l := range tc.existing {
				sb := newSandbox(team.ID, at(i, 0))
				sb.Limits = l
				if i%2 == 1 {
					sb.State = domain.StateStarting // starting counts like running
				}
				addSandbox(t, s, sb)
			}
			sb := newSandbox(team.ID, at(100, 0))
			sb.Limits = tc.try
			err := s.CreateSandboxWithinQuota(ctx, sb, tc.q)
			if tc.quota == "" {
				must(t, "creating within the quota", err)
				got, err := s.GetSandbox(ctx, team.ID, sb.ID)
				must(t, "getting the admitted sandbox", err)
				same(t, "admitted sandbox", got, sb, normSandbox)
				return
			}
			wantQuotaError(t, "creating past the quota", err, tc.quota, tc.limit, tc.used)
			_, err = s.GetSandbox(ctx, domain.AnyTeam, sb.ID)
			wantKind(t, "getting a refused sandbox", err, domain.KindNotFound)
		})
	}
}

func testQuotaErrors(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "errs")
	sb := newSandbox(team.ID, at(0, 0))
	must(t, "creating within quota", s.CreateSandboxWithinQuota(ctx, sb, domain.Quota{MaxSandboxes: 5}))
	dup := newSandbox(team.ID, at(1, 0))
	dup.ID = sb.ID
	wantKind(t, "duplicate id", s.CreateSandboxWithinQuota(ctx, dup, domain.Quota{MaxSandboxes: 5}), domain.KindConflict)
	wantKind(t, "unknown team", s.CreateSandboxWithinQuota(ctx, newSandbox("no-such-team", at(2, 0)),
		domain.Quota{MaxSandboxes: 5}), domain.KindNotFound)
	wantKind(t, "unknown team, no quota", s.CreateSandboxWithinQuota(ctx, newSandbox("no-such-team", at(2, 0)),
		domain.Quota{}), domain.KindNotFound)
	got, err := s.GetSandbox(ctx, team.ID, sb.ID)
	must(t, "getting sandbox", err)
	same(t, "sandbox after failed creates", got, sb, normSandbox)
}

func testTeamUsage(t *testing.T, s domain.Store) {
	ctx := t.Context()
	a, b, empty := addTeam(t, s, "a"), addTeam(t, s, "b"), addTeam(t, s, "empty")
	specs := []struct {
		team  *domain.Team
		state domain.SandboxState
		l     domain.Limits
	}{
		{a, domain.StateRunning, domain.Limits{CPUCores: 0.5, MemoryMB: 512, DiskMB: 1000, MaxProcesses: 10}},
		{a, domain.StateStarting, domain.Limits{CPUCores: 1.25, MemoryMB: 1024, DiskMB: 2000}},
		{a, domain.StateRunning, domain.Limits{}},
		{a, domain.StateStopped, domain.Limits{CPUCores: 8, MemoryMB: 8192, DiskMB: 9000}},
		{a, domain.StateError, domain.Limits{CPUCores: 8, MemoryMB: 8192, DiskMB: 9000}},
		{a, domain.StatePaused, domain.Limits{CPUCores: 8, MemoryMB: 8192, DiskMB: 9000}},
		{b, domain.StateRunning, domain.Limits{CPUCores: 2, MemoryMB: 1 << 40, DiskMB: 1 << 41}},
	}
	for i, sp := range specs {
		sb := newSandbox(sp.team.ID, at(i, 0))
		sb.State, sb.Limits = sp.state, sp.l
		addSandbox(t, s, sb)
	}
	tests := []struct {
		team string
		want domain.QuotaUsage
	}{
		{a.ID, domain.QuotaUsage{Sandboxes: 3, CPUCores: 1.75, MemoryMB: 1536, DiskMB: 3000}},
		{b.ID, domain.QuotaUsage{Sandboxes: 1, CPUCores: 2, MemoryMB: 1 << 40, DiskMB: 1 << 41}},
		{empty.ID, domain.QuotaUsage{}},
		{"no-such-team", domain.QuotaUsage{}},
	}
	for _, tc := range tests {
		got, err := s.TeamUsage(ctx, tc.team)
		must(t, "TeamUsage", err)
		if got != tc.want {
			t.Errorf("TeamUsage(%s) = %+v, want %+v", tc.team, got, tc.want)
		}
	}
}
