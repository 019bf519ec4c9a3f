package domain

import "testing"

func TestPortToken(t *testing.T) {
	a, b := PortToken("access-a", ""), PortToken("access-b", "")
	switch {
	case a == "" || b == "":
		t.Fatalf("a public sandbox with an access token has no traffic token: %q %q", a, b)
	case a == b:
		t.Errorf("two sandboxes share a traffic token")
	case a != PortToken("access-a", ""):
		t.Errorf("the derived token is not stable")
	case a == "access-a":
		t.Errorf("the traffic token is the access token")
	}
	if got := PortToken("access-a", "own"); got != "own" {
		t.Errorf("a private-traffic sandbox's token = %q, want its own", got)
	}
	if got := PortToken("", ""); got != "" {
		t.Errorf("no access token must give no traffic token, got %q", got)
	}
	sb := &Sandbox{AccessToken: "access-a"}
	r := &Route{AccessToken: "access-a"}
	if sb.PortToken() != a || r.PortToken() != a {
		t.Errorf("Sandbox.PortToken / Route.PortToken disagree with PortToken")
	}
}
