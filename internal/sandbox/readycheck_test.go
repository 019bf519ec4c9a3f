package sandbox

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func TestWaitReadyCheck(t *testing.T) {
	ctx := context.Background()
	if err := waitReadyCheck(ctx, "127.0.0.1", nil, domain.ReadyCheck{}); err != nil {
		t.Errorf("no check: %v", err)
	}
	// A port that opens after a while is waited for.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	done := make(chan error, 1)
	go func() {
		done <- waitReadyCheck(ctx, "127.0.0.1", nil, domain.ReadyCheck{Port: port, Timeout: time.Minute})
	}()
	time.Sleep(300 * time.Millisecond)
	l, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("port %d was taken meanwhile: %v", port, err)
	}
	defer l.Close()
	if err := <-done; err != nil {
		t.Errorf("a port that opened: %v", err)
	}
	// A port that never opens is a clear KindUnavailable within the check's timeout.
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l2.Addr().(*net.TCPAddr).Port
	l2.Close()
	err = waitReadyCheck(ctx, "127.0.0.1", nil, domain.ReadyCheck{Port: closed, Timeout: 300 * time.Millisecond})
	if !domain.IsKind(err, domain.KindUnavailable) {
		t.Errorf("a port that never opens: %v", err)
	}
}

// TestWaitReadyCheckInSandbox: the kinds other than a port run a command in the sandbox
// until it exits 0; past the timeout the error carries the last attempt's answer.
func TestWaitReadyCheckInSandbox(t *testing.T) {
	cases := []struct {
		name   string
		rc     domain.ReadyCheck
		script []string // substrings of the command run
	}{
		{"url", domain.ReadyCheck{URL: "http://localhost:8080/it's"}, []string{"curl -fsS -o /dev/null --max-time 5 'http://localhost:8080/it'\\''s'", "wget -q -O /dev/null"}},
		{"process", domain.ReadyCheck{Process: "nginx"}, []string{"pgrep -- 'nginx' >/dev/null"}},
		{"file", domain.ReadyCheck{File: "/tmp/ready"}, []string{"[ -e '/tmp/ready' ]"}},
		{"cmd", domain.ReadyCheck{Cmd: "test -s /srv/up"}, []string{"test -s /srv/up"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			var runs []domain.ExecRequest
			exec := func(_ context.Context, req domain.ExecRequest) (*domain.ExecResult, error) {
				mu.Lock()
				defer mu.Unlock()
				runs = append(runs, req)
				switch len(runs) {
				case 1:
					return nil, errors.New("agent not there yet")
				case 2:
					return &domain.ExecResult{ExitCode: 1, Stderr: []byte("not yet")}, nil
				}
				return &domain.ExecResult{}, nil
			}
			rc := c.rc
			rc.Timeout = time.Minute
			if err := waitReadyCheck(context.Background(), "10.0.0.2", exec, rc); err != nil {
				t.Fatal(err)
			}
			if len(runs) != 3 {
				t.Fatalf("%d attempts, want 3 (until the command exits 0)", len(runs))
			}
			for _, want := range c.script {
				if !strings.Contains(runs[0].Cmd, want) {
					t.Errorf("command %q lacks %q", runs[0].Cmd, want)
				}
			}
			if runs[0].User != "root" || runs[0].Timeout != readyAttempt {
				t.Errorf("ran as %q with timeout %v, want root and %v", runs[0].User, runs[0].Timeout, readyAttempt)
			}
		})
	}

	failing := func(context.Context, domain.ExecRequest) (*domain.ExecResult, error) {
		return &domain.ExecResult{ExitCode: 7, Stderr: []byte("curl: (7) Failed to connect to localhost port 8080")}, nil
	}
	err := waitReadyCheck(context.Background(), "10.0.0.2", failing, domain.ReadyCheck{URL: "http://localhost:8080/", Timeout: 500 * time.Millisecond})
	if !domain.IsKind(err, domain.KindUnavailable) || !strings.Contains(err.Error(), "exit code 7: curl: (7) Failed to connect") ||
		!strings.Contains(err.Error(), "GET http://localhost:8080/ answers 2xx or 3xx") {
		t.Errorf("a check that never passes: %v", err)
	}
}
