package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

// TestSandboxNetwork: create's network and PUT .../network reach the service as a
// policy; the sandbox carries it back as network (empty lists, never null); the
// service's validation errors come back as 400 naming the entry.
func TestSandboxNetwork(t *testing.T) {
	h := newHarness(t)
	var created *domain.NetworkPolicy
	h.svc.create = func(_ context.Context, _ domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error) {
		created = req.Network
		sb := testSandbox()
		if req.Network != nil {
			np, err := domain.NewNetworkPolicy(req.Network.AllowOut, req.Network.DenyOut)
			if err != nil {
				return nil, err
			}
			sb.Network = np
		}
		return sb, nil
	}
	res := h.do("POST", "/v1/sandboxes", `{"network":{"allow_out":["198.18.0.7","API.example.com"],"deny_out":["0.0.0.0/0"]}}`)
	if res.Status != http.StatusCreated || created == nil || !reflect.DeepEqual(created.AllowOut, []string{"198.18.0.7", "API.example.com"}) {
		t.Fatalf("create: %d %s, service got %+v", res.Status, res.Body, created)
	}
	var sb struct {
		Network map[string][]string `json:"network"`
	}
	if err := json.Unmarshal(res.Body, &sb); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"allow_out": {"198.18.0.7", "api.example.com"}, "deny_out": {"0.0.0.0/0"}}
	if !reflect.DeepEqual(sb.Network, want) {
		t.Errorf("created sandbox's network = %v, want %v", sb.Network, want)
	}
	if res := h.do("POST", "/v1/sandboxes", `{}`); res.Status != http.StatusCreated || created != nil || !strings.Contains(string(res.Body), `"network":{"allow_out":[],"deny_out":[]}`) {
		t.Errorf("create without network: %d %s, service got %+v", res.Status, res.Body, created)
	}
	h.wantError(h.do("POST", "/v1/sandboxes", `{"network":{"deny_out":["fd00::/8"]}}`), 400, "invalid", "network.deny_out")

	var gotID string
	var gotPolicy domain.NetworkPolicy
	h.svc.setNetwork = func(_ context.Context, p domain.Principal, id string, np domain.NetworkPolicy) (*domain.Sandbox, error) {
		if err := notFoundUnless(id); err != nil {
			return nil, err
		}
		gotID, gotPolicy = id, np
		n, err := domain.NewNetworkPolicy(np.AllowOut, np.DenyOut)
		if err != nil {
			return nil, err
		}
		sb := testSandbox()
		sb.Network = n
		return sb, nil
	}
	res = h.do("PUT", "/v1/sandboxes/"+sbID+"/network", `{"allow_out":["198.18.0.0/24"],"deny_out":["0.0.0.0/0"]}`)
	if res.Status != 200 || gotID != sbID || !reflect.DeepEqual(gotPolicy, domain.NetworkPolicy{AllowOut: []string{"198.18.0.0/24"}, DenyOut: []string{"0.0.0.0/0"}}) {
		t.Errorf("put: %d %s; service got %q %+v", res.Status, res.Body, gotID, gotPolicy)
	}
	if !strings.Contains(string(res.Body), `"network":{"allow_out":["198.18.0.0/24"],"deny_out":["0.0.0.0/0"]}`) {
		t.Errorf("put response: %s", res.Body)
	}
	// An empty body clears the policy.
	if res := h.do("PUT", "/v1/sandboxes/"+sbID+"/network", `{}`); res.Status != 200 || !gotPolicy.IsZero() {
		t.Errorf("put {}: %d %s; service got %+v", res.Status, res.Body, gotPolicy)
	}
	h.wantError(h.do("PUT", "/v1/sandboxes/zzzzzzzzzzzzzzzzzzzz/network", `{}`), 404, "not_found", "")
	body := h.wantError(h.do("PUT", "/v1/sandboxes/"+sbID+"/network", `{"allow_out":["198.18.0.7","*"]}`), 400, "invalid", "network.allow_out")
	if msg, _ := body["message"].(string); !strings.Contains(msg, "network.allow_out[1]") || !strings.Contains(msg, "*.example.com") {
		t.Errorf("error message %q does not name the entry and what is accepted", msg)
	}
	for _, bad := range []string{`{"allow_out":"198.18.0.7"}`, `{"allowOut":["198.18.0.7"]}`, `[]`} {
		res := h.do("PUT", "/v1/sandboxes/"+sbID+"/network", bad)
		if res.Status != 400 {
			t.Errorf("put %s: %d %s, want 400", bad, res.Status, res.Body)
		}
	}
}
