package rest

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

// TestCreateSandboxIdempotencyKey: the Idempotency-Key header reaches the service; an
// empty or repeated header is refused before it; the service's refusals (a key of the
// wrong form, the key used with another body) map to 400 and 409.
func TestCreateSandboxIdempotencyKey(t *testing.T) {
	h := newHarness(t)
	var got []string
	h.svc.create = func(_ context.Context, _ domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error) {
		got = append(got, req.IdempotencyKey)
		if err := domain.CheckIdempotencyKey(req.IdempotencyKey); req.IdempotencyKey != "" && err != nil {
			return nil, err
		}
		if req.IdempotencyKey == "used" {
			return nil, domain.Errorf(domain.KindConflict, "Idempotency-Key %q was already used with a different request", req.IdempotencyKey)
		}
		return testSandbox(), nil
	}
	post := func(keys ...string) *http.Request {
		r := h.req("POST", "/v1/sandboxes", `{"template":"base"}`)
		for _, k := range keys {
			r.Header.Add("Idempotency-Key", k)
		}
		return r
	}
	if res := h.serve(post("order-1")); res.Status != http.StatusCreated {
		t.Fatalf("create with a key: %d %s", res.Status, res.Body)
	}
	if res := h.serve(post()); res.Status != http.StatusCreated {
		t.Fatalf("create without a key: %d %s", res.Status, res.Body)
	}
	if len(got) != 2 || got[0] != "order-1" || got[1] != "" {
		t.Fatalf("service got keys %q; want order-1 then none", got)
	}
	cases := []struct {
		name   string
		keys   []string
		status int
		code   string
		msg    string
		called bool
	}{
		{"empty", []string{""}, 400, "invalid", "is empty", false},
		{"twice", []string{"a", "b"}, 400, "invalid", "given 2 times", false},
		{"too long", []string{strings.Repeat("k", 256)}, 400, "invalid", "1 to 255 characters", true},
		{"used with another body", []string{"used"}, 409, "conflict", "different request", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			field := "Idempotency-Key"
			if tc.status == 409 {
				field = ""
			}
			m := h.wantError(h.serve(post(tc.keys...)), tc.status, tc.code, field)
			if msg, _ := m["message"].(string); !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q, want it to say %q", msg, tc.msg)
			}
			if (len(got) > 0) != tc.called {
				t.Errorf("service called %v, want %v", len(got) > 0, tc.called)
			}
		})
	}
}
