package warren

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// testKey is the API key the fake servers expect.
const testKey = "sk_test"

// fakeServer is an httptest server whose handler is a function field, recording the
// requests it got.
type fakeServer struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	handler http.HandlerFunc
	reqs    []recorded
}

// recorded is a request as the fake saw it.
type recorded struct {
	method, path, query string
	header              http.Header
	body                []byte
	at                  time.Time
}

func newFake(t *testing.T, h http.HandlerFunc) *fakeServer {
	t.Helper()
	f := &fakeServer{t: t, handler: h}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), body, time.Now()})
		h := f.handler
		f.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		h(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// client returns a client of the fake with fast retries, reading no environment.
func (f *fakeServer) client(opts ...Option) *Client {
	f.t.Helper()
	base := []Option{WithEnv(nil), WithAPIURL(f.srv.URL), WithAPIKey(testKey),
		WithRetry(RetryPolicy{BaseDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond})}
	c, err := New(append(base, opts...)...)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// set replaces the handler.
func (f *fakeServer) set(h http.HandlerFunc) {
	f.mu.Lock()
	f.handler = h
	f.mu.Unlock()
}

func (f *fakeServer) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// last returns the last request, failing the test if there was none.
func (f *fakeServer) last() recorded {
	f.t.Helper()
	reqs := f.requests()
	if len(reqs) == 0 {
		f.t.Fatal("the fake server got no request")
	}
	return reqs[len(reqs)-1]
}

// writeJSON answers with status and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError answers with the API's error body.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Request-Id", "req_test")
	writeJSON(w, status, map[string]any{"code": code, "message": msg, "request_id": "req_test"})
}

// sse writes events as a text/event-stream, flushing after each.
func sse(w http.ResponseWriter, events ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Request-Id", "req_sse")
	for _, ev := range events {
		fmt.Fprint(w, ev)
		w.(http.Flusher).Flush()
	}
}

// ev formats one SSE event with JSON data.
func ev(name string, data any) string {
	b, _ := json.Marshal(data)
	return "event: " + name + "\ndata: " + string(b) + "\n\n"
}

// decodeBody decodes a recorded JSON body into a map.
func decodeBody(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("request body %q: %v", b, err)
	}
	return m
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// mustRead reads a request's body.
func mustRead(r *http.Request) []byte {
	b, _ := io.ReadAll(r.Body)
	return b
}
