package rest

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/api/edge/edgetest"
	"github.com/warren-sh/warren/internal/domain"
)

func TestLogin(t *testing.T) {
	okSession := func(_ context.Context, email, password string) (*domain.Session, error) {
		if email != "ada@example.com" || password != "correct horse" {
			return nil, domain.Errorf(domain.KindUnauthorized, "wrong email or password")
		}
		return &domain.Session{Token: "ws_token", ExpiresAt: tenancyT0.Add(12 * time.Hour), User: testUser("usr_1"), Team: testTeam("team_a")}, nil
	}
	cases := []struct {
		name   string
		body   string
		login  func(context.Context, string, string) (*domain.Session, error)
		status int
		code   string
		field  string
	}{
		{"ok", `{"email":"ada@example.com","password":"correct horse"}`, okSession, 200, "", ""},
		{"wrong password", `{"email":"ada@example.com","password":"nope"}`, okSession, 401, "unauthorized", ""},
		{"unknown user", `{"email":"bob@example.com","password":"x"}`, okSession, 401, "unauthorized", ""},
		{"bad body", `{"email":5}`, nil, 400, "invalid", "email"},
		{"unknown field", `{"user":"ada"}`, nil, 400, "invalid", "user"},
		{"store down", `{"email":"a","password":"b"}`, func(context.Context, string, string) (*domain.Session, error) {
			return nil, domain.Errorf(domain.KindUnavailable, "database is unavailable")
		}, 503, "unavailable", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, teams, _ := newTenancyHarness(t)
			h.keys.authenticate = func(context.Context, string) (domain.Principal, error) {
				t.Error("login is public but authenticated")
				return domain.Principal{}, errNotSet
			}
			teams.LoginFn = c.login
			if c.login == nil {
				teams.LoginFn = func(context.Context, string, string) (*domain.Session, error) {
					t.Error("service called for a bad body")
					return nil, errNotSet
				}
			}
			r := h.req("POST", "/v1/auth/login", c.body)
			r.Header.Del("Authorization")
			res := h.serve(r)
			if c.status != 200 {
				h.wantError(res, c.status, c.code, c.field)
				if c.status == 401 && res.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				return
			}
			if res.Status != 200 {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
			m := res.Obj(t)
			user, team := m["user"].(map[string]any), m["team"].(map[string]any)
			if m["token"] != "ws_token" || m["expires_at"] != "2025-03-04T17:06:07Z" || user["id"] != "usr_1" || team["id"] != "team_a" {
				t.Errorf("login response: %s", res.Body)
			}
			if strings.Contains(string(res.Body), "argon2id") {
				t.Errorf("login response leaks the password hash: %s", res.Body)
			}
		})
	}
}

func TestLoginRateLimitedPerAddress(t *testing.T) {
	type call struct {
		key       string
		perMinute int64
	}
	var calls []call
	limiter := func(_ context.Context, key string, perMinute int64) (bool, time.Duration) {
		calls = append(calls, call{key, perMinute})
		return key != "login:192.0.2.1", 1500 * time.Millisecond
	}
	h, teams, _ := newTenancyHarness(t, WithRateLimit(limiter))
	logins := 0
	teams.LoginFn = func(context.Context, string, string) (*domain.Session, error) {
		logins++
		return &domain.Session{Token: "ws_t", ExpiresAt: tenancyT0, User: testUser("usr_1"), Team: testTeam("team_a")}, nil
	}
	login := func(remote string) edgetest.Result {
		r := h.req("POST", "/v1/auth/login", `{"email":"a@b.c","password":"p"}`)
		r.Header.Del("Authorization")
		r.RemoteAddr = remote
		return h.serve(r)
	}

	res := login("192.0.2.1:1234")
	m := h.wantError(res, http.StatusTooManyRequests, "rate_limited", "")
	if res.Header.Get("Retry-After") != "2" || m["retry_after"] != 2.0 || m["quota"] != "requests_per_minute" || m["limit"] != float64(loginsPerMinute) {
		t.Errorf("rate limit refusal: Retry-After %q, body %s", res.Header.Get("Retry-After"), res.Body)
	}
	if logins != 0 {
		t.Error("a refused login reached the service")
	}

	// Another address has its own budget.
	if res := login("[2001:db8::1]:443"); res.Status != 200 {
		t.Errorf("login from another address: %d %s", res.Status, res.Body)
	}
	want := []call{{"login:192.0.2.1", loginsPerMinute}, {"login:2001:db8::1", loginsPerMinute}}
	if !reflect.DeepEqual(calls, want) || logins != 1 {
		t.Errorf("limiter calls = %v (logins %d), want %v", calls, logins, want)
	}
}

