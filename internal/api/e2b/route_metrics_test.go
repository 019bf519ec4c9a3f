package e2b

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/api/edge/edgetest"
	"github.com/warren-sh/warren/internal/domain"
)

// metricsFake is an edge.Metrics that remembers what it was told.
type metricsFake struct {
	mu       sync.Mutex
	requests []string
}

func (m *metricsFake) Request(api, route, method string, status int, _ time.Duration, teamID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests = append(m.requests, fmt.Sprintf("%s|%s|%s|%d|%s", api, route, method, status, teamID))
}

func (m *metricsFake) Refused(string, string, string) {}

// TestRouteMetrics: E2B requests are recorded under api e2b by their route pattern,
// never the sandbox id in their path; what no route serves is "unmatched".
func TestRouteMetrics(t *testing.T) {
	mx := &metricsFake{}
	h := newHarness(t)
	log, _ := edgetest.NewLogger()
	h.srv = New(h.svc, h.keys, log, Config{Domain: testDomain, Metrics: mx})
	const id = "abcdefghij0123456789"
	h.svc.KillFn = func(context.Context, domain.Principal, string) error { return nil }
	h.do("DELETE", "/sandboxes/"+id, nil)
	h.do("GET", "/sandboxes/"+id+"/nothing/here", nil)
	want := []string{
		"e2b|DELETE /sandboxes/{id}|DELETE|204|" + testTeam.TeamID,
		"e2b|unmatched|GET|404|",
	}
	if got := strings.Join(mx.requests, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("requests recorded:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}
