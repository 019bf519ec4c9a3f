package network

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/testenv"
)

func TestAddressPlan(t *testing.T) {
	m, err := New(Config{Name: "wtunit", Pool: netip.MustParsePrefix("10.220.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Slots(); got != 64 {
		t.Fatalf("slots of a /24: %d, want 64", got)
	}
	cases := []struct {
		slot       int
		host, sbx  string
		wantErrMsg string
	}{
		{0, "10.220.0.1", "10.220.0.2", ""},
		{1, "10.220.0.5", "10.220.0.6", ""},
		{63, "10.220.0.253", "10.220.0.254", ""},
		{64, "", "", "outside the pool"},
		{-1, "", "", "outside the pool"},
	}
	for _, c := range cases {
		h, s, err := m.addrs(c.slot)
		if c.wantErrMsg != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErrMsg) {
				t.Errorf("slot %d: err %v, want %q", c.slot, err, c.wantErrMsg)
			}
			continue
		}
		if err != nil || h.String() != c.host || s.String() != c.sbx {
			t.Errorf("slot %d: %s %s %v, want %s %s", c.slot, h, s, err, c.host, c.sbx)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{Name: "UPPER"}, false},
		{Config{Name: "waytoolongname123"}, false},
		{Config{Pool: netip.MustParsePrefix("fd00::/64")}, false},
		{Config{Pool: netip.MustParsePrefix("10.0.0.0/30")}, false},
		{Config{Pool: netip.MustParsePrefix("10.1.2.3/16")}, true}, // masked
	}
	for _, c := range cases {
		_, err := New(c.cfg)
		if (err == nil) != c.ok {
			t.Errorf("%+v: err %v, want ok=%v", c.cfg, err, c.ok)
		}
	}
}

