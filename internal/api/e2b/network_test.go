package e2b

import (
	"context"
	"reflect"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

// TestUpdateNetwork: the SDK's updateNetwork body (SandboxNetworkUpdateConfig) becomes
// the sandbox's whole policy; 204; what Warren cannot honour is refused by name.
func TestUpdateNetwork(t *testing.T) {
	h := newHarness(t)
	var got *domain.NetworkPolicy
	h.svc.SetNetworkFn = func(_ context.Context, p domain.Principal, id string, np domain.NetworkPolicy) (*domain.Sandbox, error) {
		if !reflect.DeepEqual(p, testTeam) {
			t.Errorf("principal %+v", p)
		}
		if id != sbID {
			return nil, domain.NotFound("sandbox", id)
		}
		got = &np
		return running(id), nil
	}
	noInternet := running(sbID)
	noInternet.Internet = false
	h.svc.GetFn = func(_ context.Context, _ domain.Principal, id string) (*domain.Sandbox, error) {
		if id != sbID {
			return nil, domain.NotFound("sandbox", id)
		}
		return noInternet, nil
	}
	ok := []struct {
		name, body string
		want       domain.NetworkPolicy
	}{
		{"only these", `{"allowOut":["198.18.0.9"],"denyOut":["0.0.0.0/0"]}`,
			domain.NetworkPolicy{AllowOut: []string{"198.18.0.9"}, DenyOut: []string{"0.0.0.0/0"}}},
		{"names normalised", `{"allowOut":["*.Example.com."]}`, domain.NetworkPolicy{AllowOut: []string{"*.example.com"}}},
		{"empty clears", `{}`, domain.NetworkPolicy{}},
		{"internet off is deny all", `{"allow_internet_access":false,"allowOut":["198.18.0.9"]}`,
			domain.NetworkPolicy{AllowOut: []string{"198.18.0.9"}, DenyOut: []string{"0.0.0.0/0"}}},
		{"internet off and deny all given too", `{"allow_internet_access":false,"denyOut":["0.0.0.0/0"]}`,
			domain.NetworkPolicy{DenyOut: []string{"0.0.0.0/0"}}},
		{"empty rules accepted", `{"rules":{},"egressProxy":null}`, domain.NetworkPolicy{}},
	}
	for _, tc := range ok {
		got = nil
		wantNoContent(t, h.do("PUT", "/sandboxes/"+sbID+"/network", tc.body))
		if got == nil || !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("%s: service got %+v, want %+v", tc.name, got, tc.want)
		}
	}
	refused := []struct {
		body   string
		status int
		msg    string
	}{
		{`{"rules":{"api.example.com":[{"transform":{"headers":{"a":"b"}}}]}}`, 400, "rules is not supported"},
		{`{"egressProxy":{"address":"proxy:3128"}}`, 400, "egressProxy is not supported"},
		{`{"allowOut":["198.18.0.9","2001:db8::1"]}`, 400, "allowOut[1]"},
		{`{"maskRequestHost":"x"}`, 400, "maskRequestHost"},
		{`{"allow_internet_access":true}`, 400, "created without internet access"},
	}
	for _, tc := range refused {
		got = nil
		wantError(t, h.do("PUT", "/sandboxes/"+sbID+"/network", tc.body), tc.status, tc.msg)
		if got != nil {
			t.Errorf("%s reached the service", tc.body)
		}
	}
	noInternet.Internet = true
	wantNoContent(t, h.do("PUT", "/sandboxes/"+sbID+"/network", `{"allow_internet_access":true,"denyOut":["198.19.0.0/16"]}`))
	if got == nil || !reflect.DeepEqual(*got, domain.NetworkPolicy{DenyOut: []string{"198.19.0.0/16"}}) {
		t.Errorf("internet on: service got %+v", got)
	}
	wantError(t, h.do("PUT", "/sandboxes/zzzzzzzzzzzzzzzzzzzz/network", `{}`), 404, "not found")
}
