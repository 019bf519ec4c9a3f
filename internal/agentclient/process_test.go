package agentclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/agent"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/testenv"
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
		res, err := c.Processes().Attach(context.Background(), pid, func(ev domain.ExecEvent) error {
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
	list, err := c.Processes().ListProcesses(context.Background())
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
	res, err := c.Processes().Exec(context.Background(), domain.ExecRequest{Cmd: "echo started; exec sleep " + m, Timeout: time.Second}, nil)
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
		out, _ := c.Processes().Exec(context.Background(), domain.ExecRequest{Cmd: "pgrep -f 'slee[p] " + m + "' || true"}, nil)
		return strings.TrimSpace(string(out.Stdout)) == ""
	})

	// A command that ends by itself within its timeout is not timed out, even when a
	// signal ended it.
	res, err = c.Processes().Exec(context.Background(), domain.ExecRequest{Cmd: "kill -KILL $$", Timeout: 30 * time.Second}, nil)
	if err != nil || res.TimedOut || res.ExitCode != -1 {
		t.Errorf("self-killed command: %+v, %v", res, err)
	}
}

func TestBackgroundStdinAndAttach(t *testing.T) {
	c := newTestAgent(t)
	ctx := context.Background()
	pid, err := c.Processes().StartBackground(ctx, domain.ExecRequest{Args: []string{"cat"}, Stdin: []byte("first\n")}, true)
	if err != nil || pid == 0 {
		t.Fatalf("start: %d, %v", pid, err)
	}
	if !running(t, c, pid) {
		t.Fatalf("pid %d not in the process list", pid)
	}
	list, _ := c.Processes().ListProcesses(ctx)
	for _, p := range list {
		if p.PID == pid && (p.Cmd != "cat" || len(p.Args) != 0 || p.Cwd == "") {
			t.Errorf("listed as %+v", p)
		}
	}
	a := attach(t, c, pid)
	if err := c.Processes().SendStdin(ctx, pid, []byte("second\n")); err != nil {
		t.Fatal(err)
	}
	// "first" may or may not be echoed after the attach: cat runs on its own time.
	waitFor(t, "cat echoes the input sent after attaching", func() bool { return strings.HasSuffix(a.output(), "second\n") })
	if out := a.output(); out != "second\n" && out != "first\nsecond\n" {
		t.Errorf("attached output %q", out)
	}
	if err := c.Processes().CloseStdin(ctx, pid); err != nil {
		t.Fatal(err)
	}
	res, err := a.wait(t)
	if err != nil || res.ExitCode != 0 || res.TimedOut {
		t.Errorf("end after closing stdin: %+v, %v", res, err)
	}
	if err := c.Processes().SendStdin(ctx, pid, []byte("x")); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("stdin to an ended process: %v, want not found", err)
	}
	if _, err := c.Processes().Attach(ctx, 999999, nil); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("attach to an unknown pid: %v, want not found", err)
	}
}

func TestBackgroundStdinClosedByDefault(t *testing.T) {
	c := newTestAgent(t)
	ctx := context.Background()
	// Without stdin_open the input given is written and stdin closed: cat ends.
	pid, err := c.Processes().StartBackground(ctx, domain.ExecRequest{Cmd: "cat > /dev/null; sleep " + marker()}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Processes().SendStdin(ctx, pid, []byte("x")); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("stdin to a process started without it: %v, want conflict", err)
	}
	if err := c.Processes().Signal(ctx, pid, domain.SignalKill); err != nil {
		t.Fatal(err)
	}
}

