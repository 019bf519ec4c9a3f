package egress

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/network"
	"github.com/warren-sh/warren/internal/testenv"
)

// node is a test node: a network.Manager with its nftables table, the egress service
// it redirects to, and one attached "sandbox" namespace (the redirection does not
// depend on what runs inside; test/e2e covers real gVisor sandboxes).
type node struct {
	svc     *Service
	net     *network.Manager
	sandbox netip.Addr
	id      string
	cl      client
	rec     *counter
}

func newNode(t testing.TB, upstream string, third byte) *node {
	t.Helper()
	testenv.NeedsRoot(t, "network namespaces and nftables")
	for _, tool := range []string{"ip", "nft"} {
		testenv.NeedsTool(t, tool)
	}
	ctx := context.Background()
	pool := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 214, third, 0}), 28)
	rec := &counter{}
	svc, err := New(Config{Upstreams: []string{upstream}, Pool: pool, Deny: network.DefaultDenyCIDRs(), Metrics: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	name := fmt.Sprintf("wteg%d", os.Getpid()%100000)
	m, err := network.New(network.Config{Name: name, Pool: pool, EgressProxyPort: svc.ProxyPort(), EgressDNSPort: svc.DNSPort()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	svc.SetRedirector(m)
	id := "egtest"
	a, err := m.Attach(ctx, id, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Detach(context.Background(), id, 0) })
	return &node{svc: svc, net: m, sandbox: a.Address, id: id, cl: client{ns: a.NetNSPath}, rec: rec}
}

func (n *node) apply(t testing.TB, allow, deny []string) {
	t.Helper()
	p, err := domain.NewNetworkPolicy(allow, deny)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.svc.Apply(context.Background(), n.sandbox, n.id, p); err != nil {
		t.Fatal(err)
	}
}

// TestProxyThroughNftables: real redirection of a namespace's TCP and DNS to the proxy
// and resolver, with fake hosts and a fake DNS server in a test-made namespace.
func TestProxyThroughNftables(t *testing.T) {
	names := map[string]string{"allowed.test": "198.18.201.2", "other.test": "198.18.201.2",
		"inward.test": "10.1.2.3", "alt.test": "198.18.201.3"}
	f := newFakeNet(t, 201, 2, names)
	n := newNode(t, f.dnsAt, 1)
	// Another node's table on the same host (here without an egress service) drops
	// what comes from every "wv*" veth in its input chain, yet must let this node's
	// redirected traffic through.
	other, err := network.New(network.Config{Name: fmt.Sprintf("wtegb%d", os.Getpid()%100000), Pool: netip.MustParsePrefix("10.214.200.0/28")})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	web, tlsAt := "198.18.201.2:80", "198.18.201.2:443"

	// Only allowed.test (and inward.test, whose answer points inside).
	n.apply(t, []string{"allowed.test", "inward.test"}, []string{"0.0.0.0/0"})
	type result struct {
		code int
		body string
		err  error
	}
	cases := []struct {
		name string
		do   func() (int, string, error)
		want int // 0: the connection must fail
	}{
		{"allowed by Host", func() (int, string, error) { return n.cl.get(web, "allowed.test") }, 200},
		{"allowed by SNI", func() (int, string, error) { return n.cl.tlsGet(tlsAt, "allowed.test") }, 200},
		{"other name, same address, by Host", func() (int, string, error) { return n.cl.get(web, "other.test") }, 403},
		{"other name, same address, by SNI", func() (int, string, error) { return n.cl.tlsGet(tlsAt, "other.test") }, 0},
		{"no name: the address alone is denied", func() (int, string, error) { return n.cl.get(web, "198.18.201.2") }, 0},
		{"allowed name resolving inward is refused", func() (int, string, error) { return n.cl.get(web, "inward.test") }, 403},
		{"forged Host to another address dials the name", func() (int, string, error) { return n.cl.get("198.18.201.3:80", "allowed.test") }, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, err := c.do()
			if c.want == 0 {
				if err == nil && code != 0 {
					t.Fatalf("want a failed connection, got %d %q", code, body)
				}
				return
			}
			if err != nil || code != c.want {
				t.Fatalf("want %d, got %d %q %v", c.want, code, body, err)
			}
			if c.want == 200 && !strings.Contains(body, "hello from 198.18.201.2") {
				t.Fatalf("answered by the wrong host: %q", body)
			}
		})
	}
	_ = result{}

	// DNS: every query goes to Warren's resolver, whichever server it names.
	if rc, addrs, err := n.cl.lookup("198.18.201.3:53", "allowed.test"); err != nil || rc != dns.RcodeSuccess || len(addrs) != 1 || addrs[0] != "198.18.201.2" {
		t.Errorf("allowed.test: rcode %d %v %v", rc, addrs, err)
	}
	if rc, _, err := n.cl.lookup("198.18.201.3:53", "other.test"); err != nil || rc != dns.RcodeRefused {
		t.Errorf("other.test: want REFUSED, got rcode %d %v", rc, err)
	}

	// An update applies to new connections.
	n.apply(t, []string{"other.test"}, []string{"0.0.0.0/0"})
	if code, body, err := n.cl.get(web, "other.test"); err != nil || code != 200 {
		t.Errorf("other.test after the update: %d %q %v", code, body, err)
	}
	if code, _, err := n.cl.get(web, "allowed.test"); err == nil && code != 403 {
		t.Errorf("allowed.test after the update: want 403, got %d", code)
	}
	if rc, _, err := n.cl.lookup("198.18.201.3:53", "other.test"); err != nil || rc != dns.RcodeSuccess {
		t.Errorf("other.test after the update: rcode %d %v", rc, err)
	}
	for _, k := range []string{"allow/host", "deny/host", "allow/sni", "deny/sni", "deny/cidr", "allow/dns", "deny/dns"} {
		if n.rec.get(k) == 0 {
			t.Errorf("no %s decision counted: %v", k, n.rec.n)
		}
	}
}
