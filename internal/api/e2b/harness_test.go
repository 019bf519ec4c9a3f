package e2b

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/api/edge/edgetest"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
)

// harness is a Server over fakes, with its logs captured.
type harness struct {
	t    *testing.T
	svc  *fake.Sandboxes
	keys *fake.Keys
	srv  *Server
	logs *edgetest.LogBuffer
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	log, logs := edgetest.NewLogger()
	h := &harness{t: t, svc: &fake.Sandboxes{}, logs: logs}
	h.keys = &fake.Keys{AuthenticateFn: func(_ context.Context, secret string) (domain.Principal, error) {
		if secret != testKey {
			return domain.Principal{}, domain.NotFound("API key", "")
		}
		return testTeam, nil
	}}
	h.srv = New(h.svc, h.keys, log, Config{Domain: testDomain,
		DefaultLimits: domain.Limits{CPUCores: 1.5, MemoryMB: 512, DiskMB: 2048}, Logs: h.svc})
	return h
}

// req builds a request authenticated with X-API-Key (see edgetest.NewRequest for body).
func (h *harness) req(method, target string, body any) *http.Request {
	h.t.Helper()
	r := edgetest.NewRequest(h.t, method, target, body)
	r.Header.Set("X-API-Key", testKey)
	return r
}

// serve runs r and checks that a body is JSON, as every E2B API answer is.
func (h *harness) serve(r *http.Request) edgetest.Result {
	h.t.Helper()
	res := edgetest.Serve(h.t, h.srv, r)
	if len(res.Body) > 0 && res.Header.Get("Content-Type") != "application/json" {
		h.t.Errorf("%s %s: Content-Type %q, want application/json", r.Method, r.URL, res.Header.Get("Content-Type"))
	}
	return res
}

func (h *harness) do(method, target string, body any) edgetest.Result {
	h.t.Helper()
	return h.serve(h.req(method, target, body))
}

// wantStatus fails the test unless res has the status.
func wantStatus(t *testing.T, res edgetest.Result, status int) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status = %d, want %d; body %s", res.Status, status, res.Body)
	}
}

// wantError checks status, E2B's error body with the numeric code, and that the message
// contains each of substrs.
func wantError(t *testing.T, res edgetest.Result, status int, substrs ...string) {
	t.Helper()
	wantStatus(t, res, status)
	var body struct {
		Code    *int    `json:"code"`
		Message *string `json:"message"`
	}
	dec := json.NewDecoder(bytes.NewReader(res.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("error body is not {code, message}: %v\n%s", err, res.Body)
	}
	if body.Code == nil || *body.Code != status {
		t.Errorf("body code = %v, want the number %d; body %s", body.Code, status, res.Body)
	}
	if body.Message == nil || *body.Message == "" {
		t.Fatalf("error body has no message: %s", res.Body)
	}
	for _, s := range substrs {
		if !strings.Contains(*body.Message, s) {
			t.Errorf("message %q does not contain %q", *body.Message, s)
		}
	}
}

// wantNoContent checks a 204 with an empty body.
func wantNoContent(t *testing.T, res edgetest.Result) {
	t.Helper()
	wantStatus(t, res, http.StatusNoContent)
	if len(res.Body) != 0 {
		t.Errorf("204 has a body: %q", res.Body)
	}
}
