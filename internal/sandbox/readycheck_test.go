package sandbox

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func TestWaitReadyCheck(t *testing.T) {
	ctx := context.Background()
	if err := waitReadyCheck(ctx, "127.0.0.1", domain.ReadyCheck{}); err != nil {
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
	go func() { done <- waitReadyCheck(ctx, "127.0.0.1", domain.ReadyCheck{Port: port, Timeout: time.Minute}) }()
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
	err = waitReadyCheck(ctx, "127.0.0.1", domain.ReadyCheck{Port: closed, Timeout: 300 * time.Millisecond})
	if !domain.IsKind(err, domain.KindUnavailable) {
		t.Errorf("a port that never opens: %v", err)
	}
}
