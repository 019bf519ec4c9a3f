package e2b

import (
	"context"
	"reflect"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Test data, and the fake service's canned answers.

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
