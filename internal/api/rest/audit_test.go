package rest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
)

func TestQuotaErrorMapping(t *testing.T) {
	cases := []struct {
		name        string
		err         error
		status      int
		code        string
		quota       string
		limit, used float64
		retryAfter  string // the Retry-After header, "" when absent
	}{
		{"max_sandboxes",
			&domain.Error{Kind: domain.KindQuotaExceeded, Err: &domain.QuotaError{Quota: "max_sandboxes", Limit: 10, Used: 10}},
			429, "quota_exceeded", "max_sandboxes", 10, 10, ""},
		{"max_cpu_cores from CheckSandboxQuota",
			domain.CheckSandboxQuota(domain.Quota{MaxCPUCores: 4}, domain.QuotaUsage{CPUCores: 3.5}, domain.Limits{CPUCores: 1}),
			429, "quota_exceeded", "max_cpu_cores", 4, 3.5, ""},
		{"wrapped max_memory_mb",
			fmt.Errorf("creating sandbox: %w", domain.CheckSandboxQuota(domain.Quota{MaxMemoryMB: 1024}, domain.QuotaUsage{MemoryMB: 1000}, domain.Limits{MemoryMB: 512})),
			429, "quota_exceeded", "max_memory_mb", 1024, 1000, ""},
		{"spending_limit",
			&domain.Error{Kind: domain.KindQuotaExceeded, Message: "the team reached its spending limit of 100.00 USD this period",
				Err: &domain.QuotaError{Quota: "spending_limit", Limit: 100, Used: 100.5}},
			403, "quota_exceeded", "spending_limit", 100, 100.5, ""},
		{"requests_per_minute from the service",
			&domain.Error{Kind: domain.KindQuotaExceeded, Err: &domain.QuotaError{Quota: "requests_per_minute", Limit: 60, Used: 60, RetryAfter: 2500 * time.Millisecond}},
			429, "rate_limited", "requests_per_minute", 60, 60, "3"},
		{"requests_per_minute without a wait",
			&domain.Error{Kind: domain.KindQuotaExceeded, Err: &domain.QuotaError{Quota: "requests_per_minute", Limit: 60, Used: 60}},
			429, "rate_limited", "requests_per_minute", 60, 60, "1"},
		{"quota without details", domain.Errorf(domain.KindQuotaExceeded, "too many sandboxes"), 429, "quota_exceeded", "", 0, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.svc.create = func(context.Context, domain.Principal, domain.CreateSandbox) (*domain.Sandbox, error) {
				return nil, c.err
			}
			res := h.do("POST", "/v1/sandboxes", nil)
			m := h.wantError(res, c.status, c.code, "")
			if got, _ := m["quota"].(string); got != c.quota {
				t.Errorf("quota = %q, want %q", got, c.quota)
			}
			if c.quota == "" {
				for _, k := range []string{"limit", "used", "retry_after"} {
					if _, has := m[k]; has {
						t.Errorf("%s present without quota details: %s", k, res.Body)
					}
				}
			} else if m["limit"] != c.limit || m["used"] != c.used {
				t.Errorf("limit, used = %v, %v; want %v, %v", m["limit"], m["used"], c.limit, c.used)
			}
			if got := res.Header.Get("Retry-After"); got != c.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, c.retryAfter)
			}
			if ra, has := m["retry_after"]; has != (c.retryAfter != "") || has && fmt.Sprint(ra) != c.retryAfter {
				t.Errorf("retry_after = %v, want %q", ra, c.retryAfter)
			}
			if msg, _ := m["message"].(string); msg == "" {
				t.Error("empty message")
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	team := domain.Principal{TeamID: "team_a", KeyID: "key_a", RequestsPerMinute: 60}
	cases := []struct {
		wait time.Duration
		want string // Retry-After and retry_after
	}{
		{0, "1"},
		{-time.Second, "1"},
		{time.Nanosecond, "1"},
		{time.Second, "1"},
		{time.Second + time.Millisecond, "2"},
		{59500 * time.Millisecond, "60"},
	}
	for _, c := range cases {
		t.Run(c.wait.String(), func(t *testing.T) {
			var calls []string
			h := newHarness(t, WithRateLimit(func(_ context.Context, key string, perMinute int64) (bool, time.Duration) {
				calls = append(calls, fmt.Sprintf("%s/%d", key, perMinute))
				return false, c.wait
			}))
			h.as(team)
			h.svc.list = func(context.Context, domain.Principal, domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
				t.Error("a rate-limited request reached the service")
				return nil, "", nil
			}
			res := h.do("GET", "/v1/sandboxes", nil)
			m := h.wantError(res, http.StatusTooManyRequests, "rate_limited", "")
			if got := res.Header.Get("Retry-After"); got != c.want || fmt.Sprint(m["retry_after"]) != c.want {
				t.Errorf("Retry-After %q, retry_after %v; want %s", got, m["retry_after"], c.want)
			}
			if m["quota"] != "requests_per_minute" || m["limit"] != 60.0 || !strings.Contains(m["message"].(string), "60 requests per minute") {
				t.Errorf("body: %s", res.Body)
			}
			if !reflect.DeepEqual(calls, []string{"team:team_a/60"}) {
				t.Errorf("limiter calls = %v", calls)
			}
		})
	}
}

func TestRateLimitAdmits(t *testing.T) {
	cases := []struct {
		name      string
		p         domain.Principal
		auth      bool // send the key
		allow     bool
		wantCalls int
		status    int
	}{
		{"allowed", domain.Principal{TeamID: "team_a", KeyID: "key_a", RequestsPerMinute: 60}, true, true, 1, 200},
		{"unlimited team", domain.Principal{TeamID: "team_a", KeyID: "key_a"}, true, false, 0, 200},
		{"negative quota is no quota", domain.Principal{TeamID: "team_a", KeyID: "key_a", RequestsPerMinute: -1}, true, false, 0, 200},
		{"unauthenticated", domain.Principal{TeamID: "team_a", KeyID: "key_a", RequestsPerMinute: 60}, false, false, 0, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			h := newHarness(t, WithRateLimit(func(context.Context, string, int64) (bool, time.Duration) {
				calls++
				return c.allow, time.Second
			}))
			h.as(c.p)
			h.svc.list = func(context.Context, domain.Principal, domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
				return nil, "", nil
			}
			r := h.req("GET", "/v1/sandboxes", nil)
			if !c.auth {
				r.Header.Del("Authorization")
			}
			if res := h.serve(r); res.Status != c.status || calls != c.wantCalls {
				t.Errorf("status %d, %d limiter calls; want %d, %d: %s", res.Status, calls, c.status, c.wantCalls, res.Body)
			}
		})
	}
}

