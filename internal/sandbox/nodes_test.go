package sandbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// TestNodeOwnership: on a named node, creates record the node, recovery and sweeps
// look only at this node's rows (and rows without a node), and acting on another
// node's sandbox is a 503 naming it.
func TestNodeOwnership(t *testing.T) {
	w := newWorld(t)
	w.svc.cfg.NodeName = "n1"
	ctx := context.Background()
	sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.row(sb.ID).Node; got != "n1" {
		t.Errorf("created sandbox's node %q, want n1", got)
	}
	now := time.Now().UTC()
	other := &domain.Sandbox{ID: domain.NewID(20), TeamID: teamID, TemplateID: "base", State: domain.StateRunning,
		RuntimeName: "gvisor", Slot: 5, Address: "10.9.0.5", AccessToken: "tok", Node: "n2",
		CreatedAt: now, StartedAt: now, EndsAt: now.Add(time.Hour), RuntimeHandle: []byte(`{"id":"x","driver":"gvisor","pid":1}`)}
	w.addRow(other)
	legacy := &domain.Sandbox{ID: domain.NewID(20), TeamID: teamID, TemplateID: "base", State: domain.StateStarting,
		RuntimeName: "gvisor", Slot: 6, CreatedAt: now, EndsAt: now.Add(time.Hour)}
	w.addRow(legacy)
	var sweptLive map[string]bool
	w.node.orphans = func(_ context.Context, live map[string]bool) ([]string, error) {
		sweptLive = live
		return nil, nil
	}
	rep, err := NewSweeper(w.svc).Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The legacy row (no node) is this node's: caught starting, it is reaped.
	if rep.Reaped != 1 || w.row(legacy.ID).State != domain.StateError {
		t.Errorf("recover %+v, legacy row %s; want the legacy row reaped", rep, w.row(legacy.ID).State)
	}
	if r := w.row(other.ID); r.State != domain.StateRunning || r.EndReason != "" {
		t.Errorf("another node's sandbox after recover: %s %q, want running", r.State, r.EndReason)
	}
	if sweptLive[other.ID] {
		t.Errorf("the sweep counted another node's sandbox as this node's")
	}
	for _, c := range w.called("node.stop") {
		if strings.Contains(c, other.ID) {
			t.Errorf("the node was asked to stop another node's sandbox: %s", c)
		}
	}
	for name, call := range map[string]func() error{
		"kill":        func() error { return w.svc.Kill(ctx, writer, other.ID) },
		"set timeout": func() error { _, err := w.svc.SetTimeout(ctx, writer, other.ID, time.Minute); return err },
		"pause":       func() error { _, err := w.svc.Pause(ctx, writer, other.ID); return err },
		"metrics":     func() error { _, err := w.svc.Metrics(ctx, writer, other.ID); return err },
	} {
		err := call()
		if !domain.IsKind(err, domain.KindUnavailable) || !strings.Contains(domain.PublicMessage(err), `node "n2"`) {
			t.Errorf("%s of another node's sandbox: %v, want unavailable naming node n2", name, err)
		}
	}
	if got, err := w.svc.Get(ctx, reader, other.ID); err != nil || got.Node != "n2" {
		t.Errorf("reading another node's sandbox: %+v, %v; want its row with node n2", got, err)
	}
}