// TestLoginThrottledPerAccount: the service's per-account refusal is a 429 with
// Retry-After, like the per-address one.
func TestLoginThrottledPerAccount(t *testing.T) {
	h, teams, _ := newTenancyHarness(t)
	teams.LoginFn = func(context.Context, string, string) (*domain.Session, error) {
		return nil, &domain.Error{Kind: domain.KindQuotaExceeded, Message: "too many login attempts for this account",
			Err: &domain.QuotaError{Quota: "login_attempts", Limit: 10, Used: 10, RetryAfter: 89500 * time.Millisecond}}
	}
	r := h.req("POST", "/v1/auth/login", `{"email":"a@b.c","password":"p"}`)
	r.Header.Del("Authorization")
	res := h.serve(r)
	m := h.wantError(res, http.StatusTooManyRequests, "rate_limited", "")
	if res.Header.Get("Retry-After") != "90" || m["retry_after"] != 90.0 || m["quota"] != "login_attempts" {
		t.Errorf("per-account refusal: Retry-After %q, body %s", res.Header.Get("Retry-After"), res.Body)
	}
}

// TestLogout: POST /v1/auth/logout ends the caller's sessions through the service.
func TestLogout(t *testing.T) {
	h, teams, _ := newTenancyHarness(t)
	session := domain.Principal{TeamID: "team_a", UserID: "usr_1", Scopes: domain.RoleScopes(domain.RoleViewer)}
	h.as(session)
	var got []domain.Principal
	teams.LogoutFn = func(_ context.Context, p domain.Principal) error {
		got = append(got, p)
		if p.KeyID != "" {
			return domain.Errorf(domain.KindInvalid, "revoke the key instead")
		}
		return nil
	}
	if res := h.do("POST", "/v1/auth/logout", nil); res.Status != 204 || len(res.Body) != 0 {
		t.Errorf("logout: %d %s", res.Status, res.Body)
	}
	if len(got) != 1 || got[0].UserID != "usr_1" {
		t.Errorf("Logout called with %+v", got)
	}
	h.as(domain.Principal{TeamID: "team_a", KeyID: "key_1", Scopes: domain.RoleScopes(domain.RoleAdmin)})
	h.wantError(h.do("POST", "/v1/auth/logout", nil), 400, "invalid", "")
	r := h.req("POST", "/v1/auth/logout", "")
	r.Header.Del("Authorization")
	h.wantError(h.serve(r), 401, "unauthorized", "")
}