// auditLog collects what the audit middleware records.
type auditLog struct {
	mu      sync.Mutex
	entries []domain.AuditEntry
}

func (l *auditLog) record(_ context.Context, e *domain.AuditEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, *e)
}

func (l *auditLog) take() []domain.AuditEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.entries
	l.entries = nil
	return out
}

func TestAuditMiddleware(t *testing.T) {
	keyCaller := domain.Principal{TeamID: "team_a", KeyID: "key_a", Scopes: []domain.Scope{domain.ScopeAdmin}}
	userCaller := domain.Principal{TeamID: "team_a", UserID: "usr_1", Scopes: []domain.Scope{domain.ScopeAdmin}}
	systemCaller := domain.Principal{TeamID: "team_a", Admin: true}
	quotaErr := domain.CheckSandboxQuota(domain.Quota{MaxSandboxes: 1}, domain.QuotaUsage{Sandboxes: 1}, domain.Limits{})

	cases := []struct {
		name         string
		caller       domain.Principal
		method, path string
		body         string
		noAuth       bool
		createErr    error
		want         *domain.AuditEntry // nil: nothing recorded
	}{
		{name: "create sandbox", caller: keyCaller, method: "POST", path: "/v1/sandboxes",
			want: &domain.AuditEntry{ActorType: "key", ActorID: "key_a", Action: "sandbox.create", Target: sbID, Status: 201}},
		{name: "create sandbox refused by quota", caller: keyCaller, method: "POST", path: "/v1/sandboxes", createErr: quotaErr,
			want: &domain.AuditEntry{ActorType: "key", ActorID: "key_a", Action: "sandbox.create", Status: 429}},
		{name: "create sandbox with a bad body", caller: keyCaller, method: "POST", path: "/v1/sandboxes", body: `{"timeout":-1}`,
			want: &domain.AuditEntry{ActorType: "key", ActorID: "key_a", Action: "sandbox.create", Status: 400}},
		{name: "create sandbox by a user", caller: userCaller, method: "POST", path: "/v1/sandboxes",
			want: &domain.AuditEntry{ActorType: "user", ActorID: "usr_1", Action: "sandbox.create", Target: sbID, Status: 201}},
		{name: "create sandbox by the system", caller: systemCaller, method: "POST", path: "/v1/sandboxes",
			want: &domain.AuditEntry{ActorType: "system", Action: "sandbox.create", Target: sbID, Status: 201}},
		{name: "kill sandbox", caller: keyCaller, method: "DELETE", path: "/v1/sandboxes/" + sbID,
			want: &domain.AuditEntry{ActorType: "key", ActorID: "key_a", Action: "sandbox.kill", Target: sbID, Status: 204}},
		{name: "kill another team's sandbox", caller: keyCaller, method: "DELETE", path: "/v1/sandboxes/zzzzzzzzzzzzzzzzzzzz",
			want: &domain.AuditEntry{ActorType: "key", ActorID: "key_a", Action: "sandbox.kill", Target: "zzzzzzzzzzzzzzzzzzzz", Status: 404}},
		{name: "write file", caller: keyCaller, method: "PUT", path: "/v1/sandboxes/" + sbID + "/files/content?path=/tmp/a.txt", body: "hi",
			want: &domain.AuditEntry{ActorType: "key", ActorID: "key_a", Action: "sandbox.file_write", Target: sbID, Status: 200,
				Details: map[string]string{"path": "/tmp/a.txt"}}},
		{name: "delete code context", caller: keyCaller, method: "DELETE", path: "/v1/sandboxes/" + sbID + "/contexts/ctx_1",
			want: &domain.AuditEntry{ActorType: "key", ActorID: "key_a", Action: "sandbox.context_delete", Target: sbID, Status: 204,
				Details: map[string]string{"context_id": "ctx_1"}}},
		{name: "create key", caller: keyCaller, method: "POST", path: "/v1/keys", body: `{"name":"ci"}`,
			want: &domain.AuditEntry{ActorType: "key", ActorID: "key_a", Action: "key.create", Target: "key_new", Status: 201}},
		{name: "revoke key", caller: keyCaller, method: "DELETE", path: "/v1/keys/key_old",
			want: &domain.AuditEntry{ActorType: "key", ActorID: "key_a", Action: "key.revoke", Target: "key_old", Status: 204}},
		{name: "create team", caller: systemCaller, method: "POST", path: "/v1/teams", body: `{"name":"Acme"}`,
			want: &domain.AuditEntry{ActorType: "system", Action: "team.create", Target: "team_new", Status: 201}},
		{name: "update team", caller: systemCaller, method: "PATCH", path: "/v1/teams/team_b", body: `{"name":"B"}`,
			want: &domain.AuditEntry{ActorType: "system", Action: "team.update", Target: "team_b", Status: 200}},
		{name: "create user", caller: userCaller, method: "POST", path: "/v1/users", body: `{"email":"a@b.c","password":"p","role":"member"}`,
			want: &domain.AuditEntry{ActorType: "user", ActorID: "usr_1", Action: "user.create", Target: "usr_new", Status: 201}},
		{name: "update user", caller: userCaller, method: "PATCH", path: "/v1/users/usr_2", body: `{"role":"viewer"}`,
			want: &domain.AuditEntry{ActorType: "user", ActorID: "usr_1", Action: "user.update", Target: "usr_2", Status: 200}},
		{name: "delete user", caller: userCaller, method: "DELETE", path: "/v1/users/usr_2",
			want: &domain.AuditEntry{ActorType: "user", ActorID: "usr_1", Action: "user.delete", Target: "usr_2", Status: 204}},
		{name: "unauthenticated create", caller: keyCaller, method: "POST", path: "/v1/sandboxes", noAuth: true},
		{name: "list sandboxes", caller: keyCaller, method: "GET", path: "/v1/sandboxes"},
		{name: "get sandbox", caller: keyCaller, method: "GET", path: "/v1/sandboxes/" + sbID},
		{name: "list keys", caller: keyCaller, method: "GET", path: "/v1/keys"},
		{name: "list teams", caller: keyCaller, method: "GET", path: "/v1/teams"},
		{name: "audit log", caller: keyCaller, method: "GET", path: "/v1/audit"},
		{name: "login", caller: keyCaller, method: "POST", path: "/v1/auth/login", body: `{"email":"a@b.c","password":"p"}`, noAuth: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code := &fake.Code{DeleteCodeContextFn: func(context.Context, domain.Principal, string, string) error { return nil }}
			h, teams, _ := newTenancyHarness(t, WithCode(code))
			var log auditLog
			teams.RecordFn = log.record
			setupAuditFakes(h, teams, c.createErr)
			h.as(c.caller)
			r := h.req(c.method, c.path, c.body)
			if c.noAuth {
				r.Header.Del("Authorization")
			}
			r.RemoteAddr = "[2001:db8::7]:50123"
			start := time.Now()
			res := h.serve(r)
			got := log.take()
			if c.want == nil {
				if len(got) != 0 {
					t.Errorf("recorded %+v, want nothing (status %d)", got, res.Status)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("recorded %d entries, want 1 (status %d %s)", len(got), res.Status, res.Body)
			}
			e := got[0]
			if e.At.Before(start.Add(-time.Second)) || e.At.After(time.Now()) || e.At.Location() != time.UTC {
				t.Errorf("At = %v, want about %v in UTC", e.At, start)
			}
			if e.Status != res.Status {
				t.Errorf("recorded status %d, response status %d", e.Status, res.Status)
			}
			want := *c.want
			want.TeamID, want.At = "team_a", e.At
			want.RemoteAddr, want.RequestID = "2001:db8::7", res.Header.Get("X-Request-Id")
			if !reflect.DeepEqual(e, want) {
				t.Errorf("entry\n got %+v\nwant %+v", e, want)
			}
		})
	}
}

