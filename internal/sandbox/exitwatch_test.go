package sandbox

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/api/edge/edgetest"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// TestWatchExit: the watch ends ctx with errExitedWhileStarting once the process no
// longer runs, leaves ctx alone while it runs, and does not watch pid 0.
func TestWatchExit(t *testing.T) {
	var looks atomic.Int32
	ctx, stop := watchExit(context.Background(), 77, func(pid int) bool {
		if pid != 77 {
			t.Errorf("looked at pid %d", pid)
		}
		return looks.Add(1) < 3
	})
	defer stop()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end ctx")
	}
	if !errors.Is(context.Cause(ctx), errExitedWhileStarting) || looks.Load() != 3 {
		t.Fatalf("cause %v after %d looks", context.Cause(ctx), looks.Load())
	}

	ctx, stop = watchExit(context.Background(), 0, func(int) bool { t.Error("pid 0 looked at"); return false })
	time.Sleep(3 * exitWatchEvery)
	if ctx.Err() != nil {
		t.Fatalf("pid 0: ctx ended: %v", context.Cause(ctx))
	}
	stop()
	if ctx.Err() == nil || context.Cause(ctx) == errExitedWhileStarting {
		t.Fatalf("stop: %v", context.Cause(ctx))
	}

	// A running process: ctx lives until stop, and the watch ends with it.
	looks.Store(0)
	ctx, stop = watchExit(context.Background(), 78, func(int) bool { looks.Add(1); return true })
	time.Sleep(3 * exitWatchEvery)
	if ctx.Err() != nil || looks.Load() == 0 {
		t.Fatalf("running: ctx %v after %d looks", ctx.Err(), looks.Load())
	}
	stop()
	n := looks.Load()
	time.Sleep(3 * exitWatchEvery)
	if looks.Load() != n {
		t.Errorf("the watch went on after stop")
	}
}

// TestConsoleTail: the end of a long log, from a line's start, within the bound; a
// short log whole; no log "".
func TestConsoleTail(t *testing.T) {
	var long strings.Builder
	for i := 0; long.Len() < 100<<10; i++ {
		long.WriteString(strings.Repeat("x", i%70) + " line\n")
	}
	long.WriteString("panic: the agent cannot run\n")
	logs := map[string]string{"long": long.String(), "short": "one\ntwo\n"}
	n := &fakeNode{openLog: func(id string) (io.ReadCloser, error) {
		s, ok := logs[id]
		if !ok {
			return nil, errors.New("no log")
		}
		return io.NopCloser(strings.NewReader(s)), nil
	}}
	got := consoleTail(n, "long", maxExitTail)
	if len(got) > maxExitTail || !strings.HasSuffix(got, "panic: the agent cannot run") || !strings.Contains(got, "\n") || strings.HasPrefix(got, "x"+" ") {
		t.Errorf("long: %d bytes ending %q", len(got), got[max(0, len(got)-40):])
	}
	if first := strings.SplitN(got, "\n", 2)[0]; !strings.HasSuffix(first, " line") {
		t.Errorf("long: starts mid-line: %q", first)
	}
	if got := consoleTail(n, "short", maxExitTail); got != "one\ntwo" {
		t.Errorf("short: %q", got)
	}
	if got := consoleTail(n, "none", maxExitTail); got != "" {
		t.Errorf("none: %q", got)
	}
}

// TestCreateSandboxExited: a sandbox whose root process exits while its agent is
// awaited fails at once, not at StartTimeout: it is stopped and marked error, the
// tenant gets the usual answer, and the server's log says that it exited, with the
// end of its console log.
func TestCreateSandboxExited(t *testing.T) {
	w := newWorld(t)
	w.svc.cfg.StartTimeout = time.Hour // a wait for the agent would outlast the test
	log, logBuf := edgetest.NewLogger()
	w.svc.log = log
	base := w.node.start
	w.node.start = func(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template) (runtime.Handle, string, error) {
		h, addr, err := base(ctx, sb, tpl)
		h.PID = 4242
		return h, addr, err
	}
	w.node.openLog = func(string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("booting\nwarren-agent: exec format error\n")), nil
	}
	var looks atomic.Int32
	w.svc.cfg.running = func(pid int) bool {
		if pid != 4242 {
			t.Errorf("looked at pid %d", pid)
		}
		return looks.Add(1) < 2 // the sandbox dies while its agent is awaited
	}
	w.svc.cfg.dial = func(address, token string) *agent {
		return &agent{conn: &fakeAgent{
			waitReady: func(ctx context.Context) error {
				<-ctx.Done()
				return ctx.Err()
			},
			health: func(ctx context.Context) error { return errors.New("connection refused") },
			closed: func() { w.record("agent.close " + address) },
		}}
	}
	done := make(chan error, 1)
	go func() {
		_, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{})
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Create still waits for the agent of a sandbox that exited")
	}
	if !domain.IsKind(err, domain.KindUnavailable) || !strings.Contains(err.Error(), "could not be started") || strings.Contains(err.Error(), "exec format") {
		t.Fatalf("Create: %v", err)
	}
	logged := logBuf.String()
	if !strings.Contains(logged, "exited while it was starting") || !strings.Contains(logged, `warren-agent: exec format error`) {
		t.Errorf("the server log does not say why:\n%s", logged)
	}
	starts := w.called("node.start")
	if len(starts) != 1 || len(w.called("node.stop")) != 1 || len(w.called("agent.close")) != 1 {
		t.Errorf("starts %q, stops %q, closes %q", starts, w.called("node.stop"), w.called("agent.close"))
	}
	if row := w.row(strings.Fields(starts[0])[1]); row.State != domain.StateError {
		t.Errorf("row: %s", row.State)
	}
}