func TestMe(t *testing.T) {
	cases := []struct {
		name      string
		p         domain.Principal
		getUser   func(context.Context, domain.Principal, string) (*domain.User, error)
		wantUser  bool
		wantKey   string
		wantScope []any
	}{
		{"key", domain.Principal{TeamID: "team_a", KeyID: "key_a", Scopes: []domain.Scope{domain.ScopeSandboxesRead}},
			nil, false, "key_a", []any{"sandboxes:read"}},
		{"key without scopes", domain.Principal{TeamID: "team_a", KeyID: "key_a"}, nil, false, "key_a", []any{}},
		{"session", domain.Principal{TeamID: "team_a", UserID: "usr_1", Scopes: []domain.Scope{domain.ScopeAdmin}},
			func(_ context.Context, _ domain.Principal, id string) (*domain.User, error) { return testUser(id), nil },
			true, "", []any{"admin"}},
		{"session whose user is gone", domain.Principal{TeamID: "team_a", UserID: "usr_1", Scopes: []domain.Scope{domain.ScopeAdmin}},
			func(_ context.Context, _ domain.Principal, id string) (*domain.User, error) {
				return nil, domain.NotFound("user", id)
			},
			false, "", []any{"admin"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, teams, _ := newTenancyHarness(t)
			h.as(c.p)
			teams.GetTeamFn = func(_ context.Context, p domain.Principal, id string) (*domain.Team, domain.QuotaUsage, error) {
				if id != c.p.TeamID || !p.Can(domain.ScopeTeamRead) {
					return nil, domain.QuotaUsage{}, domain.Errorf(domain.KindForbidden, "no team:read")
				}
				return testTeam(id), domain.QuotaUsage{Sandboxes: 2, CPUCores: 1.5, MemoryMB: 1024, DiskMB: 2048}, nil
			}
			userCalls := 0
			teams.GetUserFn = func(ctx context.Context, p domain.Principal, id string) (*domain.User, error) {
				userCalls++
				if id != c.p.UserID {
					t.Errorf("GetUser(%q), want the caller %q", id, c.p.UserID)
				}
				return c.getUser(ctx, p, id)
			}
			res := h.do("GET", "/v1/me", nil)
			if res.Status != 200 {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
			m := res.Obj(t)
			team := m["team"].(map[string]any)
			usage, _ := team["usage"].(map[string]any)
			if team["id"] != "team_a" || usage["sandboxes"] != 2.0 || usage["cpu_cores"] != 1.5 {
				t.Errorf("team: %s", res.Body)
			}
			if _, has := m["user"]; has != c.wantUser {
				t.Errorf("user present = %v, want %v: %s", has, c.wantUser, res.Body)
			}
			if key, _ := m["key_id"].(string); key != c.wantKey {
				t.Errorf("key_id = %q, want %q", key, c.wantKey)
			}
			if !reflect.DeepEqual(m["scopes"], c.wantScope) || m["admin"] != false {
				t.Errorf("scopes/admin: %s", res.Body)
			}
			if (c.p.UserID != "") != (userCalls == 1) {
				t.Errorf("GetUser called %d times for %+v", userCalls, c.p)
			}
		})
	}

	h, teams, _ := newTenancyHarness(t)
	teams.GetTeamFn = func(_ context.Context, _ domain.Principal, id string) (*domain.Team, domain.QuotaUsage, error) {
		return nil, domain.QuotaUsage{}, domain.NotFound("team", id)
	}
	h.wantError(h.do("GET", "/v1/me", nil), 404, "not_found", "")
}

// TestTenancyNotConfigured checks that a server without WithTeams, WithUsers,
// WithSessions, WithAudit or WithBilling answers their routes with 503, not a panic.
func TestTenancyNotConfigured(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/auth/login", `{"email":"a","password":"b"}`},
		{"GET", "/v1/me", ""},
		{"POST", "/v1/teams", `{"name":"x"}`},
		{"GET", "/v1/teams", ""},
		{"GET", "/v1/teams/team_a", ""},
		{"PATCH", "/v1/teams/team_a", `{}`},
		{"POST", "/v1/users", `{}`},
		{"GET", "/v1/users", ""},
		{"PATCH", "/v1/users/usr_1", `{}`},
		{"DELETE", "/v1/users/usr_1", ""},
		{"GET", "/v1/audit", ""},
		{"GET", "/v1/usage", ""},
		{"GET", "/v1/plans", ""},
		{"GET", "/v1/invoices", ""},
		{"GET", "/v1/invoices/2025-03", ""},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			h.wantError(h.do(c.method, c.path, c.body), 503, "unavailable", "")
		})
	}
}

