package sandbox

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// TestShutdownEndsStartsInFlight: a sandbox still starting (its agent not ready yet)
// when the server shuts down (Config.Life done) fails at once rather than at
// StartTimeout, removes what the node made for it and is marked failed; KillAll waits
// for it, so nothing is left reserved or running.
func TestShutdownEndsStartsInFlight(t *testing.T) {
	w := newWorld(t)
	life, shutdown := context.WithCancel(context.Background())
	defer shutdown()
	w.svc.cfg.Life, w.svc.cfg.StartTimeout = life, time.Hour
	waiting, once := make(chan struct{}), sync.Once{}
	w.svc.cfg.dial = func(address, token string) *agent {
		return &agent{conn: &fakeAgent{
			waitReady: func(ctx context.Context) error {
				once.Do(func() { close(waiting) })
				<-ctx.Done()
				return ctx.Err()
			},
			closed: func() {},
		}}
	}
	type result struct {
		sb  *domain.Sandbox
		err error
	}
	created := make(chan result, 1)
	go func() {
		sb, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{})
		created <- result{sb, err}
	}()
	<-waiting
	killed := make(chan error, 1)
	go func() { killed <- w.svc.KillAll(context.Background()) }()
	select {
	case err := <-killed:
		t.Fatalf("KillAll returned (%v) while a start was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	shutdown()
	var r result
	select {
	case r = <-created:
	case <-time.After(5 * time.Second):
		t.Fatal("the start in flight did not end at shutdown")
	}
	if r.err == nil || !domain.IsKind(r.err, domain.KindUnavailable) {
		t.Fatalf("Create = %v, %v; want an unavailable error", r.sb, r.err)
	}
	if err := <-killed; err != nil {
		t.Fatal(err)
	}
	starts := w.called("node.start ")
	if len(starts) != 1 {
		t.Fatalf("node starts = %v", starts)
	}
	stops := w.called("node.stop ")
	if len(stops) != 1 {
		t.Fatalf("node stops = %v; want the started sandbox stopped", stops)
	}
	w.mu.Lock()
	var rows []domain.Sandbox
	for _, sb := range w.rows {
		rows = append(rows, *sb)
	}
	w.mu.Unlock()
	if len(rows) != 1 || rows[0].State != domain.StateError {
		t.Fatalf("rows = %+v; want one in state error", rows)
	}
	if n := w.reservedSlots(); n != 0 {
		t.Fatalf("%d slots still reserved", n)
	}
	if n := w.svc.Live(); n != 0 {
		t.Fatalf("%d sandboxes still tracked", n)
	}
	// A start after shutdown fails at once.
	if _, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{}); err == nil {
		t.Fatal("Create after shutdown succeeded")
	}
}
