package rest

import (
	"context"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

// TestSandboxTraffic: /v1 creates sandboxes with or without public traffic
// (allow_public_traffic, default true as in E2B), reports the setting, and gives the
// traffic token only to callers with sandboxes:write, on create and get (issue 13, High 1).
func TestSandboxTraffic(t *testing.T) {
	private := testSandbox()
	private.TrafficToken = "own-traffic-token"
	public := testSandbox()
	var got domain.CreateSandbox
	h := newHarness(t)
	h.svc.create = func(_ context.Context, _ domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error) {
		got = req
		if req.AllowPublicTraffic != nil && !*req.AllowPublicTraffic {
			return private, nil
		}
		return public, nil
	}
	// The fakes answer whatever the scopes: the edge must not hand a reader the token.
	current := public
	h.svc.get = func(context.Context, domain.Principal, string) (*domain.Sandbox, error) { return current, nil }

	writer := domain.Principal{TeamID: "team_a", KeyID: "key_a", Scopes: []domain.Scope{domain.ScopeSandboxesRead, domain.ScopeSandboxesWrite}}
	reader := domain.Principal{TeamID: "team_a", KeyID: "key_r", Scopes: []domain.Scope{domain.ScopeSandboxesRead}}
	as := func(p domain.Principal) {
		h.keys.authenticate = func(context.Context, string) (domain.Principal, error) { return p, nil }
	}

	as(writer)
	res := h.do("POST", "/v1/sandboxes", `{"allow_public_traffic":false}`)
	m := res.Obj(t)
	if res.Status != 201 || got.AllowPublicTraffic == nil || *got.AllowPublicTraffic {
		t.Fatalf("create private: %d %s; service got AllowPublicTraffic %v", res.Status, res.Body, got.AllowPublicTraffic)
	}
	if m["allow_public_traffic"] != false || m["traffic_token"] != "own-traffic-token" {
		t.Errorf("create private answered %s", res.Body)
	}

	res = h.do("POST", "/v1/sandboxes", `{}`)
	m = res.Obj(t)
	if res.Status != 201 || got.AllowPublicTraffic != nil {
		t.Fatalf("create default: %d %s; service got AllowPublicTraffic %v", res.Status, res.Body, got.AllowPublicTraffic)
	}
	// A public sandbox's token opens its template's private ports (the interpreter's).
	if m["allow_public_traffic"] != true || m["traffic_token"] != public.PortToken() || public.PortToken() == "" {
		t.Errorf("create default answered %s", res.Body)
	}

	for _, c := range []struct {
		name string
		p    domain.Principal
		sb   *domain.Sandbox
		want any
	}{
		{"writer, private", writer, private, "own-traffic-token"},
		{"writer, public", writer, public, public.PortToken()},
		{"reader, private", reader, private, nil},
		{"reader, public", reader, public, nil},
	} {
		as(c.p)
		current = c.sb
		res := h.do("GET", "/v1/sandboxes/"+sbID, nil)
		m := res.Obj(t)
		if res.Status != 200 || m["traffic_token"] != c.want || m["allow_public_traffic"] != (c.sb.TrafficToken == "") {
			t.Errorf("%s: GET answered %d %s, want traffic_token %v", c.name, res.Status, res.Body, c.want)
		}
	}

	// Listings never carry tokens.
	as(writer)
	h.svc.list = func(context.Context, domain.Principal, domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
		return []*domain.Sandbox{private}, "", nil
	}
	if res := h.do("GET", "/v1/sandboxes", nil); res.Status != 200 || strings.Contains(string(res.Body), "own-traffic-token") {
		t.Errorf("listing: %d %s", res.Status, res.Body)
	}
}