func TestTeams(t *testing.T) {
	admin := domain.Principal{TeamID: "team_root", KeyID: "key_root", Admin: true}
	h, teams, _ := newTenancyHarness(t)
	h.as(admin)

	t.Run("create", func(t *testing.T) {
		var got domain.TeamSpec
		teams.CreateTeamFn = func(_ context.Context, p domain.Principal, spec domain.TeamSpec) (*domain.Team, error) {
			if !p.Admin {
				t.Errorf("principal = %+v", p)
			}
			got = spec
			return testTeam("team_new"), nil
		}
		res := h.do("POST", "/v1/teams", `{"name":"Acme","quota":{"max_sandboxes":10,"max_cpu_cores":8.5,"max_memory_mb":16384,"max_disk_mb":0,"requests_per_minute":600,"max_snapshots":0,"max_templates":0,"max_template_mb":0},"plan_id":"pro","spend_limit":"250.00"}`)
		if res.Status != 201 {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		want := domain.TeamSpec{Name: "Acme", Quota: domain.FullPatch(domain.Quota{MaxSandboxes: 10, MaxCPUCores: 8.5, MaxMemoryMB: 16384, RequestsPerMinute: 600}),
			PlanID: ptr("pro"), SpendLimit: ptr("250.00")}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("spec = %+v, want %+v", got, want)
		}
		m := res.Obj(t)
		if m["id"] != "team_new" || m["spend_limit"] != "250.00" || m["quota"].(map[string]any)["max_cpu_cores"] != 8.5 || m["usage"] == nil {
			t.Errorf("team: %s", res.Body)
		}

		if res := h.do("POST", "/v1/teams", `{"name":"Bare"}`); res.Status != 201 ||
			!reflect.DeepEqual(got, domain.TeamSpec{Name: "Bare"}) {
			t.Errorf("defaults: %d, spec %+v", res.Status, got)
		}
	})

	t.Run("create refused", func(t *testing.T) {
		for _, c := range []struct {
			name, body string
			err        error
			status     int
			code       string
			field      string
		}{
			{"not platform admin", `{"name":"x"}`, domain.Errorf(domain.KindForbidden, "platform admins only"), 403, "forbidden", ""},
			{"duplicate", `{"name":"x"}`, domain.Errorf(domain.KindConflict, "team name taken"), 409, "conflict", ""},
			{"bad plan", `{"name":"x","plan_id":"gold"}`, domain.Invalid("plan_id", "no plan gold"), 400, "invalid", "plan_id"},
			{"quota type", `{"quota":{"max_sandboxes":"ten"}}`, nil, 400, "invalid", "quota.max_sandboxes"},
			{"unknown field", `{"nam":"x"}`, nil, 400, "invalid", "nam"},
		} {
			t.Run(c.name, func(t *testing.T) {
				teams.CreateTeamFn = func(context.Context, domain.Principal, domain.TeamSpec) (*domain.Team, error) {
					if c.err == nil {
						t.Error("service called for a bad body")
						return nil, errNotSet
					}
					return nil, c.err
				}
				h.wantError(h.do("POST", "/v1/teams", c.body), c.status, c.code, c.field)
			})
		}
	})

	t.Run("list", func(t *testing.T) {
		teams.ListTeamsFn = func(_ context.Context, p domain.Principal) ([]*domain.Team, error) {
			return []*domain.Team{testTeam("team_a"), testTeam("team_b")}, nil
		}
		res := h.do("GET", "/v1/teams", nil)
		list, _ := res.Obj(t)["teams"].([]any)
		if res.Status != 200 || len(list) != 2 || list[1].(map[string]any)["id"] != "team_b" {
			t.Fatalf("list: %d %s", res.Status, res.Body)
		}
		teams.ListTeamsFn = func(context.Context, domain.Principal) ([]*domain.Team, error) { return nil, nil }
		if res := h.do("GET", "/v1/teams", nil); res.Status != 200 || !strings.Contains(string(res.Body), `"teams":[]`) {
			t.Errorf("empty list: %d %s", res.Status, res.Body)
		}
	})

	t.Run("get", func(t *testing.T) {
		teams.GetTeamFn = func(_ context.Context, _ domain.Principal, id string) (*domain.Team, domain.QuotaUsage, error) {
			if id != "team_b" {
				return nil, domain.QuotaUsage{}, domain.NotFound("team", id)
			}
			return testTeam(id), domain.QuotaUsage{Sandboxes: 3}, nil
		}
		res := h.do("GET", "/v1/teams/team_b", nil)
		if m := res.Obj(t); res.Status != 200 || m["id"] != "team_b" || m["usage"].(map[string]any)["sandboxes"] != 3.0 {
			t.Errorf("get: %d %s", res.Status, res.Body)
		}
		h.wantError(h.do("GET", "/v1/teams/team_zz", nil), 404, "not_found", "")
		if m := res.Obj(t); !reflect.DeepEqual(m["allowed_runtimes"], []any{}) {
			t.Errorf("a team without a runtime list shows allowed_runtimes %v, want []", m["allowed_runtimes"])
		}
		teams.GetTeamFn = func(_ context.Context, _ domain.Principal, id string) (*domain.Team, domain.QuotaUsage, error) {
			tm := testTeam(id)
			tm.AllowedRuntimes = []string{"gvisor"}
			return tm, domain.QuotaUsage{}, nil
		}
		if m := h.do("GET", "/v1/teams/team_b", nil).Obj(t); !reflect.DeepEqual(m["allowed_runtimes"], []any{"gvisor"}) {
			t.Errorf("allowed_runtimes = %v, want [gvisor]", m["allowed_runtimes"])
		}
	})

	t.Run("update", func(t *testing.T) {
		var gotID string
		var got domain.TeamSpec
		teams.UpdateTeamFn = func(_ context.Context, _ domain.Principal, id string, patch domain.TeamSpec) (*domain.Team, error) {
			gotID, got = id, patch
			if patch.SpendLimit != nil && *patch.SpendLimit == "lots" {
				return nil, domain.Invalid("spend_limit", "spend_limit must be a decimal amount")
			}
			return testTeam(id), nil
		}
		for _, c := range []struct {
			body string
			want domain.TeamSpec
		}{
			{`{"spend_limit":"50.00"}`, domain.TeamSpec{SpendLimit: ptr("50.00")}},
			{`{"spend_limit":""}`, domain.TeamSpec{SpendLimit: ptr("")}},
			{`{"name":"Renamed","plan_id":"free"}`, domain.TeamSpec{Name: "Renamed", PlanID: ptr("free")}},
			{`{"quota":{"requests_per_minute":60}}`, domain.TeamSpec{Quota: &domain.QuotaPatch{RequestsPerMinute: ptr(int64(60))}}},
			{`{"allowed_runtimes":["gvisor"]}`, domain.TeamSpec{AllowedRuntimes: ptr([]string{"gvisor"})}},
			{`{"allowed_runtimes":[]}`, domain.TeamSpec{AllowedRuntimes: ptr([]string{})}},
			{`{"allowed_runtimes":null}`, domain.TeamSpec{}},
		} {
			res := h.do("PATCH", "/v1/teams/team_b", c.body)
			if res.Status != 200 || gotID != "team_b" || !reflect.DeepEqual(got, c.want) {
				t.Errorf("PATCH %s: %d %s; patch %+v, want %+v", c.body, res.Status, res.Body, got, c.want)
			}
		}
		h.wantError(h.do("PATCH", "/v1/teams/team_b", `{"spend_limit":"lots"}`), 400, "invalid", "spend_limit")
		h.wantError(h.do("PATCH", "/v1/teams/team_b", `{"quota":5}`), 400, "invalid", "quota")
	})
}