// TestNodeClosed: while the node takes no new sandboxes (drained), creates are refused
// with its error before anything is allocated, and go on once it takes them again;
// running sandboxes are untouched.
func TestNodeClosed(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	running, err := w.svc.Create(ctx, writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	closed := domain.Errorf(domain.KindUnavailable, "node n1 is draining")
	var open error = closed
	w.svc.cfg.NodeOpen = func(context.Context) error { return open }
	starts := len(w.called("node.start"))
	if _, err := w.svc.Create(ctx, writer, domain.CreateSandbox{}); !errors.Is(err, closed) {
		t.Fatalf("create on a drained node: %v, want its refusal", err)
	}
	if got := len(w.called("node.start")); got != starts || w.rowCount() != 1 {
		t.Errorf("a refused create started %d sandboxes and left %d rows", got-starts, w.rowCount())
	}
	if _, err := w.svc.SetTimeout(ctx, writer, running.ID, time.Hour); err != nil {
		t.Errorf("a running sandbox on a drained node: %v", err)
	}
	open = nil
	if _, err := w.svc.Create(ctx, writer, domain.CreateSandbox{}); err != nil {
		t.Errorf("create once the node is open again: %v", err)
	}
}

// TestDropEnded: a sandbox the monitor stopped as lost while this node was away is
// stopped on the node when it is back, and its row stays as the monitor wrote it.
func TestDropEnded(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	lost, err := w.svc.Create(ctx, writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := w.svc.Create(ctx, writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	row := w.row(lost.ID)
	const reason = "lost: node n1 stopped heartbeating"
	row.State, row.EndReason, row.StoppedAt = domain.StateStopped, reason, at
	w.addRow(row)

	if n := NewSweeper(w.svc).DropEnded(ctx); n != 1 {
		t.Fatalf("DropEnded = %d, want 1", n)
	}
	if got := w.row(lost.ID); got.State != domain.StateStopped || got.EndReason != reason || !got.StoppedAt.Equal(at) {
		t.Errorf("the lost row became %s %q at %v; want it as the monitor wrote it", got.State, got.EndReason, got.StoppedAt)
	}
	if !slices.Contains(w.called("node.halt"), fmt.Sprintf("node.halt %s %s", lost.ID, lost.ID)) {
		t.Errorf("the lost sandbox was not halted: %q", w.called("node.halt"))
	}
	if w.svc.Live() != 1 {
		t.Errorf("%d live sandboxes, want only the one still running", w.svc.Live())
	}
	if _, err := w.svc.SetTimeout(ctx, writer, lost.ID, time.Hour); err == nil {
		t.Errorf("SetTimeout of a lost sandbox succeeded")
	}
	if got := w.row(lost.ID); got.State != domain.StateStopped {
		t.Errorf("the lost row was brought back: %s", got.State)
	}
	if got := w.row(kept.ID); got.State != domain.StateRunning {
		t.Errorf("the other sandbox is %s, want running", got.State)
	}
	if n := NewSweeper(w.svc).DropEnded(ctx); n != 0 {
		t.Errorf("a second DropEnded stopped %d", n)
	}
}

// TestPoolStopsWhileDrained: the warm pool does not refill while the node takes no new
// sandboxes, a create then is refused without claiming a member, and the pool fills
// once the node is open again.
func TestPoolStopsWhileDrained(t *testing.T) {
	w := newWorld(t)
	var drained atomic.Bool
	drained.Store(true)
	closed := domain.Errorf(domain.KindUnavailable, "node n1 is draining")
	w.svc.cfg.NodeOpen = func(context.Context) error {
		if drained.Load() {
			return closed
		}
		return nil
	}
	p, err := NewPool(w.svc, PoolConfig{Sizes: []PoolSize{{"base", 1}}, Retry: 10 * time.Millisecond, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	time.Sleep(200 * time.Millisecond) // some twenty refill attempts
	if got := w.called("node.start"); len(got) != 0 {
		t.Fatalf("a drained node's pool started %q", got)
	}
	if _, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{}); !errors.Is(err, closed) {
		t.Fatalf("create on a drained node: %v", err)
	}
	drained.Store(false)
	waitFor(t, "the pool filled once the node is open", func() bool {
		st, _ := p.Pools(context.Background(), admin)
		return len(st) == 1 && st[0].Ready == 1
	})
	drained.Store(true)
	if _, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{}); !errors.Is(err, closed) {
		t.Fatalf("create on a drained node with a ready member: %v", err)
	}
	if st, _ := p.Pools(context.Background(), admin); st[0].Ready != 1 || st[0].Claims != 0 {
		t.Errorf("a refused create touched the pool: %+v", st[0])
	}
}
