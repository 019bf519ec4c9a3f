package agentclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/agent"
	"github.com/warren-sh/warren/internal/envdpb/process"
	"github.com/warren-sh/warren/internal/testenv"
)

// newTestAgent runs a real agent in-process (processes run on this host, as root) and
// returns a client for it. The agent is shut down when the test ends.
func newTestAgent(t *testing.T) *Client {
	t.Helper()
	testenv.NeedsRoot(t, "the agent switches users for the processes it starts")
	a, err := agent.New(agent.Config{AccessToken: "tok", DefaultUser: "root"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	c := New(strings.TrimPrefix(srv.URL, "http://"), "tok")
	t.Cleanup(func() {
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("agent shutdown: %v", err)
		}
		srv.CloseClientConnections()
		srv.Close()
	})
	return c
}

// readUntil reads the terminal's output into out until out contains want.
func readUntil(t *testing.T, p *PTY, out *bytes.Buffer, want string) {
	t.Helper()
	found := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for !strings.Contains(out.String(), want) {
			n, err := p.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				found <- err
				return
			}
		}
		found <- nil
	}()
	select {
	case err := <-found:
		if err != nil {
			t.Fatalf("output ended (%v) before %q appeared; output:\n%s", err, want, out)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%q did not appear in the output within 20s", want)
	}
}

func startShell(t *testing.T, c *Client, cols, rows uint32) *PTY {
	t.Helper()
	p, err := c.Processes().StartPTY(context.Background(), PTYRequest{
		Cmd: "/bin/bash", Args: []string{"--norc", "--noprofile", "-i"},
		Env: map[string]string{"PS1": "$ ", "TERM": "xterm"}, User: "root", Cols: cols, Rows: rows,
	})
	if err != nil {
		t.Fatalf("StartPTY: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPTYSession(t *testing.T) {
	c := newTestAgent(t)
	p := startShell(t, c, 90, 30)
	if p.PID() == 0 {
		t.Fatal("no pid")
	}
	var out bytes.Buffer
	// The quotes keep the typed line (echoed by the terminal) from containing the word
	// the command prints.
	if _, err := p.Write([]byte("echo hel''lo; stty size\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, p, &out, "hello")
	readUntil(t, p, &out, "30 90")

	if err := p.Resize(context.Background(), 100, 40); err != nil {
		t.Fatalf("Resize: %v", err)
	}
	out.Reset()
	if _, err := p.Write([]byte("stty size\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, p, &out, "40 100")

	if _, err := p.Write([]byte("exit 3\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, p); err != nil {
		t.Fatalf("reading to the end: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, err := p.Wait(ctx)
	if err != nil || code != 3 {
		t.Fatalf("Wait = %d, %v; want 3, nil", code, err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close after exit: %v", err)
	}
	// Input to an ended process is refused.
	if _, err := p.Write([]byte("x")); err == nil {
		t.Error("Write after exit succeeded")
	}
}

// TestPTYCloseKills: closing a session whose shell still runs ends the shell and its
// foreground job (which has a process group of its own); the agent forgets it, and a
// second Close is harmless.
func TestPTYCloseKills(t *testing.T) {
	c := newTestAgent(t)
	p := startShell(t, c, 0, 0) // 0x0 means the default size
	var out bytes.Buffer
	if _, err := p.Write([]byte("stty size\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, p, &out, "24 80")
	// A duration no other test uses, to find the job among the host's processes.
	job := fmt.Sprintf("sleep %d.%03d", 100000+os.Getpid()%100000, time.Now().Nanosecond()/1e6)
	if _, err := p.Write([]byte(job + "\n")); err != nil {
		t.Fatal(err)
	}
	waitProc(t, job, true)
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	waitProc(t, job, false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.proc.List(context.Background(), connect.NewRequest(&process.ListRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		running := false
		for _, pi := range resp.Msg.GetProcesses() {
			running = running || pi.GetPid() == p.PID()
		}
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs 10s after Close", p.PID())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, err := p.Read(make([]byte, 10)); !errors.Is(err, io.EOF) {
		t.Errorf("Read after Close = %d, %v; want EOF", n, err)
	}
}

// waitProc waits until a process whose command line is cmdline exists (or not).
func waitProc(t *testing.T, cmdline string, exists bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		found := false
		dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, d := range dirs {
			b, _ := os.ReadFile(d)
			found = found || strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")) == cmdline
		}
		if found == exists {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %q exists = %v after 10s, want %v", cmdline, found, exists)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPTYStartErrors(t *testing.T) {
	c := newTestAgent(t)
	cases := []struct {
		name string
		req  PTYRequest
	}{
		{"no such program", PTYRequest{Cmd: "/no/such/program"}},
		{"unknown user", PTYRequest{Cmd: "/bin/true", User: "nobody-here"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := c.Processes().StartPTY(context.Background(), tc.req)
			if err == nil {
				p.Close()
				t.Fatal("StartPTY succeeded")
			}
		})
	}
}