func TestUsers(t *testing.T) {
	h, teams, _ := newTenancyHarness(t)

	t.Run("create", func(t *testing.T) {
		var got domain.UserSpec
		teams.CreateUserFn = func(_ context.Context, _ domain.Principal, spec domain.UserSpec) (*domain.User, error) {
			got = spec
			switch {
			case spec.Role != "" && !spec.Role.Valid():
				return nil, domain.Invalid("role", "unknown role %q", spec.Role)
			case spec.Email == "taken@example.com":
				return nil, domain.Errorf(domain.KindConflict, "a user with this email exists")
			}
			u := testUser("usr_new")
			u.Role = spec.Role
			return u, nil
		}
		res := h.do("POST", "/v1/users", `{"email":"ada@example.com","password":"correct horse","name":"Ada","role":"admin","team_id":"team_b"}`)
		want := domain.UserSpec{TeamID: "team_b", Email: "ada@example.com", Name: "Ada", Password: "correct horse", Role: domain.RoleAdmin}
		if res.Status != 201 || !reflect.DeepEqual(got, want) {
			t.Fatalf("create: %d %s; spec %+v", res.Status, res.Body, got)
		}
		m := res.Obj(t)
		if m["id"] != "usr_new" || m["role"] != "admin" || m["last_login_at"] != "2025-03-04T06:06:07Z" ||
			strings.Contains(string(res.Body), "argon2id") || strings.Contains(string(res.Body), "correct horse") {
			t.Errorf("user: %s", res.Body)
		}
		h.wantError(h.do("POST", "/v1/users", `{"email":"x@example.com","password":"p","role":"god"}`), 400, "invalid", "role")
		h.wantError(h.do("POST", "/v1/users", `{"email":"taken@example.com","password":"p","role":"member"}`), 409, "conflict", "")
		h.wantError(h.do("POST", "/v1/users", `{"email":["a"]}`), 400, "invalid", "email")
	})

	t.Run("list", func(t *testing.T) {
		var gotTeam string
		teams.ListUsersFn = func(_ context.Context, _ domain.Principal, teamID string) ([]*domain.User, error) {
			gotTeam = teamID
			if teamID == "team_zz" {
				return nil, domain.NotFound("team", teamID)
			}
			never := testUser("usr_2")
			never.LastLoginAt = time.Time{}
			return []*domain.User{testUser("usr_1"), never}, nil
		}
		res := h.do("GET", "/v1/users?team_id=team_b", nil)
		users, _ := res.Obj(t)["users"].([]any)
		if res.Status != 200 || gotTeam != "team_b" || len(users) != 2 || strings.Contains(string(res.Body), "argon2id") {
			t.Fatalf("list: %d %s (team %q)", res.Status, res.Body, gotTeam)
		}
		if _, has := users[1].(map[string]any)["last_login_at"]; has {
			t.Errorf("a user who never logged in has last_login_at: %s", res.Body)
		}
		if res := h.do("GET", "/v1/users", nil); res.Status != 200 || gotTeam != "" {
			t.Errorf("own team: %d, team %q", res.Status, gotTeam)
		}
		h.wantError(h.do("GET", "/v1/users?team_id=team_zz", nil), 404, "not_found", "")
		teams.ListUsersFn = func(context.Context, domain.Principal, string) ([]*domain.User, error) { return nil, nil }
		if res := h.do("GET", "/v1/users", nil); !strings.Contains(string(res.Body), `"users":[]`) {
			t.Errorf("empty list: %s", res.Body)
		}
	})

	t.Run("update", func(t *testing.T) {
		var gotID string
		var got domain.UserPatch
		teams.UpdateUserFn = func(_ context.Context, _ domain.Principal, id string, patch domain.UserPatch) (*domain.User, error) {
			gotID, got = id, patch
			if id != "usr_1" {
				return nil, domain.NotFound("user", id)
			}
			return testUser(id), nil
		}
		for _, c := range []struct {
			body string
			want domain.UserPatch
		}{
			{`{"role":"viewer"}`, domain.UserPatch{Role: ptr(domain.RoleViewer)}},
			{`{"name":"Ada L.","password":"new secret"}`, domain.UserPatch{Name: ptr("Ada L."), Password: ptr("new secret")}},
			{`{"password":"new secret","current_password":"old secret"}`, domain.UserPatch{Password: ptr("new secret"), CurrentPassword: ptr("old secret")}},
			{`{}`, domain.UserPatch{}},
		} {
			res := h.do("PATCH", "/v1/users/usr_1", c.body)
			if res.Status != 200 || gotID != "usr_1" || !reflect.DeepEqual(got, c.want) {
				t.Errorf("PATCH %s: %d %s; patch %+v, want %+v", c.body, res.Status, res.Body, got, c.want)
			}
		}
		h.wantError(h.do("PATCH", "/v1/users/usr_9", `{"role":"viewer"}`), 404, "not_found", "")
		h.wantError(h.do("PATCH", "/v1/users/usr_1", `{"password":1}`), 400, "invalid", "password")
		// The service's refusals of one's own password change: missing is 400, wrong 403.
		teams.UpdateUserFn = func(context.Context, domain.Principal, string, domain.UserPatch) (*domain.User, error) {
			return nil, domain.Invalid("current_password", "changing your own password needs current_password")
		}
		h.wantError(h.do("PATCH", "/v1/users/usr_1", `{"password":"new secret"}`), 400, "invalid", "current_password")
		teams.UpdateUserFn = func(context.Context, domain.Principal, string, domain.UserPatch) (*domain.User, error) {
			return nil, &domain.Error{Kind: domain.KindForbidden, Field: "current_password", Message: "current_password is wrong"}
		}
		h.wantError(h.do("PATCH", "/v1/users/usr_1", `{"password":"new secret","current_password":"x"}`), 403, "forbidden", "current_password")
	})

	t.Run("delete", func(t *testing.T) {
		var deleted []string
		teams.DeleteUserFn = func(_ context.Context, _ domain.Principal, id string) error {
			if id != "usr_1" {
				return domain.NotFound("user", id)
			}
			deleted = append(deleted, id)
			return nil
		}
		if res := h.do("DELETE", "/v1/users/usr_1", nil); res.Status != 204 || len(res.Body) != 0 {
			t.Errorf("delete: %d %s", res.Status, res.Body)
		}
		h.wantError(h.do("DELETE", "/v1/users/usr_9", nil), 404, "not_found", "")
		if !reflect.DeepEqual(deleted, []string{"usr_1"}) {
			t.Errorf("deleted %v", deleted)
		}
	})
}

