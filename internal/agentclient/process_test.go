package agentclient

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// attached collects what Attach reports, in a goroutine.
type attached struct {
	mu     sync.Mutex
	pid    uint32
	stdout strings.Builder
	res    *domain.ExecResult
	err    error
	done   chan struct{}
}

func attach(t *testing.T, c *Client, pid uint32) *attached {
	t.Helper()
	a := &attached{done: make(chan struct{})}
	started := make(chan struct{})
	go func() {
		defer close(a.done)
		res, err := c.Attach(context.Background(), pid, func(ev domain.ExecEvent) error {
			a.mu.Lock()
			defer a.mu.Unlock()
			if ev.PID != 0 {
				a.pid = ev.PID
				close(started)
			}
			a.stdout.Write(ev.Stdout)
			return nil
		})
		a.mu.Lock()
		a.res, a.err = res, err
		a.mu.Unlock()
		if a.pid == 0 {
			close(started)
		}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatalf("attaching to %d: no start event within 10s", pid)
	}
	return a
}

func (a *attached) output() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stdout.String()
}

func (a *attached) wait(t *testing.T) (*domain.ExecResult, error) {
	t.Helper()
	select {
	case <-a.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the attached stream did not end within 15s")
	}
	return a.res, a.err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func running(t *testing.T, c *Client, pid uint32) bool {
	t.Helper()
	list, err := c.ListProcesses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list {
		if p.PID == pid {
			return true
		}
	}
	return false
}

// marker is a sleep duration unique to this test run, to find its processes.
func marker() string {
	return fmt.Sprintf("%d.%03d", 200000+os.Getpid()%100000, time.Now().Nanosecond()/1e6)
}

func TestExecTimeoutIsAResult(t *testing.T) {
	c := newTestAgent(t)
	m := marker()
	t0 := time.Now()
	res, err := c.Exec(context.Background(), domain.ExecRequest{Cmd: "echo started; exec sleep " + m, Timeout: time.Second}, nil)
	took := time.Since(t0)
	if err != nil {
		t.Fatalf("a command past its timeout: %v, want a result", err)
	}
	if !res.TimedOut || res.ExitCode != -1 || string(res.Stdout) != "started\n" || !strings.Contains(res.Error, "timed out after 1s") {
		t.Errorf("result %+v (stdout %q)", res, res.Stdout)
	}
	if took > 5*time.Second {
		t.Errorf("a command with a 1 s timeout returned after %v", took)
	}
	waitFor(t, "the timed-out sleep is gone", func() bool {
		out, _ := c.Exec(context.Background(), domain.ExecRequest{Cmd: "pgrep -f 'slee[p] " + m + "' || true"}, nil)
		return strings.TrimSpace(string(out.Stdout)) == ""
	})

	// A command that ends by itself within its timeout is not timed out, even when a
	// signal ended it.
	res, err = c.Exec(context.Background(), domain.ExecRequest{Cmd: "kill -KILL $$", Timeout: 30 * time.Second}, nil)
	if err != nil || res.TimedOut || res.ExitCode != -1 {
		t.Errorf("self-killed command: %+v, %v", res, err)
	}
}

func TestBackgroundStdinAndAttach(t *testing.T) {
	c := newTestAgent(t)
	ctx := context.Background()
	pid, err := c.StartBackground(ctx, domain.ExecRequest{Args: []string{"cat"}, Stdin: []byte("first\n")}, true)
	if err != nil || pid == 0 {
		t.Fatalf("start: %d, %v", pid, err)
	}
	if !running(t, c, pid) {
		t.Fatalf("pid %d not in the process list", pid)
	}
	list, _ := c.ListProcesses(ctx)
	for _, p := range list {
		if p.PID == pid && (p.Cmd != "cat" || len(p.Args) != 0 || p.Cwd == "") {
			t.Errorf("listed as %+v", p)
		}
	}
	a := attach(t, c, pid)
	if err := c.SendStdin(ctx, pid, []byte("second\n")); err != nil {
		t.Fatal(err)
	}
	// "first" may or may not be echoed after the attach: cat runs on its own time.
	waitFor(t, "cat echoes the input sent after attaching", func() bool { return strings.HasSuffix(a.output(), "second\n") })
	if out := a.output(); out != "second\n" && out != "first\nsecond\n" {
		t.Errorf("attached output %q", out)
	}
	if err := c.CloseStdin(ctx, pid); err != nil {
		t.Fatal(err)
	}
	res, err := a.wait(t)
	if err != nil || res.ExitCode != 0 || res.TimedOut {
		t.Errorf("end after closing stdin: %+v, %v", res, err)
	}
	if err := c.SendStdin(ctx, pid, []byte("x")); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("stdin to an ended process: %v, want not found", err)
	}
	if _, err := c.Attach(ctx, 999999, nil); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("attach to an unknown pid: %v, want not found", err)
	}
}

func TestBackgroundStdinClosedByDefault(t *testing.T) {
	c := newTestAgent(t)
	ctx := context.Background()
	// Without stdin_open the input given is written and stdin closed: cat ends.
	pid, err := c.StartBackground(ctx, domain.ExecRequest{Cmd: "cat > /dev/null; sleep " + marker()}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendStdin(ctx, pid, []byte("x")); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("stdin to a process started without it: %v, want conflict", err)
	}
	if err := c.Signal(ctx, pid, domain.SignalKill); err != nil {
		t.Fatal(err)
	}
}

func TestSignals(t *testing.T) {
	c := newTestAgent(t)
	ctx := context.Background()
	for _, sig := range []string{domain.SignalTerm, domain.SignalKill} {
		t.Run(sig, func(t *testing.T) {
			pid, err := c.StartBackground(ctx, domain.ExecRequest{Cmd: "sleep " + marker()}, false)
			if err != nil {
				t.Fatal(err)
			}
			a := attach(t, c, pid)
			if err := c.Signal(ctx, pid, sig); err != nil {
				t.Fatal(err)
			}
			res, err := a.wait(t)
			if err != nil || res.ExitCode != -1 || !strings.Contains(res.Error, "signal") {
				t.Errorf("end after %s: %+v, %v", sig, res, err)
			}
			if err := c.Signal(ctx, pid, sig); !domain.IsKind(err, domain.KindNotFound) {
				t.Errorf("signal to an ended process: %v, want not found", err)
			}
		})
	}
	if err := c.Signal(ctx, 1, "INT"); !domain.IsKind(err, domain.KindInvalid) {
		t.Errorf("INT: %v, want invalid", err)
	}
}

func TestBackgroundTimeout(t *testing.T) {
	c := newTestAgent(t)
	pid, err := c.StartBackground(context.Background(), domain.ExecRequest{Cmd: "sleep " + marker(), Timeout: 500 * time.Millisecond}, false)
	if err != nil {
		t.Fatal(err)
	}
	// Detaching did not end it...
	if !running(t, c, pid) {
		t.Fatal("the background process ended when the start call returned")
	}
	// ...its lifetime does.
	waitFor(t, "the background process ends at its timeout", func() bool { return !running(t, c, pid) })
}