// setupAuditFakes makes every service call the audit cases use succeed.
func setupAuditFakes(h *harness, teams *fake.Teams, createErr error) {
	h.svc.create = func(context.Context, domain.Principal, domain.CreateSandbox) (*domain.Sandbox, error) {
		if createErr != nil {
			return nil, createErr
		}
		return testSandbox(), nil
	}
	h.svc.kill = func(_ context.Context, _ domain.Principal, id string) error { return notFoundUnless(id) }
	h.svc.get = func(context.Context, domain.Principal, string) (*domain.Sandbox, error) { return testSandbox(), nil }
	h.svc.list = func(context.Context, domain.Principal, domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
		return nil, "", nil
	}
	h.svc.writeFile = func(_ context.Context, _ domain.Principal, _, path, _ string, r io.Reader) (*domain.FileInfo, error) {
		_, err := io.Copy(io.Discard, r)
		return &domain.FileInfo{Name: "a.txt", Path: path, Type: "file", Size: 2}, err
	}
	h.keys.createKey = func(_ context.Context, p domain.Principal, spec domain.KeySpec) (*domain.APIKey, string, error) {
		return &domain.APIKey{ID: "key_new", TeamID: p.TeamID, Name: spec.Name, Prefix: "sk_new", CreatedAt: tenancyT0}, "sk_new_secret", nil
	}
	h.keys.listKeys = func(context.Context, domain.Principal) ([]*domain.APIKey, error) { return nil, nil }
	h.keys.revokeKey = func(context.Context, domain.Principal, string) error { return nil }
	teams.CreateTeamFn = func(context.Context, domain.Principal, domain.TeamSpec) (*domain.Team, error) {
		return testTeam("team_new"), nil
	}
	teams.UpdateTeamFn = func(_ context.Context, _ domain.Principal, id string, _ domain.TeamSpec) (*domain.Team, error) {
		return testTeam(id), nil
	}
	teams.ListTeamsFn = func(context.Context, domain.Principal) ([]*domain.Team, error) { return nil, nil }
	teams.CreateUserFn = func(context.Context, domain.Principal, domain.UserSpec) (*domain.User, error) {
		return testUser("usr_new"), nil
	}
	teams.UpdateUserFn = func(_ context.Context, _ domain.Principal, id string, _ domain.UserPatch) (*domain.User, error) {
		return testUser(id), nil
	}
	teams.DeleteUserFn = func(context.Context, domain.Principal, string) error { return nil }
	teams.AuditFn = func(context.Context, domain.Principal, domain.AuditFilter) ([]*domain.AuditEntry, error) {
		return nil, nil
	}
	teams.LoginFn = func(context.Context, string, string) (*domain.Session, error) {
		return &domain.Session{Token: "ws_t", ExpiresAt: tenancyT0, User: testUser("usr_1"), Team: testTeam("team_a")}, nil
	}
}

