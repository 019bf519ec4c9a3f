// Package edgetest is the test support that api/rest and api/e2b share: requests, a
// captured result, a concurrency-safe log buffer, and the errors both APIs must render
// without leaking what they wrap.
package edgetest

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// NewLogger returns a debug-level JSON logger writing into the returned buffer.
func NewLogger() (*slog.Logger, *LogBuffer) {
	b := &LogBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// LogBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// NewRequest builds a request with body: nil (none), a string or []byte (sent raw), or
// anything else (sent as JSON, with Content-Type application/json).
func NewRequest(t testing.TB, method, target string, body any) *http.Request {
	t.Helper()
	var rd io.Reader
	isJSON := false
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd, isJSON = bytes.NewReader(js), true
	}
	r := httptest.NewRequest(method, target, rd)
	if isJSON {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

// Result is a response as a test sees it.
type Result struct {
	Status int
	Header http.Header
	Body   []byte
}

// Serve runs r through h and checks what every response of Warren's APIs has: an
// X-Request-Id header.
func Serve(t testing.TB, h http.Handler, r *http.Request) Result {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	res := Result{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	if res.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s %s: no X-Request-Id header", r.Method, r.URL)
	}
	return res
}

// Obj decodes a JSON object body.
func (r Result) Obj(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// Arr decodes a JSON array of objects.
func (r Result) Arr(t testing.TB) []map[string]any {
	t.Helper()
	var a []map[string]any
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatalf("response is not a JSON array: %v\n%s", err, r.Body)
	}
	return a
}
