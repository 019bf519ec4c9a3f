package rest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func TestKeys(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2025, 2, 3, 4, 5, 6, 0, time.UTC)
	var gotName string
	h.keys.createKey = func(_ context.Context, p domain.Principal, name string) (*domain.APIKey, string, error) {
		gotName = name
		return &domain.APIKey{ID: "key_new", TeamID: p.TeamID, Name: name, Prefix: "sk_abcd", Hash: "deadbeef", CreatedAt: t0}, "sk_abcd_secret", nil
	}
	res := h.do("POST", "/v1/keys", `{"name":"ci"}`)
	if res.status != 201 || gotName != "ci" {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	if m := res.obj(t); m["key"] != "sk_abcd_secret" || m["prefix"] != "sk_abcd" || strings.Contains(string(res.body), "deadbeef") {
		t.Errorf("created key: %s", res.body)
	}
	h.wantError(h.do("POST", "/v1/keys", `{"name":5}`), 400, "invalid", "name")
	h.wantError(h.do("POST", "/v1/keys", `{"name":"`+strings.Repeat("n", 201)+`"}`), 400, "invalid", "name")

	h.keys.listKeys = func(context.Context, domain.Principal) ([]*domain.APIKey, error) {
		return []*domain.APIKey{
			{ID: "k1", Name: "admin", Prefix: "sk_1111", Hash: "h1", Admin: true, CreatedAt: t0, LastUsedAt: t0},
			{ID: "k2", Name: "old", Prefix: "sk_2222", Hash: "h2", CreatedAt: t0, RevokedAt: t0},
		}, nil
	}
	res = h.do("GET", "/v1/keys", nil)
	if res.status != 200 || strings.Contains(string(res.body), `"h1"`) {
		t.Fatalf("list: %d %s", res.status, res.body)
	}
	keys := res.obj(t)["keys"].([]any)
	k1, k2 := keys[0].(map[string]any), keys[1].(map[string]any)
	if k1["admin"] != true || k1["last_used_at"] == nil || k1["revoked_at"] != nil || k2["revoked_at"] == nil {
		t.Errorf("keys: %s", res.body)
	}

	h.keys.revokeKey = func(_ context.Context, _ domain.Principal, id string) error {
		if id != "k2" {
			return domain.NotFound("API key", id)
		}
		return nil
	}
	if res := h.do("DELETE", "/v1/keys/k2", nil); res.status != 204 {
		t.Errorf("revoke: %d %s", res.status, res.body)
	}
	h.wantError(h.do("DELETE", "/v1/keys/k9", nil), 404, "not_found", "")
	h.keys.createKey = func(context.Context, domain.Principal, string) (*domain.APIKey, string, error) {
		return nil, "", domain.Errorf(domain.KindForbidden, "only admin keys can create keys")
	}
	h.wantError(h.do("POST", "/v1/keys", nil), 403, "forbidden", "")
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
	if res.status != 200 || strings.Contains(string(res.body), "rootfs") {
		t.Fatalf("templates: %d %s", res.status, res.body)
	}
	ts := res.obj(t)["templates"].([]any)
	if len(ts) != 2 || ts[0].(map[string]any)["ready"] != true || ts[1].(map[string]any)["built_at"] != nil {
		t.Errorf("templates: %s", res.body)
	}
	h.svc.templates = func(context.Context) ([]*domain.Template, error) {
		return nil, domain.Errorf(domain.KindUnavailable, "template store is loading")
	}
	h.wantError(h.do("GET", "/v1/templates", nil), 503, "unavailable", "")
}
