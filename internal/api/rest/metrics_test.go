package rest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// consoleFake adds the console's live views (metrics, logs, terminals) to
// fakeSandboxes, as function fields. A nil field answers errNotSet.
type consoleFake struct {
	*fakeSandboxes
	metrics      func(ctx context.Context, p domain.Principal, id string) (*domain.SandboxMetrics, error)
	logs         func(ctx context.Context, p domain.Principal, id string, q domain.LogQuery) ([]domain.LogEntry, error)
	followLogs   func(ctx context.Context, p domain.Principal, id string, q domain.LogQuery, onEntry func(domain.LogEntry) error) error
	openTerminal func(ctx context.Context, p domain.Principal, id string, req domain.TerminalRequest) (domain.Terminal, error)
}

var (
	_ domain.SandboxService  = (*consoleFake)(nil)
	_ domain.TerminalService = (*consoleFake)(nil)
	_ domain.LogService      = (*consoleFake)(nil)
)

func (f *consoleFake) Metrics(ctx context.Context, p domain.Principal, id string) (*domain.SandboxMetrics, error) {
	if f.metrics == nil {
		return nil, errNotSet
	}
	return f.metrics(ctx, p, id)
}

func (f *consoleFake) Logs(ctx context.Context, p domain.Principal, id string, q domain.LogQuery) ([]domain.LogEntry, error) {
	if f.logs == nil {
		return nil, errNotSet
	}
	return f.logs(ctx, p, id, q)
}

func (f *consoleFake) FollowLogs(ctx context.Context, p domain.Principal, id string, q domain.LogQuery, onEntry func(domain.LogEntry) error) error {
	if f.followLogs == nil {
		return errNotSet
	}
	return f.followLogs(ctx, p, id, q, onEntry)
}

func (f *consoleFake) OpenTerminal(ctx context.Context, p domain.Principal, id string, req domain.TerminalRequest) (domain.Terminal, error) {
	if f.openTerminal == nil {
		return nil, errNotSet
	}
	return f.openTerminal(ctx, p, id, req)
}

// newConsoleHarness is a harness with its fake of the console's live views.
func newConsoleHarness(t *testing.T, opts ...Option) (*harness, *consoleFake) {
	t.Helper()
	h := newHarness(t, opts...)
	return h, h.console
}

// scoped answers like the service: another team's sandbox is not found, and a missing
// scope is forbidden.
func scoped(p domain.Principal, id string, scope domain.Scope) error {
	if err := notFoundUnless(id); err != nil {
		return err
	}
	if p.Scopes != nil {
		return p.Need(scope)
	}
	return nil
}

func TestMetrics(t *testing.T) {
	h, f := newConsoleHarness(t)
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	f.metrics = func(_ context.Context, p domain.Principal, id string) (*domain.SandboxMetrics, error) {
		if err := scoped(p, id, domain.ScopeSandboxesRead); err != nil {
			return nil, err
		}
		return &domain.SandboxMetrics{Timestamp: at, CPUCount: 2, CPUUsedPct: 12.5, MemUsed: 100 << 20,
			MemTotal: 512 << 20, MemCache: 7, DiskUsed: 1 << 30, DiskTotal: 2 << 30}, nil
	}
	res := h.do("GET", "/v1/sandboxes/"+sbID+"/metrics", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	m := res.Obj(t)
	want := map[string]any{"timestamp": "2025-01-02T02:04:05Z", "cpu_count": 2.0, "cpu_used_pct": 12.5,
		"mem_used": float64(100 << 20), "mem_total": float64(512 << 20), "disk_used": float64(1 << 30), "disk_total": float64(2 << 30)}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("fields %v, want exactly %v", m, want)
	}

	h.wantError(h.do("GET", "/v1/sandboxes/bbbbbbbbbbbbbbbbbbbb/metrics", nil), 404, "not_found", "")
	h.as(domain.Principal{TeamID: "team_a", Scopes: []domain.Scope{domain.ScopeKeysRead}})
	h.wantError(h.do("GET", "/v1/sandboxes/"+sbID+"/metrics", nil), 403, "forbidden", "")

	// A sandbox that is not running: the service's conflict goes through.
	f.metrics = func(context.Context, domain.Principal, string) (*domain.SandboxMetrics, error) {
		return nil, domain.Errorf(domain.KindConflict, "sandbox is stopped; create a new one")
	}
	h.as(testPrincipal)
	h.wantError(h.do("GET", "/v1/sandboxes/"+sbID+"/metrics", nil), 409, "conflict", "")
}
