package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// metricsFake is a Metrics that sums what it is told.
type metricsFake struct {
	mu       sync.Mutex
	statuses []int
	in, out  int64
}

func (m *metricsFake) Request(status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.statuses = append(m.statuses, status)
}

func (m *metricsFake) Bytes(in, out int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.in += in
	m.out += out
}

func (m *metricsFake) snapshot() ([]int, int64, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int(nil), m.statuses...), m.in, m.out
}

// TestMetrics: each request is counted by its status (the proxy's own errors too), the
// body bytes both ways, and an upgraded connection as 101 with what crossed it.
func TestMetrics(t *testing.T) {
	mx := &metricsFake{}
	port := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			buf := make([]byte, 5)
			if _, err := io.ReadFull(brw, buf); err == nil {
				conn.Write([]byte("0123456789"))
			}
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %d bytes", len(b)) // "got 1000 bytes": 14
	})
	srv, _ := startProxy(t, Config{Metrics: mx}, nil)
	do(t, newReq(t, srv, "POST", "/x", port, strings.NewReader(strings.Repeat("a", 1000))))
	do(t, newReq(t, srv, "GET", "/x", closedPort(t), nil))

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %d-%s.localhost:3001\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", port, testID)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	conn.Write([]byte("hello"))
	got := make([]byte, 10)
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	deadline := time.Now().Add(5 * time.Second)
	for {
		statuses, in, out := mx.snapshot()
		if len(statuses) == 3 {
			if fmt.Sprint(statuses) != "[200 502 101]" {
				t.Errorf("statuses %v, want [200 502 101]", statuses)
			}
			// in: the 1000-byte body and the 5 bytes after the upgrade; out: "got 1000
			// bytes", the 502 body, and the 10 bytes after the upgrade.
			if in != 1005 {
				t.Errorf("bytes in %d, want 1005", in)
			}
			if out < 14+10+1 {
				t.Errorf("bytes out %d, want at least %d", out, 14+10+1)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests counted: %v, want 3", statuses)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
