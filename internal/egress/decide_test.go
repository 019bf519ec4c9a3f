package egress

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/warren-sh/warren/internal/domain"
)

func policy(t testing.TB, allow, deny []string) domain.NetworkPolicy {
	t.Helper()
	p, err := domain.NewNetworkPolicy(allow, deny)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDecideName(t *testing.T) {
	only := policy(t, []string{"allowed.test", "*.pkg.test", "198.18.0.9"}, []string{"0.0.0.0/0"})
	deny := policy(t, nil, []string{"*.evil.test"})
	offAllow := policy(t, []string{"allowed.test"}, nil).WithInternet(false)
	cases := []struct {
		p     domain.NetworkPolicy
		name  string
		allow bool
	}{
		{only, "allowed.test", true},
		{only, "a.pkg.test", true},
		{only, "pkg.test", false}, // a wildcard does not match the apex
		{only, "other.test", false},
		{deny, "x.evil.test", false},
		{deny, "evil.test", true},
		{deny, "anything.test", true},
		{domain.NetworkPolicy{}, "anything.test", true},
		{offAllow, "allowed.test", true},
		{offAllow, "other.test", false},
	}
	for _, c := range cases {
		if got, rule := decideName(c.p, c.name); got != c.allow {
			t.Errorf("%v %s: got %v (%s), want %v", c.p, c.name, got, rule, c.allow)
		}
	}
}

// fakeDNS serves A records from names on a loopback port and returns its address.
func fakeDNS(t testing.TB, names map[string]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		name := strings.TrimSuffix(q.Question[0].Name, ".")
		if ip, ok := names[name]; ok {
			for _, a := range strings.Split(ip, ",") {
				rr, _ := dns.NewRR(fmt.Sprintf("%s 30 IN A %s", q.Question[0].Name, a))
				m.Answer = append(m.Answer, rr)
			}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// TestPlan: what the proxy dials for a connection, or why it refuses; in particular a
// name whose DNS answer points inside (10/8, loopback, the pool) is refused even when
// the policy allows the name.
func TestPlan(t *testing.T) {
	up := fakeDNS(t, map[string]string{
		"allowed.test": "198.18.0.2", "inward.test": "10.1.2.3", "loop.test": "127.0.0.1",
		"pool.test": "10.214.9.6", "mixed.test": "10.0.0.1,198.18.0.7", "denied-ip.test": "203.0.113.5",
	})
	s := &Service{
		guard: &guard{deny: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, pool: netip.MustParsePrefix("10.214.9.0/24")},
		up:    &upstreams{servers: []string{up}, timeout: dnsTimeout},
	}
	only := policy(t, []string{"allowed.test", "inward.test", "loop.test", "pool.test", "mixed.test", "198.18.0.50"}, []string{"0.0.0.0/0"})
	open := policy(t, nil, []string{"203.0.113.0/24", "*.evil.test"})
	dst := netip.MustParseAddr("198.18.0.99")
	cases := []struct {
		name   string
		p      domain.NetworkPolicy
		dst    netip.Addr
		host   string
		want   string // the address dialed, "" when refused
		reason string // part of the refusal
	}{
		{"allowed name dials its address", only, dst, "allowed.test", "198.18.0.2", ""},
		{"other name refused", only, dst, "other.test", "", `deny_out 0.0.0.0/0`},
		{"no name, address denied", only, dst, "", "", "deny_out 0.0.0.0/0"},
		{"no name, allowed address", only, netip.MustParseAddr("198.18.0.50"), "", "198.18.0.50", ""},
		{"allowed address keeps its address whatever the name", only, netip.MustParseAddr("198.18.0.50"), "other.test", "198.18.0.50", ""},
		{"name resolving into 10/8 refused", only, dst, "inward.test", "", "10.1.2.3, in the node's deny list"},
		{"name resolving to loopback refused", only, dst, "loop.test", "", "loopback"},
		{"name resolving into the pool refused", only, dst, "pool.test", "", "sandbox network"},
		{"inward addresses skipped, outside one kept", only, dst, "mixed.test", "198.18.0.7", ""},
		{"open policy, denied domain", open, dst, "x.evil.test", "", "deny_out *.evil.test"},
		{"open policy, name into a denied range", open, dst, "denied-ip.test", "", "deny_out 203.0.113.0/24"},
		{"open policy, no name, node deny list", open, netip.MustParseAddr("10.9.9.9"), "", "", "deny list"},
		{"open policy, unknown name", open, dst, "nxdomain.test", "", "NXDOMAIN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addrs, reason := s.plan(context.Background(), c.p, c.dst, c.host)
			if c.want == "" {
				if reason == "" || !strings.Contains(reason, c.reason) {
					t.Fatalf("want refusal containing %q, got %v %q", c.reason, addrs, reason)
				}
				return
			}
			if reason != "" || len(addrs) != 1 || addrs[0].String() != c.want {
				t.Fatalf("want %s, got %v %q", c.want, addrs, reason)
			}
		})
	}
}

func TestGuardRefusesHostAddresses(t *testing.T) {
	g := &guard{pool: netip.MustParsePrefix("10.214.0.0/24")}
	ifs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range ifs {
		ip, _ := netip.AddrFromSlice(a.(*net.IPNet).IP)
		if ip.Unmap().Is4() && g.refuses(ip) == "" {
			t.Errorf("the host's own address %s is not refused", ip)
		}
	}
	for _, a := range []string{"127.0.0.1", "0.0.0.0", "169.254.169.254", "224.0.0.1", "255.255.255.255", "::1", "2001:db8::1"} {
		if g.refuses(netip.MustParseAddr(a)) == "" {
			t.Errorf("%s is not refused", a)
		}
	}
	if why := g.refuses(netip.MustParseAddr("198.18.0.1")); why != "" {
		t.Errorf("198.18.0.1 refused: %s", why)
	}
}

func TestParseUpstreams(t *testing.T) {
	got, err := ParseUpstreams("198.18.0.2, 198.18.0.3:5353")
	if err != nil || strings.Join(got, ",") != "198.18.0.2:53,198.18.0.3:5353" {
		t.Fatalf("got %v %v", got, err)
	}
	if _, err := ParseUpstreams("dns.example"); err == nil || !strings.Contains(err.Error(), "not a name server address") {
		t.Fatalf("want an error naming the bad entry, got %v", err)
	}
}
