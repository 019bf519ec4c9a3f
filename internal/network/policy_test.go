package network

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/testenv"
)

func TestDefaultDenyList(t *testing.T) {
	m, err := New(Config{Name: "wtunit", Pool: netip.MustParsePrefix("10.220.0.0/24"), DNS: []netip.Addr{}})
	if err != nil {
		t.Fatal(err)
	}
	denied := func(a string) bool {
		for _, p := range m.cfg.DenyCIDRs {
			if p.Contains(netip.MustParseAddr(a)) {
				return true
			}
		}
		return false
	}
	for _, a := range []string{"10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1", "100.64.0.1",
		"100.100.100.200", "169.254.169.254", "192.0.0.170", "224.0.0.251", "239.255.255.250", "240.0.0.1"} {
		if !denied(a) {
			t.Errorf("%s is not denied by default", a)
		}
	}
	// The e2e suite's fake internet (the benchmark range) and ordinary addresses stay
	// reachable.
	for _, a := range []string{"198.18.0.2", "198.19.255.1", "8.8.8.8", "203.0.113.9", "172.32.0.1", "100.128.0.1"} {
		if denied(a) {
			t.Errorf("%s is denied by default", a)
		}
	}
	rs := m.ruleset()
	if !strings.Contains(rs, "ip saddr 10.220.0.0/24 ip daddr { 0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 169.254.0.0/16") {
		t.Errorf("ruleset lacks the default deny list:\n%s", rs)
	}
	if strings.Index(rs, "ip daddr { 0.0.0.0/8") > strings.Index(rs, "@internet accept") {
		t.Errorf("the deny list comes after the internet accept:\n%s", rs)
	}
}

func TestAntiSpoofRules(t *testing.T) {
	m, _ := New(Config{Name: "wtunit", Pool: netip.MustParsePrefix("10.220.0.0/24"), DNS: []netip.Addr{}})
	rs := m.ruleset()
	for _, want := range []string{
		"type filter hook prerouting priority raw",
		`iifname "wv*" fib saddr . iif oif missing drop`, // a source not routed back through its veth
	} {
		if !strings.Contains(rs, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, rs)
		}
	}
	// Two nodes on one host share the "wv*" names: a rule naming this node's pool there
	// would drop the other node's sandboxes' traffic.
	chain := rs[strings.Index(rs, "chain antispoof"):strings.Index(rs, "chain input")]
	if strings.Contains(chain, "10.220.0.0/24") {
		t.Errorf("the antispoof chain names this node's pool:\n%s", chain)
	}
}

func TestDNSStaysReachable(t *testing.T) {
	m, _ := New(Config{Name: "wtunit", Pool: netip.MustParsePrefix("10.220.0.0/24"),
		DNS: []netip.Addr{netip.MustParseAddr("10.255.255.53"), netip.MustParseAddr("fd00::53")}})
	rs := m.ruleset()
	udp := "ip saddr @internet ip daddr { 10.255.255.53 } udp dport 53 accept"
	if !strings.Contains(rs, udp) || !strings.Contains(rs, "ip daddr { 10.255.255.53 } tcp dport 53 accept") {
		t.Fatalf("ruleset does not let sandboxes reach their name server:\n%s", rs)
	}
	if strings.Index(rs, udp) > strings.Index(rs, "ip daddr { 0.0.0.0/8") {
		t.Errorf("the name server accept comes after the deny list")
	}
	if strings.Contains(rs, "fd00::53") {
		t.Errorf("an IPv6 name server in an IPv4 rule:\n%s", rs)
	}
}

func TestParseCIDRs(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  string
	}{
		{"10.0.0.0/8, 203.0.113.7", []string{"10.0.0.0/8", "203.0.113.7/32"}, ""},
		{"192.168.1.1/16", []string{"192.168.0.0/16"}, ""},
		{"none", []string{}, ""},
		{"", []string{}, ""},
		{"fd00::/8", nil, "only IPv4"},
		{"nonsense", nil, "neither a CIDR"},
	}
	for _, c := range cases {
		ps, err := ParseCIDRs(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if err != nil || !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("%q: %v %v, want %v", c.in, got, err, c.want)
		}
	}
	if _, err := New(Config{DenyCIDRs: []netip.Prefix{netip.MustParsePrefix("fd00::/8")}}); err == nil {
		t.Errorf("an IPv6 deny entry was accepted")
	}
}