func TestSignals(t *testing.T) {
	c := newTestAgent(t)
	ctx := context.Background()
	for _, sig := range []string{domain.SignalTerm, domain.SignalKill} {
		t.Run(sig, func(t *testing.T) {
			pid, err := c.Processes().StartBackground(ctx, domain.ExecRequest{Cmd: "sleep " + marker()}, false)
			if err != nil {
				t.Fatal(err)
			}
			a := attach(t, c, pid)
			if err := c.Processes().Signal(ctx, pid, sig); err != nil {
				t.Fatal(err)
			}
			res, err := a.wait(t)
			if err != nil || res.ExitCode != -1 || !strings.Contains(res.Error, "signal") {
				t.Errorf("end after %s: %+v, %v", sig, res, err)
			}
			if err := c.Processes().Signal(ctx, pid, sig); !domain.IsKind(err, domain.KindNotFound) {
				t.Errorf("signal to an ended process: %v, want not found", err)
			}
		})
	}
	if err := c.Processes().Signal(ctx, 1, "INT"); !domain.IsKind(err, domain.KindInvalid) {
		t.Errorf("INT: %v, want invalid", err)
	}
}

func TestBackgroundTimeout(t *testing.T) {
	c := newTestAgent(t)
	pid, err := c.Processes().StartBackground(context.Background(), domain.ExecRequest{Cmd: "sleep " + marker(), Timeout: 500 * time.Millisecond}, false)
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

// followed collects what Started.Follow reports, in a goroutine.
type followed struct {
	mu     sync.Mutex
	pid    uint32
	stdout bytes.Buffer
	res    *domain.ExecResult
	err    error
	done   chan struct{}
}

func follow(st *Started) *followed {
	f := &followed{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		res, err := st.Follow(func(ev domain.ExecEvent) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			if ev.PID != 0 {
				f.pid = ev.PID
			}
			f.stdout.Write(ev.Stdout)
			return nil
		})
		f.mu.Lock()
		f.res, f.err = res, err
		f.mu.Unlock()
	}()
	return f
}

func (f *followed) wait(t *testing.T) (*domain.ExecResult, error) {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(15 * time.Second):
		t.Fatal("Follow did not return within 15s")
	}
	return f.res, f.err
}

// TestStartFollowed: the stream kept from the start has all of the output, even what
// came before anyone read it, and the end.
func TestStartFollowed(t *testing.T) {
	c := newTestAgent(t)
	ctx := context.Background()
	st, err := c.Processes().StartFollowed(ctx, ctx, domain.ExecRequest{Cmd: "echo first; sleep 0.3; echo second; exit 3"}, false)
	if err != nil || st.PID == 0 {
		t.Fatalf("start: %+v, %v", st, err)
	}
	time.Sleep(500 * time.Millisecond) // "first" was printed before the stream is read
	f := follow(st)
	res, err := f.wait(t)
	if err != nil || res.ExitCode != 3 || res.TimedOut || f.pid != st.PID || f.stdout.String() != "first\nsecond\n" {
		t.Errorf("followed: pid %d, stdout %q, %+v, %v", f.pid, f.stdout.String(), res, err)
	}
}

// TestStartFollowedTimeout: a process killed at its lifetime ends TimedOut, both
// through the kept stream and through an attach that knows the lifetime; one that
// kills itself within its lifetime does not.
func TestStartFollowedTimeout(t *testing.T) {
	c := newTestAgent(t)
	ctx := context.Background()
	cases := []struct {
		name     string
		cmd      string
		timeout  time.Duration
		detach   bool // follow through AttachLifetime instead of the kept stream
		timedOut bool
	}{
		{"kept stream", "echo started; exec sleep " + marker(), time.Second, false, true},
		{"attach with lifetime", "echo started; exec sleep " + marker(), time.Second, true, true},
		{"self-killed", "echo started; kill -KILL $$", 30 * time.Second, false, false},
		{"self-killed, attached", "sleep 0.3; kill -KILL $$", 30 * time.Second, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Now()
			st, err := c.Processes().StartFollowed(ctx, ctx, domain.ExecRequest{Cmd: tc.cmd, Timeout: tc.timeout}, false)
			if err != nil {
				t.Fatal(err)
			}
			if st.Life.Timeout != tc.timeout || st.Life.Deadline.Before(t0) {
				t.Errorf("lifetime %+v", st.Life)
			}
			var res *domain.ExecResult
			if tc.detach {
				st.Detach()
				res, err = c.Processes().AttachLifetime(ctx, st.PID, st.Life, nil)
			} else {
				f := follow(st)
				res, err = f.wait(t)
				if tc.timedOut && f.stdout.String() != "started\n" {
					t.Errorf("stdout %q", f.stdout.String())
				}
			}
			if err != nil || res.ExitCode != -1 || res.TimedOut != tc.timedOut {
				t.Fatalf("end %+v, %v; want exit -1, timed out %v", res, err, tc.timedOut)
			}
			if tc.timedOut && !strings.Contains(res.Error, "timed out after 1s") {
				t.Errorf("error %q", res.Error)
			}
			if took := time.Since(t0); tc.timedOut && took > 5*time.Second {
				t.Errorf("a 1 s lifetime ended after %v", took)
			}
			if running(t, c, st.PID) {
				t.Error("still running")
			}
		})
	}
}

