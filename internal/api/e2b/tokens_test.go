package e2b

import (
	"context"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/api/edge/edgetest"
	"github.com/warren-sh/warren/internal/domain"
)

// TestTokensOnlyForWriters: a sandbox's access token (root in the sandbox through the
// agent, past scopes and the audit log) and its traffic token go only to callers with
// sandboxes:write, on create and connect; a viewer's session or a read-only key reading
// the sandbox gets neither (issue 13, High 2).
func TestTokensOnlyForWriters(t *testing.T) {
	read := []domain.Scope{domain.ScopeSandboxesRead}
	write := []domain.Scope{domain.ScopeSandboxesRead, domain.ScopeSandboxesWrite}
	callers := []struct {
		name      string
		p         domain.Principal
		getsToken bool
	}{
		{"read-only key", domain.Principal{TeamID: "team1", KeyID: "k", Scopes: read}, false},
		{"viewer session", domain.Principal{TeamID: "team1", UserID: "u", Scopes: domain.RoleScopes(domain.RoleViewer)}, false},
		{"write key", domain.Principal{TeamID: "team1", KeyID: "k", Scopes: write}, true},
		{"member session", domain.Principal{TeamID: "team1", UserID: "u", Scopes: domain.RoleScopes(domain.RoleMember)}, true},
		{"platform admin", domain.Principal{TeamID: "team1", KeyID: "k", Admin: true}, true},
	}
	for _, c := range callers {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.keys.AuthenticateFn = func(context.Context, string) (domain.Principal, error) { return c.p, nil }
			sb := running(sbID)
			h.svc.GetFn = func(context.Context, domain.Principal, string) (*domain.Sandbox, error) { return sb, nil }
			// The fakes answer whatever the scopes: the edge must not rely on the service
			// alone to keep the tokens from a reader.
			h.svc.CreateFn = func(context.Context, domain.Principal, domain.CreateSandbox) (*domain.Sandbox, error) { return sb, nil }
			h.svc.ConnectFn = func(context.Context, domain.Principal, string, time.Duration) (*domain.Sandbox, error) {
				return sb, nil
			}

			check := func(what string, res edgetest.Result, wantStatus int, tokens ...string) {
				t.Helper()
				if res.Status != wantStatus {
					t.Fatalf("%s: %d %s", what, res.Status, res.Body)
				}
				m := res.Obj(t)
				for _, k := range tokens {
					v, present := m[k]
					got := present && v != nil && v != ""
					if got != c.getsToken {
						t.Errorf("%s: %s = %v, want given: %v", what, k, v, c.getsToken)
					}
				}
				if c.getsToken && m["envdAccessToken"] != "envd-token" {
					t.Errorf("%s: envdAccessToken = %v", what, m["envdAccessToken"])
				}
			}
			check("GET /sandboxes/{id}", h.do("GET", "/sandboxes/"+sbID, nil), 200, "envdAccessToken")
			check("POST /v2/sandboxes", h.do("POST", "/v2/sandboxes", `{"templateID":"base"}`), 201, "envdAccessToken", "trafficAccessToken")
			check("POST /sandboxes/{id}/connect", h.do("POST", "/sandboxes/"+sbID+"/connect", `{}`), 200, "envdAccessToken", "trafficAccessToken")
			check("POST /v2/sandboxes/{id}/connect", h.do("POST", "/v2/sandboxes/"+sbID+"/connect", `{}`), 200, "envdAccessToken", "trafficAccessToken")
		})
	}
}
