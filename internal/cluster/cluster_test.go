package cluster_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/cluster"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/sqlite"
)

// These tests run the registrar, the monitor and the node service on a real SQLite
// store (the conformance suite runs the store's side on PostgreSQL too).

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "warren.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func registrar(t *testing.T, s *sqlite.Store, name string, clk *clock, back func(context.Context)) *cluster.Registrar {
	t.Helper()
	r, err := cluster.NewRegistrar(cluster.RegistrarConfig{Store: s, Name: name, Address: name + ":3000", Runtimes: []string{"gvisor"},
		Measure: func(_ context.Context, n *domain.Node) {
			n.Capacity = domain.NodeCapacity{CPUCores: 2, MemoryMB: 1000, DiskMB: 5000, Slots: 10}
			n.Free = domain.NodeCapacity{CPUCores: 1, MemoryMB: 800, DiskMB: 4000, Slots: 9}
			n.Sandboxes, n.Templates, n.WarmPools = 1, []string{"base"}, map[string]int{"base": 1}
		}, Back: back, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegistrarAndOpen(t *testing.T) {
	ctx := t.Context()
	s := openStore(t)
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := registrar(t, s, "n1", clk, nil)
	if err := r.Open(ctx); err != nil {
		t.Errorf("Open of a node not registered yet: %v", err)
	}
	if err := r.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := s.GetNode(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if n.State != domain.NodeReady || n.Address != "n1:3000" || n.Free.Slots != 9 || n.WarmPools["base"] != 1 ||
		!n.HeartbeatAt.Equal(clk.now()) || !n.StartedAt.Equal(clk.now()) {
		t.Errorf("registered node %+v", n)
	}
	nodes := cluster.NewNodes(s)
	admin := domain.Principal{Admin: true, TeamID: "t"}
	if _, err := nodes.Drain(ctx, admin, "n1"); err != nil {
		t.Fatal(err)
	}
	err = r.Open(ctx)
	if !domain.IsKind(err, domain.KindUnavailable) || !strings.Contains(err.Error(), "warren nodes undrain n1") {
		t.Errorf("Open of a drained node: %v, want unavailable saying how to undrain", err)
	}
	clk.add(5 * time.Second)
	if err := r.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Open(ctx); err == nil {
		t.Errorf("a heartbeat undrained the node")
	}
	got, err := nodes.Undrain(ctx, admin, "n1")
	if err != nil || got.State != domain.NodeReady {
		t.Fatalf("Undrain = %+v, %v", got, err)
	}
	if err := r.Open(ctx); err != nil {
		t.Errorf("Open after undrain: %v", err)
	}
}

func TestNodesAdminOnly(t *testing.T) {
	ctx := t.Context()
	s := openStore(t)
	if err := registrar(t, s, "n1", &clock{t: time.Now()}, nil).Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	nodes := cluster.NewNodes(s)
	owner := domain.Principal{TeamID: "t", Scopes: []domain.Scope{domain.ScopeAdmin}} // a team's admin, not the platform's
	for name, call := range map[string]func() error{
		"list":    func() error { _, err := nodes.ListNodes(ctx, owner); return err },
		"drain":   func() error { _, err := nodes.Drain(ctx, owner, "n1"); return err },
		"undrain": func() error { _, err := nodes.Undrain(ctx, owner, "n1"); return err },
	} {
		if err := call(); !domain.IsKind(err, domain.KindForbidden) {
			t.Errorf("%s by a team admin: %v, want forbidden", name, err)
		}
	}
	if n, _ := s.GetNode(ctx, "n1"); n.State != domain.NodeReady {
		t.Errorf("a refused drain changed the node to %s", n.State)
	}
	admin := domain.Principal{Admin: true}
	if _, err := nodes.Drain(ctx, admin, "nope"); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("drain of an unknown node: %v, want not found", err)
	}
	list, err := nodes.ListNodes(ctx, admin)
	if err != nil || len(list) != 1 || list[0].Name != "n1" {
		t.Errorf("ListNodes = %v, %v", list, err)
	}
}

// TestMonitor: a second node whose heartbeat is older than the timeout, with a sandbox
// on it, is marked down and its sandbox lost; the monitoring node and fresh nodes are
// left alone; the node back from down is ready and its server is told (Back).
func TestMonitor(t *testing.T) {
	ctx := t.Context()
	s := openStore(t)
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	backs := 0
	self := registrar(t, s, "self", clk, nil)
	other := registrar(t, s, "other", clk, func(context.Context) { backs++ })
	for _, r := range []*cluster.Registrar{self, other} {
		if err := r.Heartbeat(ctx); err != nil {
			t.Fatal(err)
		}
	}
	team := &domain.Team{ID: "team1", Name: "t"}
	if err := s.CreateTeam(ctx, team); err != nil {
		t.Fatal(err)
	}
	sb := func(node string) *domain.Sandbox {
		x := &domain.Sandbox{ID: domain.NewID(20), TeamID: team.ID, TemplateID: "base", State: domain.StateRunning,
			RuntimeName: "gvisor", Node: node, CreatedAt: clk.now()}
		if err := s.CreateSandbox(ctx, x); err != nil {
			t.Fatal(err)
		}
		return x
	}
	onOther, onSelf := sb("other"), sb("self")
	m, err := cluster.NewMonitor(s, "self", 15*time.Second, clk.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk.add(10 * time.Second)
	if down, err := m.Check(ctx); err != nil || len(down) != 0 {
		t.Fatalf("Check within the timeout = %v, %v; want none down", down, err)
	}
	clk.add(10 * time.Second) // 20 s since both heartbeats: self is stale too, but never its own victim
	down, err := m.Check(ctx)
	if err != nil || len(down) != 1 || down[0] != "other" {
		t.Fatalf("Check past the timeout = %v, %v; want [other]", down, err)
	}
	n, _ := s.GetNode(ctx, "other")
	if n.State != domain.NodeDown {
		t.Errorf("stale node is %s, want down", n.State)
	}
	got, _ := s.GetSandbox(ctx, domain.AnyTeam, onOther.ID)
	if got.State != domain.StateStopped || got.EndReason != cluster.LostReason("other", 15*time.Second) ||
		!strings.Contains(got.EndReason, "lost: node other") {
		t.Errorf("sandbox on the down node: %s %q", got.State, got.EndReason)
	}
	if got, _ := s.GetSandbox(ctx, domain.AnyTeam, onSelf.ID); got.State != domain.StateRunning {
		t.Errorf("the monitoring node's sandbox is %s", got.State)
	}
	if down, _ := m.Check(ctx); len(down) != 0 {
		t.Errorf("a second check marked %v again", down)
	}
	if err := other.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.GetNode(ctx, "other"); n.State != domain.NodeReady || backs != 1 {
		t.Errorf("node back: %s, Back called %d times; want ready, once", n.State, backs)
	}
	if got, _ := s.GetSandbox(ctx, domain.AnyTeam, onOther.ID); got.State != domain.StateStopped {
		t.Errorf("the lost sandbox came back as %s", got.State)
	}
}

// TestOnce: a job runs only while its lock is free.
func TestOnce(t *testing.T) {
	ctx := t.Context()
	s := openStore(t)
	release, ok, err := s.TryLock(ctx, cluster.MonitorLock)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	runs := 0
	job := func(context.Context) error { runs++; return errors.New("job failed") }
	if ran, err := cluster.Once(ctx, s, cluster.MonitorLock, job); ran || err != nil || runs != 0 {
		t.Errorf("Once while another holds the lock: ran %v, %v", ran, err)
	}
	release()
	if ran, err := cluster.Once(ctx, s, cluster.MonitorLock, job); !ran || err == nil || runs != 1 {
		t.Errorf("Once with the lock free: ran %v, err %v, runs %d", ran, err, runs)
	}
	if ran, _ := cluster.Once(ctx, s, cluster.MonitorLock, func(context.Context) error { return nil }); !ran {
		t.Errorf("Once did not release the lock after its job")
	}
}

// TestMonitorProbe: a late node that answers its probe is spared within the grace
// (probeGrace timeouts) and marked down past it; one that does not answer is marked
// down at once.
func TestMonitorProbe(t *testing.T) {
	ctx := t.Context()
	s := openStore(t)
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, name := range []string{"slow", "dead"} {
		if err := registrar(t, s, name, clk, nil).Heartbeat(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var probed []string
	m, err := cluster.NewMonitor(s, "self", 10*time.Second, clk.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.WithProbe(func(ctx context.Context, n *domain.Node) error {
		probed = append(probed, n.Name)
		if n.Name == "slow" {
			return nil
		}
		return errors.New("connection refused")
	})
	clk.add(15 * time.Second)
	down, err := m.Check(ctx)
	if err != nil || len(down) != 1 || down[0] != "dead" || strings.Join(probed, ",") != "dead,slow" {
		t.Fatalf("Check 15 s late = %v, %v (probed %v); want [dead] down, both probed", down, err, probed)
	}
	clk.add(10 * time.Second) // 25 s: still within 3 timeouts
	if down, _ := m.Check(ctx); len(down) != 0 {
		t.Errorf("a late node that answers was marked down within its grace: %v", down)
	}
	clk.add(10 * time.Second) // 35 s: past the grace
	if down, _ := m.Check(ctx); len(down) != 1 || down[0] != "slow" {
		t.Errorf("Check past the grace = %v, want [slow]", down)
	}
}
