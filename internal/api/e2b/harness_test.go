package e2b

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
)

const (
	testKey    = "sk_test_key"
	testDomain = "localhost:3001"
	sbID       = "abcdefghij0123456789"
	sbID2      = "bbcdefghij0123456789"
)

// testTeam is the caller of most tests: a member's key, allowed to read and change
// sandboxes.
var testTeam = domain.Principal{TeamID: "team1", KeyID: "key1",
	Scopes: []domain.Scope{domain.ScopeSandboxesRead, domain.ScopeSandboxesWrite}}

// harness is a Server over fakes, with its logs captured.
type harness struct {
	t    *testing.T
	svc  *fake.Sandboxes
	keys *fake.Keys
	srv  *Server
	logs *syncBuffer
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, svc: &fake.Sandboxes{}, logs: &syncBuffer{}}
	h.keys = &fake.Keys{AuthenticateFn: func(_ context.Context, secret string) (domain.Principal, error) {
		if secret != testKey {
			return domain.Principal{}, domain.NotFound("API key", "")
		}
		return testTeam, nil
	}}
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.srv = New(h.svc, h.keys, log, Config{Domain: testDomain,
		DefaultLimits: domain.Limits{CPUCores: 1.5, MemoryMB: 512, DiskMB: 2048}})
	return h
}

// req builds a request authenticated with X-API-Key. body may be nil, a string (sent
// raw) or anything else (sent as JSON).
func (h *harness) req(method, target string, body any) *http.Request {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	r := httptest.NewRequest(method, target, rd)
	r.Header.Set("X-API-Key", testKey)
	if rd != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (h *harness) serve(r *http.Request) result {
	h.t.Helper()
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, r)
	res := result{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	if res.header.Get("X-Request-Id") == "" {
		h.t.Errorf("%s %s: no X-Request-Id header", r.Method, r.URL)
	}
	if len(res.body) > 0 && res.header.Get("Content-Type") != "application/json" {
		h.t.Errorf("%s %s: Content-Type %q, want application/json", r.Method, r.URL, res.header.Get("Content-Type"))
	}
	return res
}

func (h *harness) do(method, target string, body any) result {
	h.t.Helper()
	return h.serve(h.req(method, target, body))
}

// obj decodes a JSON object body.
func (r result) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// arr decodes a JSON array body.
func (r result) arr(t *testing.T) []map[string]any {
	t.Helper()
	var a []map[string]any
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("response is not a JSON array: %v\n%s", err, r.body)
	}
	return a
}

// wantStatus fails the test unless res has the status.
func wantStatus(t *testing.T, res result, status int) {
	t.Helper()
	if res.status != status {
		t.Fatalf("status = %d, want %d; body %s", res.status, status, res.body)
	}
}

// wantError checks status, E2B's error body with the numeric code, and that the message
// contains each of substrs.
func wantError(t *testing.T, res result, status int, substrs ...string) {
	t.Helper()
	wantStatus(t, res, status)
	var body struct {
		Code    *int    `json:"code"`
		Message *string `json:"message"`
	}
	dec := json.NewDecoder(bytes.NewReader(res.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("error body is not {code, message}: %v\n%s", err, res.body)
	}
	if body.Code == nil || *body.Code != status {
		t.Errorf("body code = %v, want the number %d; body %s", body.Code, status, res.body)
	}
	if body.Message == nil || *body.Message == "" {
		t.Fatalf("error body has no message: %s", res.body)
	}
	for _, s := range substrs {
		if !strings.Contains(*body.Message, s) {
			t.Errorf("message %q does not contain %q", *body.Message, s)
		}
	}
}

// wantNoContent checks a 204 with an empty body.
func wantNoContent(t *testing.T, res result) {
	t.Helper()
	wantStatus(t, res, http.StatusNoContent)
	if len(res.body) != 0 {
		t.Errorf("204 has a body: %q", res.body)
	}
}

// running returns a running sandbox of the test team.
func running(id string) *domain.Sandbox {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return &domain.Sandbox{
		ID: id, TeamID: testTeam.TeamID, TemplateID: "base", State: domain.StateRunning,
		Metadata: map[string]string{"user": "ann"}, Env: map[string]string{"SECRET": "x"},
		Limits:   domain.Limits{CPUCores: 0.5, MemoryMB: 512, DiskMB: 1024, MaxProcesses: 256},
		Internet: true, AccessToken: "envd-token", CreatedAt: now, StartedAt: now.Add(time.Second),
		EndsAt: now.Add(5 * time.Minute),
	}
}

// getReturns makes svc.Get answer sb for its id and NotFound for anything else.
func (h *harness) getReturns(sbs ...*domain.Sandbox) {
	h.svc.GetFn = func(_ context.Context, p domain.Principal, id string) (*domain.Sandbox, error) {
		if !reflect.DeepEqual(p, testTeam) {
			h.t.Errorf("Get called with principal %+v", p)
		}
		for _, sb := range sbs {
			if sb.ID == id {
				cp := *sb
				return &cp, nil
			}
		}
		return nil, domain.NotFound("sandbox", id)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