// TestStartFollowedStdinEcho: stdin fed while the stream is read cannot stall a
// process that echoes more than the agent buffers per stream.
func TestStartFollowedStdinEcho(t *testing.T) {
	c := newTestAgent(t)
	ctx := context.Background()
	in := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16)
	st, err := c.Processes().StartFollowed(ctx, ctx, domain.ExecRequest{Args: []string{"cat"}, Stdin: in}, false)
	if err != nil {
		t.Fatal(err)
	}
	f := follow(st)
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := st.FeedStdin(fctx); err != nil {
		t.Fatalf("feeding 4 MiB to cat: %v", err)
	}
	res, err := f.wait(t)
	if err != nil || res.ExitCode != 0 || !bytes.Equal(f.stdout.Bytes(), in) {
		t.Errorf("%+v, %v, %d bytes echoed of %d", res, err, f.stdout.Len(), len(in))
	}
}

// TestStartFollowedLifeEnds: when the stream's life context ends, Follow returns
// and the process runs on; a caller that gives up before the start gets an error.
func TestStartFollowedLifeEnds(t *testing.T) {
	c := newTestAgent(t)
	ctx := context.Background()
	life, end := context.WithCancel(ctx)
	st, err := c.Processes().StartFollowed(ctx, life, domain.ExecRequest{Cmd: "sleep " + marker()}, false)
	if err != nil {
		t.Fatal(err)
	}
	f := follow(st)
	end()
	if res, err := f.wait(t); err == nil {
		t.Errorf("Follow after its life ended: %+v, want an error", res)
	}
	if !running(t, c, st.PID) {
		t.Error("the process ended with the stream")
	}
	if err := c.Processes().Signal(ctx, st.PID, domain.SignalKill); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if st, err := c.Processes().StartFollowed(gone, ctx, domain.ExecRequest{Cmd: "true"}, false); err == nil {
		t.Errorf("start with an ended request context: %+v, want an error", st)
	}
}

// cutter is a TCP proxy to the agent whose connections can be cut.
type cutter struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutter(t *testing.T, target string) *cutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); c.cut() })
	return c
}

// cut closes every connection made so far.
func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

// TestFollowReattaches: when the kept stream breaks, Follow re-attaches and still
// reports the rest of the output and the end.
func TestFollowReattaches(t *testing.T) {
	testenv.NeedsRoot(t, "the agent switches users for the processes it starts")
	a, err := agent.New(agent.Config{AccessToken: "tok", DefaultUser: "root"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
		srv.CloseClientConnections()
		srv.Close()
	})
	proxy := newCutter(t, strings.TrimPrefix(srv.URL, "http://"))
	c := New(proxy.ln.Addr().String(), "tok")
	defer c.Close()
	ctx := context.Background()
	st, err := c.Processes().StartFollowed(ctx, ctx, domain.ExecRequest{Cmd: "echo one; sleep 1; echo two"}, false)
	if err != nil {
		t.Fatal(err)
	}
	f := follow(st)
	waitFor(t, "the first line", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.stdout.String() == "one\n"
	})
	proxy.cut()
	res, err := f.wait(t)
	if err != nil || res.ExitCode != 0 || f.stdout.String() != "one\ntwo\n" {
		t.Errorf("after the stream broke: stdout %q, %+v, %v", f.stdout.String(), res, err)
	}
}