func TestRulesetPolicy(t *testing.T) {
	m, _ := New(Config{Name: "wtunit", Pool: netip.MustParsePrefix("10.220.0.0/24"),
		DenyCIDRs: []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16")}, DNS: []netip.Addr{}})
	rs := m.ruleset()
	for _, want := range []string{
		"table inet wtunit",
		"ip saddr 10.220.0.0/24 ct state established,related accept", // host may talk to sandboxes
		"ip saddr 10.220.0.0/24 drop",                                // sandboxes may not reach the host
		"ip saddr 10.220.0.0/24 ip daddr 10.220.0.0/24 drop",         // nor each other
		"ip saddr 10.220.0.0/24 ip daddr { 169.254.0.0/16 } drop",    // nor cloud metadata
		"ip saddr @internet accept",
		"masquerade",
	} {
		if !strings.Contains(rs, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, rs)
		}
	}
	// Order matters: the inter-sandbox drop must come before the internet accept.
	if strings.Index(rs, "ip daddr 10.220.0.0/24 drop") > strings.Index(rs, "@internet accept") {
		t.Errorf("sandbox-to-sandbox drop comes after the internet accept")
	}
}

func TestHostIfNames(t *testing.T) {
	m, _ := New(Config{Name: "wtunit"})
	a, b := m.hostIf("aaaaaaaaaaaaaaaaaaaa"), m.hostIf("aaaaaaaaaaaaaaaaaaab")
	if a == b || len(a) > 15 || !strings.HasPrefix(a, "wv") {
		t.Errorf("host interface names %q %q", a, b)
	}
}

// realManager returns a Manager named name over pool with its table installed on this
// host (root, ip and nft needed), closed when the test ends.
func realManager(t *testing.T, name, pool string) *Manager {
	t.Helper()
	testenv.NeedsRoot(t, "network namespaces and nftables")
	for _, tool := range []string{"ip", "nft"} {
		testenv.NeedsTool(t, tool)
	}
	m, err := New(Config{Name: name, Pool: netip.MustParsePrefix(pool)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// TestAttachDetachReal builds and removes a real namespace, veth and nftables table.
func TestAttachDetachReal(t *testing.T) {
	ctx := context.Background()
	m := realManager(t, "wtnet", "10.221.0.0/24")
	id := "aaaaaaaaaaaaaaaaaaaa"
	a, err := m.Attach(ctx, id, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	if a.Address.String() != "10.221.0.14" || a.Gateway.String() != "10.221.0.13" {
		t.Errorf("addresses %s via %s", a.Address, a.Gateway)
	}
	out, _ := exec.Command("ip", "-n", a.NetNSName, "-4", "addr", "show", "eth0").CombinedOutput()
	if !strings.Contains(string(out), "10.221.0.14/30") {
		t.Errorf("sandbox side: %s", out)
	}
	out, _ = exec.Command("ip", "-n", a.NetNSName, "route").CombinedOutput()
	if !strings.Contains(string(out), "default via 10.221.0.13") {
		t.Errorf("sandbox route: %s", out)
	}
	set, _ := exec.Command("nft", "list", "set", "inet", "wtnet", "internet").CombinedOutput()
	if !strings.Contains(string(set), "10.221.0.14") {
		t.Errorf("internet set: %s", set)
	}
	// The host reaches the sandbox side (ping from host into the namespace's kernel).
	if out, err := exec.Command("ping", "-c1", "-W1", "10.221.0.14").CombinedOutput(); err != nil && !strings.Contains(string(out), "not found") {
		t.Logf("ping (informational): %v %s", err, out)
	}
	if ids, _ := m.List(ctx); len(ids) != 1 || ids[0] != id {
		t.Errorf("List: %v", ids)
	}
	if err := m.Detach(ctx, id, 3); err != nil {
		t.Fatal(err)
	}
	if err := m.Detach(ctx, id, 3); err != nil {
		t.Errorf("second Detach: %v", err)
	}
	if _, err := os.Stat("/var/run/netns/" + a.NetNSName); !os.IsNotExist(err) {
		t.Errorf("namespace left: %v", err)
	}
	if _, err := os.Stat("/sys/class/net/" + a.HostIf); !os.IsNotExist(err) {
		t.Errorf("veth left: %v", err)
	}
	set, _ = exec.Command("nft", "list", "set", "inet", "wtnet", "internet").CombinedOutput()
	if strings.Contains(string(set), "10.221.0.14") {
		t.Errorf("internet element left: %s", set)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command("nft", "list", "tables").CombinedOutput(); strings.Contains(string(out), "wtnet") {
		t.Errorf("table left: %s", out)
	}
}

// TestAttachFailureLeavesNothing: an Attach that fails after the internet element went
// in (added meanwhile, beside the links) takes it out again, with the links.
func TestAttachFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	m := realManager(t, "wtnef", "10.222.0.0/24")
	id := "bbbbbbbbbbbbbbbbbbbb"
	// The namespace's name is taken: "netns add" fails.
	if out, err := exec.Command("ip", "netns", "add", m.NetNSName(id)).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", m.NetNSName(id)).Run() })
	if _, err := m.Attach(ctx, id, 5, true); err == nil || !strings.Contains(err.Error(), "creating network namespace") || !strings.Contains(err.Error(), "file exists") {
		t.Fatalf("Attach over a taken namespace: %v, want the namespace error", err)
	}
	set, _ := exec.Command("nft", "list", "set", "inet", "wtnef", "internet").CombinedOutput()
	if strings.Contains(string(set), "10.222.0.22") {
		t.Errorf("internet element left after a failed Attach: %s", set)
	}
	if _, err := os.Stat("/sys/class/net/" + m.hostIf(id)); !os.IsNotExist(err) {
		t.Errorf("veth left after a failed Attach: %v", err)
	}
}

// TestAllowReal: the internet element goes in and out of the node's set over netlink;
// taking out one that is not there (or from a table that is gone) is not an error,
// adding to a table that is gone is, and says which.
func TestAllowReal(t *testing.T) {
	ctx := context.Background()
	m := realManager(t, "wtallow", "10.223.0.0/24")
	elements := func() string {
		out, _ := exec.Command("nft", "list", "set", "inet", "wtallow", "internet").CombinedOutput()
		return string(out)
	}
	if err := m.Allow(ctx, 2, true); err != nil {
		t.Fatal(err)
	}
	if err := m.Allow(ctx, 2, true); err != nil {
		t.Errorf("adding the element again: %v", err)
	}
	if got := elements(); !strings.Contains(got, "10.223.0.10") {
		t.Errorf("element not in the set: %s", got)
	}
	for i := 0; i < 2; i++ {
		if err := m.Allow(ctx, 2, false); err != nil {
			t.Errorf("delete %d: %v", i+1, err)
		}
	}
	if got := elements(); strings.Contains(got, "10.223.0.10") {
		t.Errorf("element left in the set: %s", got)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Allow(ctx, 2, false); err != nil {
		t.Errorf("delete with the table gone: %v", err)
	}
	if err := m.Allow(ctx, 2, true); err == nil || !strings.Contains(err.Error(), "table inet wtallow") {
		t.Errorf("add with the table gone: %v, want an error naming the table", err)
	}
}

// TestInitReplacesInOneTransaction: a restart replaces the node's table in one nft
// transaction (no moment without rules), whether or not the table is there, and the
// result is the same table with no leftovers of the old one.
func TestInitReplacesInOneTransaction(t *testing.T) {
	m, err := New(Config{Name: "wtatom", Pool: netip.MustParsePrefix("10.222.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	script := m.replacement()
	if !strings.HasPrefix(script, "add table inet wtatom\ndelete table inet wtatom\n") || !strings.Contains(script, "table inet wtatom {") {
		t.Fatalf("replacement script does not replace the table in one file:\n%.200s", script)
	}
	testenv.NeedsRoot(t, "nftables")
	testenv.NeedsTool(t, "nft")
	ctx := context.Background()
	defer m.Close(ctx)
	for i := 0; i < 2; i++ { // first: no table yet; second: replacing a live one
		if err := m.Init(ctx); err != nil {
			t.Fatalf("Init #%d: %v", i+1, err)
		}
	}
	// A rule added by hand to the live table is gone after the next Init.
	if out, err := exec.Command("nft", "add", "chain", "inet", "wtatom", "stray").CombinedOutput(); err != nil {
		t.Fatalf("adding a stray chain: %v %s", err, out)
	}
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("nft", "list", "table", "inet", "wtatom").CombinedOutput()
	if err != nil || strings.Contains(string(out), "stray") || !strings.Contains(string(out), "chain forward") {
		t.Errorf("table after replacing it (%v):\n%s", err, out)
	}
}
