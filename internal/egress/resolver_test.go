package egress

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestResolverFilters: the resolver answers the pool only, forwards what the querying
// sandbox's policy allows and refuses the rest (over UDP and TCP).
func TestResolverFilters(t *testing.T) {
	up := fakeDNS(t, map[string]string{"allowed.test": "198.18.0.2", "other.test": "198.18.0.3"})
	rec := &counter{}
	// The "sandbox" is 127.0.0.1: the pool is loopback here.
	s, err := New(Config{Upstreams: []string{up}, Pool: netip.MustParsePrefix("127.0.0.0/8"), Metrics: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := fmt.Sprintf("127.0.0.1:%d", s.DNSPort())
	ask := func(network, name string) int {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		r, _, err := (&dns.Client{Net: network, Timeout: 5 * time.Second}).Exchange(m, at)
		if err != nil {
			t.Fatalf("%s %s: %v", network, name, err)
		}
		return r.Rcode
	}
	// No policy: everything is forwarded.
	if rc := ask("udp", "other.test"); rc != dns.RcodeSuccess {
		t.Fatalf("no policy: rcode %s", dns.RcodeToString[rc])
	}
	if rc := ask("udp", "nowhere.test"); rc != dns.RcodeNameError {
		t.Fatalf("upstream's NXDOMAIN: got %s", dns.RcodeToString[rc])
	}
	lo := netip.MustParseAddr("127.0.0.1")
	if err := s.Apply(context.Background(), lo, "sbx", policy(t, []string{"allowed.test"}, []string{"0.0.0.0/0"})); err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"udp", "tcp"} {
		if rc := ask(network, "allowed.test"); rc != dns.RcodeSuccess {
			t.Errorf("%s allowed.test: %s", network, dns.RcodeToString[rc])
		}
		if rc := ask(network, "other.test"); rc != dns.RcodeRefused {
			t.Errorf("%s other.test: want REFUSED, got %s", network, dns.RcodeToString[rc])
		}
	}
	if rec.get("deny/dns") != 2 || rec.get("allow/dns") != 2 {
		t.Errorf("decisions counted: %v", rec.n)
	}
	s.Remove(context.Background(), lo)
	if rc := ask("udp", "other.test"); rc != dns.RcodeSuccess {
		t.Errorf("after Remove: %s", dns.RcodeToString[rc])
	}
}

// TestResolverRefusesOutsiders: a query from outside the sandbox pool is refused (the
// resolver listens on all addresses and must not be an open resolver).
func TestResolverRefusesOutsiders(t *testing.T) {
	up := fakeDNS(t, map[string]string{"allowed.test": "198.18.0.2"})
	s, err := New(Config{Upstreams: []string{up}, Pool: netip.MustParsePrefix("10.214.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := new(dns.Msg)
	m.SetQuestion("allowed.test.", dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, fmt.Sprintf("127.0.0.1:%d", s.DNSPort()))
	if err != nil || r.Rcode != dns.RcodeRefused {
		t.Fatalf("want REFUSED, got %v %v", r, err)
	}
}

// TestPortInUse: a taken port is a clear startup error.
func TestPortInUse(t *testing.T) {
	s, err := New(Config{Pool: netip.MustParsePrefix("10.214.0.0/24"), Upstreams: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = New(Config{Pool: netip.MustParsePrefix("10.214.0.0/24"), Upstreams: []string{"127.0.0.1:1"}, ProxyPort: s.ProxyPort()})
	if err == nil || !containsAll(err.Error(), "egress proxy", "--egress-proxy-port") {
		t.Fatalf("proxy port in use: %v", err)
	}
	_, err = New(Config{Pool: netip.MustParsePrefix("10.214.0.0/24"), Upstreams: []string{"127.0.0.1:1"}, DNSPort: s.DNSPort()})
	if err == nil || !containsAll(err.Error(), "egress resolver", "--egress-dns-port") {
		t.Fatalf("DNS port in use: %v", err)
	}
}
