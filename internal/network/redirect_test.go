package network

import (
	"net/netip"
	"strings"
	"testing"
)

// TestRedirectRules: with the egress service's ports the ruleset redirects DNS and the
// proxied sandboxes' TCP, and lets only redirected traffic through the input chain,
// before the drop that keeps sandboxes off the host; without them it has neither.
func TestRedirectRules(t *testing.T) {
	cfg := Config{Name: "wtunit", Pool: netip.MustParsePrefix("10.220.0.0/24"), DNS: []netip.Addr{}}
	m, _ := New(cfg)
	rs := m.ruleset()
	exception := `iifname "wv*" ct status dnat meta mark & 0x20000000 == 0x20000000 accept`
	if strings.Contains(rs, "redirect") {
		t.Errorf("no egress ports, yet:\n%s", rs)
	}
	// Every node's table lets through what another node on the host redirected.
	if !strings.Contains(rs, exception) {
		t.Errorf("no egress ports: the ruleset still needs %q:\n%s", exception, rs)
	}
	cfg.EgressProxyPort, cfg.EgressDNSPort = 15001, 15053
	m, _ = New(cfg)
	rs = m.ruleset()
	for _, want := range []string{
		`iifname "wv*" ip saddr @internet meta l4proto { tcp, udp } th dport 53 meta mark set meta mark | 0x20000000 redirect to :15053`,
		`iifname "wv*" ip saddr @proxied meta l4proto tcp meta mark set meta mark | 0x20000000 redirect to :15001`,
		exception,
	} {
		if !strings.Contains(rs, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, rs)
		}
	}
	if strings.Index(rs, "ct status dnat") > strings.Index(rs, "ip saddr 10.220.0.0/24 drop") {
		t.Errorf("the input exceptions come after the drop:\n%s", rs)
	}
	// DNS must be redirected before the catch-all TCP redirect of proxied sandboxes.
	if strings.Index(rs, "@proxied meta l4proto { tcp, udp } th dport 53") > strings.Index(rs, "@proxied meta l4proto tcp meta mark") {
		t.Errorf("the proxied sandboxes' DNS redirect comes after their TCP redirect")
	}
}
