package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func newTestClient(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL+"/prefix/", "sk_test")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNew(t *testing.T) {
	for _, bad := range []string{"", "127.0.0.1:3000", "ftp://host", "http://", "http://h/?q=1", "http://h/#f"} {
		if _, err := New(bad, "k"); err == nil {
			t.Errorf("New(%q) succeeded", bad)
		}
	}
	if _, err := New("http://h", "k", WithHTTPClient(nil)); err == nil {
		t.Error("WithHTTPClient(nil) accepted")
	}
}

func TestAPIError(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer sk_test" {
			t.Errorf("Authorization = %q", got)
		}
		if !strings.HasPrefix(r.URL.Path, "/prefix/v1/") {
			t.Errorf("path %q lost the base URL's prefix", r.URL.Path)
		}
		switch r.URL.Path {
		case "/prefix/v1/sandboxes/abc":
			w.Header().Set("X-Request-Id", "req_1")
			w.WriteHeader(404)
			fmt.Fprint(w, `{"code":"not_found","message":"sandbox \"abc\" not found","request_id":"req_1"}`)
		default:
			w.Header().Set("X-Request-Id", "req_2")
			w.WriteHeader(502)
			fmt.Fprint(w, "<html>bad gateway</html>")
		}
	})
	_, err := c.GetSandbox(context.Background(), "abc")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "not_found" || ae.RequestID != "req_1" {
		t.Fatalf("err = %#v", err)
	}
	if got := err.Error(); got != `sandbox "abc" not found (HTTP 404, not_found, request req_1)` {
		t.Errorf("Error() = %q", got)
	}
	_, err = c.Templates(context.Background())
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Code != "http_502" || ae.RequestID != "req_2" || !strings.Contains(ae.Message, "Bad Gateway") {
		t.Errorf("non-JSON error = %#v", err)
	}
}

func TestSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{0: 0, time.Second: 1, 1500 * time.Millisecond: 2, time.Minute: 60} {
		if got := seconds(d); got != want {
			t.Errorf("seconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestExecWireStdin(t *testing.T) {
	w := toExecWire(ExecRequest{Cmd: "cat", Stdin: []byte("text")}, false)
	if w.Stdin == nil || *w.Stdin != "text" || w.StdinBase64 != nil {
		t.Errorf("text stdin: %+v", w)
	}
	w = toExecWire(ExecRequest{Cmd: "cat", Stdin: []byte{0xff}}, true)
	if w.Stdin != nil || w.StdinBase64 == nil || *w.StdinBase64 != "/w==" || !w.Stream {
		t.Errorf("binary stdin: %+v", w)
	}
}

func sseHandler(t *testing.T, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "text/event-stream" {
			t.Errorf("Accept = %q", r.Header.Get("Accept"))
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Request-Id", "req_s")
		io.WriteString(w, body)
	}
}

func TestExecStream(t *testing.T) {
	body := ": keep-alive\n\n" +
		"event: start\ndata: {\"pid\":9}\n\n" +
		"event: stdout\ndata: {\"data\":\"aGk=\",\"text\":\"hi\"}\n\n" +
		"event: future\ndata: {}\n\n" + // unknown events are skipped
		"id: 4\nevent: stderr\ndata:{\"data\":\"/w==\",\"text\":\"\ufffd\"}\n\n" +
		"event: end\ndata: {\"exit_code\":2,\"error\":\"exit status 2\"}\n\n"
	c := newTestClient(t, sseHandler(t, body))
	var got []string
	res, err := c.ExecStream(context.Background(), "abc", ExecRequest{Cmd: "x"}, func(ev ExecEvent) error {
		got = append(got, fmt.Sprintf("%s:%d:%q", ev.Type, ev.PID, ev.Data))
		return nil
	})
	if err != nil || res.ExitCode != 2 || res.Error != "exit status 2" {
		t.Fatalf("result %+v, err %v", res, err)
	}
	want := `[start:9:"" stdout:0:"hi" stderr:0:"\xff" end:0:""]`
	if fmt.Sprint(got) != want {
		t.Errorf("events %v, want %s", got, want)
	}
}

func TestExecStreamFailures(t *testing.T) {
	ctx := context.Background()
	c := newTestClient(t, sseHandler(t, "event: start\ndata: {\"pid\":1}\n\n"+
		"event: error\ndata: {\"code\":\"unavailable\",\"message\":\"agent gone\",\"request_id\":\"req_e\"}\n\n"))
	_, err := c.ExecStream(ctx, "abc", ExecRequest{Cmd: "x"}, nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "unavailable" || ae.RequestID != "req_e" || ae.Status != 200 {
		t.Errorf("error event: %#v", err)
	}

	c = newTestClient(t, sseHandler(t, "event: start\ndata: {\"pid\":1}\n\n"))
	if _, err := c.ExecStream(ctx, "abc", ExecRequest{Cmd: "x"}, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("stream without end: %v", err)
	}

	stop := errors.New("stop")
	c = newTestClient(t, sseHandler(t, "event: start\ndata: {\"pid\":1}\n\nevent: end\ndata: {\"exit_code\":0}\n\n"))
	if _, err := c.ExecStream(ctx, "abc", ExecRequest{Cmd: "x"}, func(ExecEvent) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error: %v", err)
	}

	c = newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"exit_code":0,"stdout":"","stderr":""}`)
	})
	if _, err := c.ExecStream(ctx, "abc", ExecRequest{Cmd: "x"}, nil); err == nil || !strings.Contains(err.Error(), "not an event stream") {
		t.Errorf("JSON instead of a stream: %v", err)
	}
}

func TestDownloadBroken(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "short")
	})
	var sb strings.Builder
	n, err := c.Download(context.Background(), "abc", "/f", &sb)
	if err == nil || n != 5 {
		t.Errorf("short body: n=%d err=%v", n, err)
	}
}