// TestRequestMeta checks that services see where a request came from, for audit
// entries written below the edge.
func TestRequestMeta(t *testing.T) {
	h, teams, _ := newTenancyHarness(t)
	var got []domain.RequestMeta
	h.svc.kill = func(ctx context.Context, _ domain.Principal, _ string) error {
		got = append(got, domain.RequestMetaFrom(ctx))
		return nil
	}
	teams.LoginFn = func(ctx context.Context, _, _ string) (*domain.Session, error) {
		got = append(got, domain.RequestMetaFrom(ctx))
		return nil, domain.Errorf(domain.KindUnauthorized, "wrong email or password")
	}
	r := h.req("DELETE", "/v1/sandboxes/"+sbID, nil)
	r.Header.Set("X-Request-Id", "from-proxy-1")
	h.serve(r)
	r = h.req("POST", "/v1/auth/login", `{"email":"a@b.c","password":"p"}`)
	r.Header.Del("Authorization")
	r.RemoteAddr = "198.51.100.9:4000"
	res := h.serve(r)
	want := []domain.RequestMeta{
		{RemoteAddr: "192.0.2.1", RequestID: "from-proxy-1"},
		{RemoteAddr: "198.51.100.9", RequestID: res.Header.Get("X-Request-Id")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("request meta = %+v, want %+v", got, want)
	}
}
