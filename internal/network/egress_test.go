package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/netns"

	"github.com/warren-sh/warren/internal/testenv"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// TestEgressRuleOrder: the node's deny list comes before a sandbox's policy (an allow
// entry never opens it), and the policy before internet access (a deny entry holds for a
// sandbox with internet; an allow entry passes for one without).
func TestEgressRuleOrder(t *testing.T) {
	m, _ := New(Config{Name: "wtunit", Pool: netip.MustParsePrefix("10.220.0.0/24"), DNS: []netip.Addr{}})
	rs := m.ruleset()
	forward := rs[strings.Index(rs, "chain forward"):strings.Index(rs, "chain postrouting")]
	deny, vmap, inet := strings.Index(forward, "ip daddr { 0.0.0.0/8"), strings.Index(forward, "ip saddr vmap @egress"), strings.Index(forward, "ip saddr @internet accept")
	if deny < 0 || vmap < 0 || inet < 0 || !(deny < vmap && vmap < inet) {
		t.Errorf("forward chain order wrong (deny list %d, egress map %d, internet %d):\n%s", deny, vmap, inet, forward)
	}
	if !strings.Contains(rs, "map egress {\n\t\ttype ipv4_addr : verdict") {
		t.Errorf("ruleset lacks the egress map:\n%s", rs)
	}
}

func TestPolicyScript(t *testing.T) {
	m, _ := New(Config{Name: "wtunit", Pool: netip.MustParsePrefix("10.220.0.0/24"), DNS: []netip.Addr{}})
	_, sbx, _ := m.addrs(5)
	got := m.policyScript(5, sbx, prefixes("198.18.0.7/32", "198.19.0.0/16"), prefixes("0.0.0.0/0"))
	want := `add set inet wtunit pa5 { type ipv4_addr; flags interval; auto-merge; }
flush set inet wtunit pa5
add element inet wtunit pa5 { 198.18.0.7/32, 198.19.0.0/16 }
add set inet wtunit pd5 { type ipv4_addr; flags interval; auto-merge; }
flush set inet wtunit pd5
add element inet wtunit pd5 { 0.0.0.0/0 }
add chain inet wtunit p5
flush chain inet wtunit p5
add rule inet wtunit p5 ip daddr @pa5 accept
add rule inet wtunit p5 ip daddr @pd5 drop
add element inet wtunit egress { 10.220.0.22 : jump p5 }
`
	if got != want {
		t.Errorf("policy script:\n%s\nwant:\n%s", got, want)
	}
	// An empty list still gets its (flushed) set, so that a replaced policy keeps none
	// of the old entries.
	got = m.policyScript(5, sbx, nil, prefixes("198.18.0.0/15"))
	if strings.Contains(got, "add element inet wtunit pa5") || !strings.Contains(got, "flush set inet wtunit pa5") {
		t.Errorf("policy script with no allow entries:\n%s", got)
	}
	if err := m.SetPolicy(context.Background(), 5, prefixes("2001:db8::/32"), nil); err == nil {
		t.Error("SetPolicy took an IPv6 prefix")
	}
}

// fakeHosts is a network namespace holding addresses routed from the host like outside
// ones, each answering TCP on port 8080 with "ok".
type fakeHosts struct{ addrs []netip.Addr }

func newFakeHosts(t *testing.T, name string, nets ...string) *fakeHosts {
	t.Helper()
	ns, hostIf := "wteg"+name, "wteg"+name+"h" // hostIf at most 15 bytes
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", ns).Run()
		_ = exec.Command("ip", "link", "del", hostIf).Run()
	})
	run("ip", "link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", ns)
	run("ip", "link", "set", hostIf, "up")
	run("ip", "-n", ns, "link", "set", "eth0", "up")
	run("ip", "-n", ns, "link", "set", "lo", "up")
	f := &fakeHosts{}
	for i, n := range nets { // n is "a.b.c": the host gets .1, the fake host .2
		gw, addr := n+".1", n+".2"
		run("ip", "addr", "add", gw+"/24", "dev", hostIf)
		run("ip", "-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
		if i == 0 {
			run("ip", "-n", ns, "route", "add", "default", "via", gw)
		}
		f.addrs = append(f.addrs, netip.MustParseAddr(addr))
	}
	var ln net.Listener
	if err := netns.Do("/var/run/netns/"+ns, func() (err error) {
		ln, err = net.Listen("tcp4", "0.0.0.0:8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("ok"))
			c.Close()
		}
	}()
	return f
}

// reach reports whether a TCP connection from the namespace at nsPath to addr:8080 gets
// the fake host's answer.
func reach(nsPath string, addr netip.Addr) bool {
	return netns.Do(nsPath, func() error { return dialFake(addr) }) == nil
}

// dialFake connects to addr:8080 from the caller's own network namespace and checks the
// fake host's answer.
func dialFake(addr netip.Addr) error {
	c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(addr, 8080).String(), 700*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 2)
	if _, err := c.Read(b); err != nil || string(b) != "ok" {
		return fmt.Errorf("read %q: %v", b, err)
	}
	return nil
}

