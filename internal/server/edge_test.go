package server

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestPerIPListener: one address holds at most max connections; more are closed at
// accept (and logged once), and a closed one makes room again.
func TestPerIPListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	lim := limitPerIP(ln, 2, slog.New(slog.NewTextHandler(&logs, nil)))
	defer lim.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := lim.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	closedByServer := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF || err != nil && !strings.Contains(err.Error(), "timeout")
	}
	dial()
	dial()
	first, second := <-accepted, <-accepted
	extra, extra2 := dial(), dial()
	if !closedByServer(extra) || !closedByServer(extra2) {
		t.Fatal("connections over the cap were not closed")
	}
	if n := strings.Count(logs.String(), "connection cap"); n != 1 {
		t.Errorf("the refused address was logged %d times, want once:\n%s", n, logs.String())
	}
	second.Close()
	second.Close() // a second Close must not free another place
	third := dial()
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(2 * time.Second):
		t.Fatal("a connection after one closed was not accepted")
	}
	if closedByServer(third) {
		t.Error("the connection after one closed was closed")
	}
	if extra3 := dial(); !closedByServer(extra3) {
		t.Error("the cap let a third connection in after a double Close")
	}
	first.Close()
}

// TestBodyDeadline: a body that trickles is cut after the timeout; an upload that keeps
// sending runs past it; a response streamed after the body is not timed.
func TestBodyDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	got := make(chan string, 1)
	srv := httptest.NewServer(bodyDeadline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ignore" { // answers without reading the body, as a 401 does
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		n, err := io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/stream" {
			// Stream for longer than the timeout after the body.
			for i := 0; i < 4; i++ {
				time.Sleep(timeout / 2)
				fmt.Fprintf(w, "tick %d\n", i)
				w.(http.Flusher).Flush()
			}
			if r.Context().Err() != nil {
				fmt.Fprintf(w, "context ended: %v\n", r.Context().Err())
			}
		}
		got <- fmt.Sprintf("%d %v", n, err)
	}), timeout))
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	t.Run("trickle", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
		start := time.Now()
		for i := 0; i < 40; i++ {
			if _, err := c.Write([]byte("a")); err != nil {
				break
			}
			select {
			case res := <-got:
				if !strings.Contains(res, "timeout") {
					t.Errorf("trickled body read: %s, want a timeout", res)
				}
				if d := time.Since(start); d > 3*timeout {
					t.Errorf("cut after %s, want about %s", d, timeout)
				}
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		t.Fatal("a body trickling one byte per 50 ms was still read after 2 s")
	})
	t.Run("trickle to a handler that does not read", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
		start := time.Now()
		closed := make(chan struct{})
		go func() { // the server closes the connection once the deadline passes
			io.Copy(io.Discard, c)
			close(closed)
		}()
		for i := 0; i < 40; i++ {
			c.Write([]byte("a"))
			select {
			case <-closed:
				if d := time.Since(start); d > 3*timeout {
					t.Errorf("closed after %s, want about %s", d, timeout)
				}
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		t.Fatal("a body trickling to a handler that ignores it held the connection for 2 s")
	})
	t.Run("upload that keeps sending", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			chunk := bytes.Repeat([]byte("u"), minBodyProgress)
			for i := 0; i < 8; i++ { // 8 chunks 100 ms apart: longer than the timeout
				pw.Write(chunk)
				time.Sleep(100 * time.Millisecond)
			}
			pw.Close()
		}()
		resp, err := http.Post(srv.URL+"/x", "application/octet-stream", pr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if res := <-got; res != fmt.Sprintf("%d <nil>", 8*minBodyProgress) {
			t.Errorf("upload read: %s", res)
		}
	})
	t.Run("stream after the body", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/stream", "application/json", strings.NewReader(`{"cmd":"sleep"}`))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || strings.Count(string(b), "tick") != 4 || strings.Contains(string(b), "context ended") {
			t.Errorf("streamed response: %q, %v", b, err)
		}
		<-got
	})
}
