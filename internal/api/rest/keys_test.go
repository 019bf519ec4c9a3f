package rest

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// echoKey is a createKey that records the spec and makes the key it describes.
func echoKey(got *domain.KeySpec, calls *int) func(context.Context, domain.Principal, domain.KeySpec) (*domain.APIKey, string, error) {
	return func(_ context.Context, p domain.Principal, spec domain.KeySpec) (*domain.APIKey, string, error) {
		*got = spec
		*calls++
		team := spec.TeamID
		if team == "" {
			team = p.TeamID
		}
		return &domain.APIKey{ID: "key_new", TeamID: team, Name: spec.Name, Prefix: "sk_abcd", Hash: "deadbeef",
			Scopes: spec.Scopes, ExpiresAt: spec.ExpiresAt, CreatedAt: time.Date(2025, 2, 3, 4, 5, 6, 0, time.UTC)}, "sk_abcd_secret", nil
	}
}

func TestCreateKey(t *testing.T) {
	expiresAt := time.Date(2026, 1, 2, 2, 4, 5, 0, time.UTC)
	cases := []struct {
		name       string
		body       string
		want       domain.KeySpec
		wantTeam   string
		wantScopes []any
		wantExpiry string // "" = absent, "~1h" = about an hour from now
	}{
		{"name only", `{"name":"ci"}`, domain.KeySpec{Name: "ci"}, "team_a", []any{"admin"}, ""},
		{"empty body", ``, domain.KeySpec{}, "team_a", []any{"admin"}, ""},
		{"scopes", `{"name":"ro","scopes":["sandboxes:read","usage:read"]}`,
			domain.KeySpec{Name: "ro", Scopes: []domain.Scope{domain.ScopeSandboxesRead, domain.ScopeUsageRead}},
			"team_a", []any{"sandboxes:read", "usage:read"}, ""},
		{"expires_at", `{"name":"tmp","expires_at":"2026-01-02T03:04:05+01:00"}`,
			domain.KeySpec{Name: "tmp", ExpiresAt: expiresAt}, "team_a", []any{"admin"}, "2026-01-02T02:04:05Z"},
		{"expires_in", `{"name":"tmp","expires_in":3600}`, domain.KeySpec{Name: "tmp"}, "team_a", []any{"admin"}, "~1h"},
		{"team_id", `{"name":"theirs","team_id":"team_b"}`, domain.KeySpec{Name: "theirs", TeamID: "team_b"}, "team_b", []any{"admin"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			var got domain.KeySpec
			var calls int
			h.keys.createKey = echoKey(&got, &calls)
			before := time.Now()
			res := h.do("POST", "/v1/keys", c.body)
			after := time.Now()
			if res.Status != 201 || calls != 1 {
				t.Fatalf("status %d, %d calls: %s", res.Status, calls, res.Body)
			}
			if c.wantExpiry == "~1h" {
				if got.ExpiresAt.Before(before.Add(time.Hour)) || got.ExpiresAt.After(after.Add(time.Hour)) {
					t.Errorf("expires_in 3600 gave ExpiresAt %v, want about %v", got.ExpiresAt, before.Add(time.Hour))
				}
				got.ExpiresAt = time.Time{}
			}
			if !got.ExpiresAt.Equal(c.want.ExpiresAt) {
				t.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, c.want.ExpiresAt)
			}
			got.ExpiresAt, c.want.ExpiresAt = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("spec = %+v, want %+v", got, c.want)
			}
			m := res.Obj(t)
			if m["key"] != "sk_abcd_secret" || m["prefix"] != "sk_abcd" || m["id"] != "key_new" || strings.Contains(string(res.Body), "deadbeef") {
				t.Errorf("created key: %s", res.Body)
			}
			if m["team_id"] != c.wantTeam || !reflect.DeepEqual(m["scopes"], c.wantScopes) {
				t.Errorf("team_id/scopes: %s", res.Body)
			}
			exp, has := m["expires_at"].(string)
			switch c.wantExpiry {
			case "":
				if has {
					t.Errorf("expires_at = %q, want absent", exp)
				}
			case "~1h":
				if !has {
					t.Errorf("expires_at absent: %s", res.Body)
				}
			default:
				if exp != c.wantExpiry {
					t.Errorf("expires_at = %q, want %q", exp, c.wantExpiry)
				}
			}
		})
	}
}

