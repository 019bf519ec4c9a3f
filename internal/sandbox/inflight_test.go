package sandbox

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// blockingAgent is an agent whose calls never answer, like one in a sandbox frozen by
// a pause: each waits until its context ends. started receives a call's name once it
// waits; deadline records whether its context had a deadline.
type blockingAgent struct {
	fileAgent
	processAgent
	codeAgent
	started  chan string
	mu       sync.Mutex
	deadline map[string]bool
}

func (b *blockingAgent) block(ctx context.Context, name string) error {
	_, ok := ctx.Deadline()
	b.mu.Lock()
	b.deadline[name] = ok
	b.mu.Unlock()
	b.started <- name
	<-ctx.Done()
	return domain.Errorf(domain.KindUnavailable, "the sandbox's agent did not answer: %v", ctx.Err())
}

func (b *blockingAgent) Stat(ctx context.Context, _, _ string) (*domain.FileInfo, error) {
	return nil, b.block(ctx, "stat")
}

func (b *blockingAgent) ReadFile(ctx context.Context, _, _ string, _ io.Writer) error {
	return b.block(ctx, "read")
}

func (b *blockingAgent) ListProcesses(ctx context.Context) ([]domain.ProcessInfo, error) {
	return nil, b.block(ctx, "processes")
}

func (b *blockingAgent) Signal(ctx context.Context, _ uint32, _ string) error {
	return b.block(ctx, "signal")
}

func (b *blockingAgent) Exec(ctx context.Context, _ domain.ExecRequest, _ func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	return nil, b.block(ctx, "exec")
}

func (b *blockingAgent) ListCodeContexts(ctx context.Context) ([]domain.CodeContext, error) {
	return nil, b.block(ctx, "contexts")
}

func (b *blockingAgent) RunCode(ctx context.Context, _ domain.RunCode, _ func(domain.CodeEvent) error) error {
	return b.block(ctx, "code")
}

// TestCallsEndWhenSandboxStops: calls to a sandbox's agent that are waiting for an
// answer when the sandbox is paused or killed end at once with a conflict saying so
// (not a hang, not the broken connection's error); calls that answer once are bounded
// by agentCallTimeout, streams are not; and a resumed sandbox gets a new connection.
func TestCallsEndWhenSandboxStops(t *testing.T) {
	for _, stop := range []string{"pause", "kill"} {
		t.Run(stop, func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			b := &blockingAgent{started: make(chan string, 16), deadline: map[string]bool{}}
			var dials []string
			w.svc.cfg.dial = func(address, token string) *agent {
				dials = append(dials, address)
				conn := &fakeAgent{
					waitReady: func(context.Context) error { return nil },
					metrics: func(ctx context.Context) (*domain.SandboxMetrics, error) {
						return nil, b.block(ctx, "metrics")
					},
					closed: func() { w.record("agent.close " + address) },
				}
				return &agent{conn: conn, files: b, procs: b, code: b}
			}
			sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{})
			if err != nil {
				t.Fatal(err)
			}
			files, procs, code := NewFiles(w.svc), NewProcesses(w.svc), NewCode(w.svc)
			calls := map[string]func() error{
				"metrics": func() error { _, err := w.svc.Metrics(ctx, writer, sb.ID); return err },
				"stat":    func() error { _, err := files.StatFile(ctx, writer, sb.ID, "/x", ""); return err },
				"read":    func() error { return files.ReadFile(ctx, writer, sb.ID, "/x", "", io.Discard) },
				"processes": func() error {
					_, err := procs.ListProcesses(ctx, writer, sb.ID)
					return err
				},
				"signal": func() error { return procs.SignalProcess(ctx, writer, sb.ID, 7, "TERM") },
				"exec": func() error {
					_, err := procs.Exec(ctx, writer, sb.ID, domain.ExecRequest{Cmd: "true"}, nil)
					return err
				},
				"contexts": func() error { _, err := code.ListCodeContexts(ctx, writer, sb.ID); return err },
				"code":     func() error { return code.RunCode(ctx, writer, sb.ID, domain.RunCode{Code: "1"}, nil) },
			}
			errs := make(chan string, len(calls))
			for name, call := range calls {
				go func() { errs <- fmt.Sprintf("%s: %v", name, call()) }()
			}
			for range calls {
				select {
				case <-b.started:
				case <-time.After(5 * time.Second):
					t.Fatal("the calls did not all reach the agent")
				}
			}
			for name, want := range map[string]bool{"metrics": true, "stat": true, "read": false, "processes": true,
				"signal": true, "exec": false, "contexts": true, "code": false} {
				if b.deadline[name] != want {
					t.Errorf("%s: context has a deadline %v, want %v", name, b.deadline[name], want)
				}
			}
			if stop == "pause" {
				if _, err := w.svc.Pause(ctx, writer, sb.ID); err != nil {
					t.Fatal(err)
				}
			} else if err := w.svc.Kill(ctx, writer, sb.ID); err != nil {
				t.Fatal(err)
			}
			word := map[string]string{"pause": "was paused while the request ran", "kill": "was stopped (killed)"}[stop]
			for range calls {
				select {
				case e := <-errs:
					if !strings.Contains(e, word) {
						t.Errorf("%s; want %q", e, word)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("calls in flight did not end within 5 s of the %s", stop)
				}
			}
			if got := w.called("agent.close"); len(got) != 1 {
				t.Errorf("agent connections closed: %q", got)
			}
			if stop == "pause" {
				if _, err := w.svc.Resume(ctx, writer, sb.ID, time.Minute); err != nil {
					t.Fatal(err)
				}
				if len(dials) != 2 {
					t.Errorf("dials %q: want a new connection for the resumed sandbox", dials)
				}
			}
		})
	}
}
