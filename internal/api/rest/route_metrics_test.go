package rest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// metricsFake is an edge.Metrics that remembers what it was told.
type metricsFake struct {
	mu       sync.Mutex
	requests []string
	refusals []string
}

func (m *metricsFake) Request(api, route, method string, status int, _ time.Duration, teamID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests = append(m.requests, fmt.Sprintf("%s|%s|%s|%d|%s", api, route, method, status, teamID))
}

func (m *metricsFake) Refused(kind, reason, teamID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refusals = append(m.refusals, kind+"|"+reason+"|"+teamID)
}

// TestRouteMetrics: requests are recorded by their route pattern, never their path or
// an id in it; paths no route serves as "unmatched"; unusual methods as "other"; quota
// and rate-limit refusals by what ran out.
func TestRouteMetrics(t *testing.T) {
	mx := &metricsFake{}
	limited := false
	h := newHarness(t, WithMetrics(mx), WithRateLimit(func(context.Context, string, int64) (bool, time.Duration) {
		return !limited, time.Second
	}))
	h.keys.authenticate = func(context.Context, string) (domain.Principal, error) {
		p := testPrincipal
		p.RequestsPerMinute = 100
		return p, nil
	}
	h.svc.get = func(context.Context, domain.Principal, string) (*domain.Sandbox, error) { return testSandbox(), nil }
	h.svc.create = func(context.Context, domain.Principal, domain.CreateSandbox) (*domain.Sandbox, error) {
		return nil, domain.CheckSandboxQuota(domain.Quota{MaxSandboxes: 1}, domain.QuotaUsage{Sandboxes: 1}, domain.Limits{})
	}
	const id = "sbxid0123456789abcde"
	h.do("GET", "/v1/sandboxes/"+id, nil)
	h.do("POST", "/v1/sandboxes", map[string]any{})
	h.do("GET", "/v1/no/such/"+id, nil)
	h.do("PUT", "/v1/sandboxes/"+id, nil)
	h.serve(h.req("BREW", "/v1/sandboxes", nil))
	limited = true
	h.do("GET", "/v1/sandboxes/"+id, nil)

	want := []string{
		"v1|GET /v1/sandboxes/{id}|GET|200|" + testSandbox().TeamID,
		"v1|POST /v1/sandboxes|POST|429|" + testSandbox().TeamID,
		"v1|unmatched|GET|404|",
		"v1|/v1/sandboxes/{id}|PUT|405|",
		"v1|/v1/sandboxes|other|405|",
		"v1|GET /v1/sandboxes/{id}|GET|429|" + testSandbox().TeamID,
	}
	if got := strings.Join(mx.requests, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("requests recorded:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	for _, r := range mx.requests {
		if strings.Contains(r, id) {
			t.Errorf("request recorded with the sandbox id: %s", r)
		}
	}
	wantRefusals := "quota|sandboxes|" + testSandbox().TeamID + "\nrate_limit|requests_per_minute|" + testSandbox().TeamID
	if got := strings.Join(mx.refusals, "\n"); got != wantRefusals {
		t.Errorf("refusals:\n%s\nwant:\n%s", got, wantRefusals)
	}
}