func TestCreateKeyInvalid(t *testing.T) {
	cases := []struct {
		name, body, field string
	}{
		{"name type", `{"name":5}`, "name"},
		{"name too long", `{"name":"` + strings.Repeat("n", 201) + `"}`, "name"},
		{"scopes type", `{"scopes":"admin"}`, "scopes"},
		{"both expiries", `{"expires_at":"2030-01-01T00:00:00Z","expires_in":60}`, "expires_in"},
		{"expires_in zero", `{"expires_in":0}`, "expires_in"},
		{"expires_in negative", `{"expires_in":-5}`, "expires_in"},
		{"expires_in over ten years", `{"expires_in":315360001}`, "expires_in"},
		{"expires_in fraction", `{"expires_in":1.5}`, "expires_in"},
		{"unknown field", `{"expire":60}`, "expire"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.keys.createKey = func(context.Context, domain.Principal, domain.KeySpec) (*domain.APIKey, string, error) {
				t.Error("service called for an invalid request")
				return nil, "", errNotSet
			}
			h.wantError(h.do("POST", "/v1/keys", c.body), 400, "invalid", c.field)
		})
	}

	// A malformed expires_at is refused before the service sees it. (The decoder cannot
	// name the field of a time that fails to parse, so only the status is checked.)
	h := newHarness(t)
	h.keys.createKey = func(context.Context, domain.Principal, domain.KeySpec) (*domain.APIKey, string, error) {
		t.Error("service called for a malformed expires_at")
		return nil, "", errNotSet
	}
	res := h.do("POST", "/v1/keys", `{"expires_at":"tomorrow"}`)
	if res.Status != 400 || res.Obj(t)["code"] != "invalid" {
		t.Errorf("malformed expires_at: %d %s", res.Status, res.Body)
	}

	h.keys.createKey = func(context.Context, domain.Principal, domain.KeySpec) (*domain.APIKey, string, error) {
		return nil, "", domain.Errorf(domain.KindForbidden, "a key may not have more scopes than its creator")
	}
	h.wantError(h.do("POST", "/v1/keys", `{"scopes":["admin"]}`), 403, "forbidden", "")
	h.keys.createKey = func(context.Context, domain.Principal, domain.KeySpec) (*domain.APIKey, string, error) {
		return nil, "", domain.Invalid("scopes", "unknown scope \"root\"")
	}
	h.wantError(h.do("POST", "/v1/keys", `{"scopes":["root"]}`), 400, "invalid", "scopes")
	h.keys.createKey = func(context.Context, domain.Principal, domain.KeySpec) (*domain.APIKey, string, error) {
		return nil, "", nil
	}
	h.wantError(h.do("POST", "/v1/keys", nil), 500, "internal", "")
}

func TestListAndRevokeKeys(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2025, 2, 3, 4, 5, 6, 0, time.UTC)
	h.keys.listKeys = func(context.Context, domain.Principal) ([]*domain.APIKey, error) {
		return []*domain.APIKey{
			{ID: "k1", TeamID: "team_a", Name: "admin", Prefix: "sk_1111", Hash: "h1", Admin: true, CreatedAt: t0, LastUsedAt: t0},
			{ID: "k2", TeamID: "team_a", Name: "old", Prefix: "sk_2222", Hash: "h2", CreatedAt: t0, RevokedAt: t0,
				Scopes: []domain.Scope{domain.ScopeSandboxesRead}, ExpiresAt: t0.Add(time.Hour)},
		}, nil
	}
	res := h.do("GET", "/v1/keys", nil)
	if res.Status != 200 || strings.Contains(string(res.Body), `"h1"`) {
		t.Fatalf("list: %d %s", res.Status, res.Body)
	}
	keys := res.Obj(t)["keys"].([]any)
	if len(keys) != 2 {
		t.Fatalf("keys: %s", res.Body)
	}
	k1, k2 := keys[0].(map[string]any), keys[1].(map[string]any)
	if k1["admin"] != true || k1["last_used_at"] == nil || k1["revoked_at"] != nil || k1["expires_at"] != nil || k2["revoked_at"] == nil {
		t.Errorf("keys: %s", res.Body)
	}
	if k1["team_id"] != "team_a" || !reflect.DeepEqual(k1["scopes"], []any{"admin"}) ||
		!reflect.DeepEqual(k2["scopes"], []any{"sandboxes:read"}) || k2["expires_at"] != "2025-02-03T05:05:06Z" {
		t.Errorf("scopes/team/expiry: %s", res.Body)
	}
	h.keys.listKeys = func(context.Context, domain.Principal) ([]*domain.APIKey, error) { return nil, nil }
	if res := h.do("GET", "/v1/keys", nil); res.Status != 200 || !strings.Contains(string(res.Body), `"keys":[]`) {
		t.Errorf("empty list: %d %s", res.Status, res.Body)
	}

	h.keys.revokeKey = func(_ context.Context, _ domain.Principal, id string) error {
		if id != "k2" {
			return domain.NotFound("API key", id)
		}
		return nil
	}
	if res := h.do("DELETE", "/v1/keys/k2", nil); res.Status != 204 {
		t.Errorf("revoke: %d %s", res.Status, res.Body)
	}
	h.wantError(h.do("DELETE", "/v1/keys/k9", nil), 404, "not_found", "")
}

func TestTemplates(t *testing.T) {
	h := newHarness(t)
	h.svc.templates = func(context.Context) ([]*domain.Template, error) {
		return []*domain.Template{
			{ID: "base", Description: "Ubuntu with Python and Node", Hash: "h", RootFS: "/var/lib/warren/rootfs/h", Ready: true, BuiltAt: time.Now(), SizeBytes: 1 << 30},
			{ID: "gpu", Description: "not built yet"},
		}, nil
	}
	res := h.do("GET", "/v1/templates", nil)
	if res.Status != 200 || strings.Contains(string(res.Body), "rootfs") {
		t.Fatalf("templates: %d %s", res.Status, res.Body)
	}
	ts := res.Obj(t)["templates"].([]any)
	if len(ts) != 2 || ts[0].(map[string]any)["ready"] != true || ts[1].(map[string]any)["built_at"] != nil {
		t.Errorf("templates: %s", res.Body)
	}
	h.svc.templates = func(context.Context) ([]*domain.Template, error) {
		return nil, domain.Errorf(domain.KindUnavailable, "template store is loading")
	}
	h.wantError(h.do("GET", "/v1/templates", nil), 503, "unavailable", "")
}