func TestListAudit(t *testing.T) {
	cases := []struct {
		name  string
		query string
		want  domain.AuditFilter
		field string // a 400 on this field instead
	}{
		{"no filter", "", domain.AuditFilter{}, ""},
		{"action and team", "?action=sandbox.create&team_id=team_b", domain.AuditFilter{TeamID: "team_b", Action: "sandbox.create"}, ""},
		{"dates", "?since=2026-11-01&until=2026-12-01",
			domain.AuditFilter{Since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}, ""},
		{"RFC 3339 with offset", "?since=2026-11-01T12:00:00%2B02:00&until=2026-11-01T12:30:00Z",
			domain.AuditFilter{Since: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 1, 12, 30, 0, 0, time.UTC)}, ""},
		{"page", "?before=42&limit=2", domain.AuditFilter{BeforeID: 42, Limit: 2}, ""},
		{"limit max", "?limit=1000", domain.AuditFilter{Limit: 1000}, ""},
		{"since words", "?since=yesterday", domain.AuditFilter{}, "since"},
		{"until bad month", "?until=2026-13-01", domain.AuditFilter{}, "until"},
		{"before zero", "?before=0", domain.AuditFilter{}, "before"},
		{"before negative", "?before=-3", domain.AuditFilter{}, "before"},
		{"before text", "?before=abc", domain.AuditFilter{}, "before"},
		{"limit zero", "?limit=0", domain.AuditFilter{}, "limit"},
		{"limit too big", "?limit=1001", domain.AuditFilter{}, "limit"},
		{"limit text", "?limit=ten", domain.AuditFilter{}, "limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, teams, _ := newTenancyHarness(t)
			var got domain.AuditFilter
			calls := 0
			teams.AuditFn = func(_ context.Context, _ domain.Principal, f domain.AuditFilter) ([]*domain.AuditEntry, error) {
				got = f
				calls++
				return nil, nil
			}
			res := h.do("GET", "/v1/audit"+c.query, nil)
			if c.field != "" {
				h.wantError(res, 400, "invalid", c.field)
				if calls != 0 {
					t.Error("service called for an invalid query")
				}
				return
			}
			if res.Status != 200 || !reflect.DeepEqual(got, c.want) {
				t.Errorf("%d %s: filter %+v, want %+v", res.Status, res.Body, got, c.want)
			}
			if m := res.Obj(t); m["next"] != "" || !reflect.DeepEqual(m["entries"], []any{}) {
				t.Errorf("empty page: %s", res.Body)
			}
		})
	}
}