func TestServiceAddrs(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://warren:pw@10.9.8.7:5432/warren?sslmode=disable": "10.9.8.7",
		"redis://203.0.113.5:6379/0":                                "203.0.113.5",
		"postgres:///warren?host=/var/run/postgresql":               "",
		"postgres:///warren?host=198.51.100.4":                      "198.51.100.4",
		"":                                                          "",
	} {
		if got := serviceHost(in); got != want {
			t.Errorf("serviceHost(%q) = %q, want %q", in, got, want)
		}
	}
	ps, err := ServiceAddrs(context.Background(), "postgres://u@10.9.8.7/db", "redis://127.0.0.1:6379", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].String() != "10.9.8.7/32" || ps[1].String() != "127.0.0.1/32" {
		t.Errorf("ServiceAddrs: %v", ps)
	}
}

func TestHostNameServers(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(p, []byte("# x\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver fd00::1\nsearch example\n"), 0o644)
	got := hostNameServers(p)
	if len(got) != 1 || got[0].String() != "10.255.255.53" {
		t.Errorf("hostNameServers: %v", got)
	}
}

// TestTwoNodesReal runs two nodes' tables on one host, as the test suites do: each node's
// sandboxes must still answer the host while the other node's table is installed (every
// table sees every node's "wv*" veths).
func TestTwoNodesReal(t *testing.T) {
	testenv.NeedsRoot(t, "network namespaces and nftables")
	for _, tool := range []string{"ip", "nft", "ping"} {
		testenv.NeedsTool(t, tool)
	}
	ctx := context.Background()
	var addrs []string
	for i, pool := range []string{"10.241.0.0/24", "10.242.0.0/24"} {
		m, err := New(Config{Name: fmt.Sprintf("wtnode%d", i), Pool: netip.MustParsePrefix(pool), DNS: []netip.Addr{}})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Init(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close(ctx) })
		id := fmt.Sprintf("twonodes%012d", i)
		a, err := m.Attach(ctx, id, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Detach(ctx, id, 1) })
		addrs = append(addrs, a.Address.String())
	}
	for _, a := range addrs {
		if out, err := exec.Command("ping", "-c1", "-W2", a).CombinedOutput(); err != nil {
			t.Errorf("the host cannot reach sandbox %s with both nodes' tables installed: %v %s", a, err, out)
		}
	}
}

// TestInterfaceRules: besides the address rules, what comes in on a sandbox veth is
// matched by interface, so a packet whose source dodged an address rule still meets
// them: to the host only replies pass; veth to veth (sandbox to sandbox, any node) never.
func TestInterfaceRules(t *testing.T) {
	m, _ := New(Config{Name: "wtunit", Pool: netip.MustParsePrefix("10.220.0.0/24"), DNS: []netip.Addr{}})
	rs := m.ruleset()
	input := rs[strings.Index(rs, "chain input"):strings.Index(rs, "chain forward")]
	accept, drop := strings.Index(input, `iifname "wv*" ct state established,related accept`), strings.Index(input, `iifname "wv*" drop`)
	if accept < 0 || drop < 0 || accept > drop {
		t.Errorf("input chain does not drop what a sandbox veth sends the host, replies aside:\n%s", input)
	}
	forward := rs[strings.Index(rs, "chain forward"):strings.Index(rs, "chain postrouting")]
	if i := strings.Index(forward, `iifname "wv*" oifname "wv*" drop`); i < 0 || i > strings.Index(forward, "ip saddr @internet accept") {
		t.Errorf("forward chain does not drop veth-to-veth traffic before the internet accept:\n%s", forward)
	}
}