// TestEgressPolicyReal: a real namespace and nftables table, with fake outside hosts in
// a namespace of the test's own (198.19.<n>.2 and 198.19.<n+120>.2) and one in the node's
// deny list (10.231.<n>.2); names, pool and n come from the process id, so that another
// test binary running this test at once does not collide. Each policy takes effect on
// the next connection, without
// re-attaching.
func TestEgressPolicyReal(t *testing.T) {
	testenv.NeedsRoot(t, "network namespaces and nftables")
	for _, tool := range []string{"ip", "nft"} {
		testenv.NeedsTool(t, tool)
	}
	ctx := context.Background()
	pid := os.Getpid()
	n := 20 + pid%100
	table := fmt.Sprintf("wte%d", pid%1000000)
	m, err := New(Config{Name: table, Pool: netip.MustParsePrefix(fmt.Sprintf("10.223.%d.0/24", pid%256)), DNS: []netip.Addr{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(ctx) })
	bNet := fmt.Sprintf("198.19.%d", n+120)
	hosts := newFakeHosts(t, fmt.Sprint(pid%100000), fmt.Sprintf("198.19.%d", n), bNet, fmt.Sprintf("10.231.%d", n))
	a, b, private := hosts.addrs[0], hosts.addrs[1], hosts.addrs[2]
	// The fake hosts' links may take a moment to come up: wait until the host itself
	// reaches all of them (the private one too: only the sandbox must not).
	for _, h := range hosts.addrs {
		var err error
		for i := 0; i < 50; i++ {
			// From this goroutine's namespace, the host's: "/proc/self/ns/net" is the
			// main thread's, which is not always the host's (package netns).
			if err = dialFake(h); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("the host itself cannot reach the fake host %s: %v", h, err)
		}
	}
	const id, slot = "egresspolicytest0001", 5
	att, err := m.Attach(ctx, id, slot, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Detach(ctx, id, slot) })

	steps := []struct {
		name                string
		internet            bool
		allow, deny         []netip.Prefix
		wantA, wantB, wantP bool
	}{
		{name: "no policy, internet on", internet: true, wantA: true, wantB: true},
		{name: "deny one prefix", internet: true, deny: prefixes(bNet + ".0/24"), wantA: true},
		{name: "only these (deny all + allow list)", internet: true, allow: prefixes(a.String() + "/32"), deny: prefixes("0.0.0.0/0"), wantA: true},
		{name: "allow beats deny on the same prefix", internet: true, allow: prefixes(bNet + ".0/24"), deny: prefixes("198.19.0.0/16"), wantB: true},
		{name: "allow cannot open the node's deny list", internet: true, allow: prefixes(fmt.Sprintf("10.231.%d.0/24", n), "0.0.0.0/0"), wantA: true, wantB: true},
		{name: "internet off, allow list still passes", allow: prefixes(b.String() + "/32"), deny: prefixes("0.0.0.0/0"), wantB: true},
		{name: "internet off, policy cleared", wantA: false},
		{name: "internet on again, policy cleared", internet: true, wantA: true, wantB: true},
	}
	for _, s := range steps {
		if err := m.Allow(ctx, slot, s.internet); err != nil {
			t.Fatal(err)
		}
		if err := m.SetPolicy(ctx, slot, s.allow, s.deny); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		gotA, gotB, gotP := reach(att.NetNSPath, a), reach(att.NetNSPath, b), reach(att.NetNSPath, private)
		if gotA != s.wantA || gotB != s.wantB || gotP != s.wantP {
			out, _ := exec.Command("nft", "list", "table", "inet", table).CombinedOutput()
			t.Errorf("%s: reached %s=%v %s=%v %s=%v; want %v %v %v\n%s", s.name, a, gotA, b, gotB, private, gotP, s.wantA, s.wantB, s.wantP, out)
		}
	}

	// Detach removes every object of the sandbox's policy.
	if err := m.SetPolicy(ctx, slot, prefixes(a.String()+"/32"), prefixes("0.0.0.0/0")); err != nil {
		t.Fatal(err)
	}
	if err := m.Detach(ctx, id, slot); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("nft", "list", "table", "inet", table).CombinedOutput()
	if err != nil {
		t.Fatalf("listing the table: %v %s", err, out)
	}
	for _, name := range []string{"chain p5", "set pa5", "set pd5", "jump p5"} {
		if strings.Contains(string(out), name) {
			t.Errorf("%q left after Detach:\n%s", name, out)
		}
	}
	if err := m.ClearPolicy(ctx, slot); err != nil {
		t.Errorf("ClearPolicy of a detached sandbox: %v", err)
	}
	if _, err := os.Stat(att.NetNSPath); !os.IsNotExist(err) {
		t.Errorf("namespace left: %v", err)
	}
}