func TestListAuditPages(t *testing.T) {
	entries := func(n int, newest int64) []*domain.AuditEntry {
		var out []*domain.AuditEntry
		for i := range n {
			out = append(out, &domain.AuditEntry{ID: newest - int64(i), TeamID: "team_a", At: tenancyT0, ActorType: "key", ActorID: "key_a",
				Action: "sandbox.create", Target: sbID, Status: 201, RemoteAddr: "192.0.2.1", RequestID: "req_1"})
		}
		return out
	}
	cases := []struct {
		name, query string
		n           int   // entries the service returns
		newest      int64 // the first entry's id
		wantNext    string
	}{
		{"full page", "?limit=2", 2, 10, "9"},
		{"short page", "?limit=2", 1, 10, ""},
		{"full default page", "", 100, 188, "89"},
		{"short default page", "", 99, 188, ""},
		{"empty", "?limit=5", 0, 10, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, teams, _ := newTenancyHarness(t)
			teams.AuditFn = func(context.Context, domain.Principal, domain.AuditFilter) ([]*domain.AuditEntry, error) {
				return entries(c.n, c.newest), nil
			}
			res := h.do("GET", "/v1/audit"+c.query, nil)
			m := res.Obj(t)
			if res.Status != 200 || m["next"] != c.wantNext || len(m["entries"].([]any)) != c.n {
				t.Errorf("%d next %v, %d entries; want next %q: %.300s", res.Status, m["next"], len(m["entries"].([]any)), c.wantNext, res.Body)
			}
		})
	}

	h, teams, _ := newTenancyHarness(t)
	teams.AuditFn = func(context.Context, domain.Principal, domain.AuditFilter) ([]*domain.AuditEntry, error) {
		e := entries(1, 7)
		e[0].Details = map[string]string{"context_id": "ctx_1"}
		return append(e, entries(1, 6)...), nil
	}
	res := h.do("GET", "/v1/audit", nil)
	list := res.Obj(t)["entries"].([]any)
	first, second := list[0].(map[string]any), list[1].(map[string]any)
	if first["id"] != 7.0 || first["at"] != "2025-03-04T05:06:07Z" || first["actor_id"] != "key_a" || first["status"] != 201.0 ||
		!reflect.DeepEqual(first["details"], map[string]any{"context_id": "ctx_1"}) || !reflect.DeepEqual(second["details"], map[string]any{}) {
		t.Errorf("entries: %s", res.Body)
	}
	teams.AuditFn = func(context.Context, domain.Principal, domain.AuditFilter) ([]*domain.AuditEntry, error) {
		return nil, domain.Errorf(domain.KindForbidden, "this credential lacks the \"audit:read\" scope")
	}
	h.wantError(h.do("GET", "/v1/audit", nil), 403, "forbidden", "")
}
