// Package network gives each sandbox its own network namespace joined to the host by a
// veth pair, and keeps the node's nftables table: sandboxes reach neither each other nor
// the host's services; those allowed internet access are NATed out through the host.
//
// Address plan: the node's pool (default 10.211.0.0/16) is cut into /30 blocks; block
// `slot` gives the host side .1 and the sandbox .2 of that block. The slot is persisted
// with the sandbox so that a restarted server can find and re-attach its network.
package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/warren-sh/warren/internal/logkey"
)

// Config configures a Manager.
type Config struct {
	// Name identifies this node's networking objects: the nftables table and the netns
	// name prefix. Two nodes on one host need different names and disjoint pools.
	Name string
	// Pool is the IPv4 prefix sandbox addresses come from (at most /29... /8).
	Pool netip.Prefix
	// DenyCIDRs are destinations sandboxes may never reach, even with internet on.
	// nil means DefaultDenyCIDRs; an empty non-nil list denies nothing extra. The
	// node's own addresses need no entry: the input chain drops every connection a
	// sandbox opens to the host, whatever the address.
	DenyCIDRs []netip.Prefix
	// DNS are the name servers sandboxes are given (the host's, see node.resolvConf):
	// port 53 on them stays reachable for sandboxes with internet even when a deny
	// entry covers them (cloud resolvers often sit in 10/8 or 169.254/16). nil means
	// the non-loopback name servers of /etc/resolv.conf.
	DNS []netip.Addr
	// NetnsDir is where named network namespaces live (default /var/run/netns).
	NetnsDir string
	// EgressProxyPort and EgressDNSPort are the host ports of the egress proxy and DNS
	// resolver (internal/egress); 0 means there is none. With them, the DNS traffic of
	// sandboxes with internet access (and of those Redirect names) goes to the resolver,
	// and all TCP of the sandboxes Redirect names goes to the proxy.
	EgressProxyPort, EgressDNSPort int

	Log *slog.Logger
}

// Manager sets up and tears down sandbox networks. Safe for concurrent use.
type Manager struct {
	cfg Config
	log *slog.Logger
	mu  sync.Mutex // serialises nft updates
	// policies holds the slots with an egress policy in the table. Guarded by mu.
	policies map[int]bool
}

// Attachment is a sandbox's network as the runtime needs it.
type Attachment struct {
	NetNSPath string
	NetNSName string
	HostIf    string
	Address   netip.Addr // the sandbox's address
	Gateway   netip.Addr // the host side of the link
	Prefix    int
}

// New validates cfg and returns a Manager. Call Init before the first Attach.
func New(cfg Config) (*Manager, error) {
	if cfg.Name == "" {
		cfg.Name = "warren"
	}
	if !validName(cfg.Name) {
		return nil, fmt.Errorf("network name %q: use 1-12 characters [a-z0-9]", cfg.Name)
	}
	if !cfg.Pool.IsValid() {
		cfg.Pool = netip.MustParsePrefix("10.211.0.0/16")
	}
	cfg.Pool = cfg.Pool.Masked()
	if !cfg.Pool.Addr().Is4() || cfg.Pool.Bits() > 29 || cfg.Pool.Bits() < 8 {
		return nil, fmt.Errorf("sandbox address pool %s: need an IPv4 prefix between /8 and /29", cfg.Pool)
	}
	if cfg.DenyCIDRs == nil {
		cfg.DenyCIDRs = DefaultDenyCIDRs()
	}
	for i, p := range cfg.DenyCIDRs {
		if !p.IsValid() || !p.Addr().Is4() {
			return nil, fmt.Errorf("deny list entry %s: need an IPv4 prefix (IPv6 from sandboxes is dropped anyway)", p)
		}
		cfg.DenyCIDRs[i] = p.Masked()
	}
	if cfg.DNS == nil {
		cfg.DNS = hostNameServers("/etc/resolv.conf")
	}
	if cfg.NetnsDir == "" {
		cfg.NetnsDir = "/var/run/netns"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, log: cfg.Log.With(logkey.Subsystem, "network"), policies: map[int]bool{}}, nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 12 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Slots is the number of sandboxes the pool can address.
func (m *Manager) Slots() int { return 1 << (32 - m.cfg.Pool.Bits() - 2) }

// Pool is the node's sandbox address pool.
func (m *Manager) Pool() netip.Prefix { return m.cfg.Pool }

// addrs returns the host and sandbox addresses of slot.
func (m *Manager) addrs(slot int) (host, sbx netip.Addr, err error) {
	if slot < 0 || slot >= m.Slots() {
		return host, sbx, fmt.Errorf("address slot %d outside the pool %s (%d slots)", slot, m.cfg.Pool, m.Slots())
	}
	b := m.cfg.Pool.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(slot) * 4
	mk := func(x uint32) netip.Addr {
		return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
	}
	return mk(v + 1), mk(v + 2), nil
}

// NetNSName is the name of the sandbox's network namespace.
func (m *Manager) NetNSName(id string) string { return m.cfg.Name + "-" + id }

// hostIf is the host-side veth name: at most 15 bytes, unique per node and sandbox.
func (m *Manager) hostIf(id string) string {
	h := fnv.New32a()
	h.Write([]byte(m.cfg.Name + "/" + id))
	return fmt.Sprintf("wv%08x", h.Sum32())
}

func (m *Manager) table() string { return m.cfg.Name }

// run executes a command, returning its combined output in the error on failure.
func run(ctx context.Context, stdin string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// Init enables IPv4 forwarding and (re)installs the node's nftables table. Elements for
// sandboxes that are already running must be re-added with Allow (and their egress
// policies with SetPolicy) after a restart.
func (m *Manager) Init(ctx context.Context) error {
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enabling IPv4 forwarding: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := run(ctx, m.replacement(), "nft", "-f", "-"); err != nil {
		return fmt.Errorf("installing nftables rules (is nftables installed? apt-get install nftables): %w", err)
	}
	clear(m.policies)
	return nil
}

// replacement is one nft transaction that replaces the node's table, or creates it:
// "add table" makes sure there is one to delete, then the new table is defined. nft
// applies a file atomically, so at no moment is the node without its rules (a restart
// in two steps left sandboxes' traffic unfiltered between the delete and the load).
func (m *Manager) replacement() string {
	return "add table inet " + m.table() + "\ndelete table inet " + m.table() + "\n" + m.ruleset()
}

// ruleset is the node's nftables table. Invariants: a packet from a sandbox's veth must
// carry a source that is routed back through that veth, i.e. the sandbox's own address
// (reverse-path check: no forged sources, so none of the rules below can be dodged with
// one). The check names no pool: every node's table sees every node's "wv*" veths, and
// another node's sandboxes pass it with their own addresses; traffic from the pool to the
// host is dropped unless it answers a connection the host opened; traffic between
// sandboxes is dropped; the deny list is dropped even with internet on, whatever a
// sandbox's egress policy says; then a sandbox with a policy jumps (@egress) to its own
// chain, which accepts its allow prefixes and drops its deny prefixes (SetPolicy); what
// that leaves is forwarded and masqueraded outwards only for addresses in @internet.
func (m *Manager) ruleset() string {
	pool := m.cfg.Pool.String()
	var deny, dns []string
	for _, p := range m.cfg.DenyCIDRs {
		deny = append(deny, p.String())
	}
	for _, a := range m.cfg.DNS {
		if a.Is4() {
			dns = append(dns, a.String())
		}
	}
	denyRule := ""
	if len(deny) > 0 {
		// The name servers sandboxes are given stay reachable on port 53 (for sandboxes
		// with internet: the accept needs @internet) even inside a denied range.
		if len(dns) > 0 {
			set := strings.Join(dns, ", ")
			denyRule = fmt.Sprintf("\t\tip saddr @internet ip daddr { %[1]s } udp dport 53 accept\n\t\tip saddr @internet ip daddr { %[1]s } tcp dport 53 accept\n", set)
		}
		denyRule += fmt.Sprintf("\t\tip saddr %s ip daddr { %s } drop\n", pool, strings.Join(deny, ", "))
	}
	egressNAT, egressInput := egressRules(m.cfg)
	return fmt.Sprintf(`table inet %[1]s {
	set internet {
		type ipv4_addr
	}
	map egress {
		type ipv4_addr : verdict
	}
	set proxied {
		type ipv4_addr
	}
	chain antispoof {
		type filter hook prerouting priority raw; policy accept;
		iifname "wv*" fib saddr . iif oif missing drop
	}
%[4]s	chain input {
		type filter hook input priority filter; policy accept;
%[5]s		ip saddr %[2]s ct state established,related accept
		ip saddr %[2]s drop
		iifname "wv*" ct state established,related accept
		iifname "wv*" drop
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		ip daddr %[2]s ct state established,related accept
		ip saddr %[2]s ip daddr %[2]s drop
		iifname "wv*" oifname "wv*" drop
%[3]s		ip saddr vmap @egress
		ip saddr @internet accept
		ip saddr %[2]s drop
		ip daddr %[2]s drop
		iifname "wv*" meta nfproto ipv6 drop
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr %[2]s ip daddr != %[2]s masquerade
	}
}
`, m.table(), pool, denyRule, egressNAT, egressInput)
}

// redirectMark is the packet-mark bit a node's redirect rules set on the first packet
// of a connection they send to its egress proxy or resolver.
const redirectMark = "0x20000000"

// egressRules are the egress service's part of the ruleset: the redirections (nat
// prerouting) and the input-chain exception that lets redirected traffic reach the
// proxy and the resolver on the host. All port-53 traffic of sandboxes with internet
// access goes to Warren's resolver, whatever server it was addressed to; @proxied
// sandboxes (policies with domain rules) have all their TCP redirected to the proxy,
// their DNS to the resolver.
//
// The exception is in every node's table, egress service or not: each table's input
// chain drops what comes from any node's "wv*" veths, so each must let through what
// another node on the host redirected to its own ports. It accepts only a first
// packet that a redirect rule rewrote ("ct status dnat") and marked (redirectMark: a
// packet mark never crosses the wire, so a sandbox cannot forge it); a sandbox
// addressing the host's ports directly is still dropped, and later packets pass as
// established.
func egressRules(cfg Config) (nat, input string) {
	input = "\t\tiifname \"wv*\" ct status dnat meta mark & " + redirectMark + " == " + redirectMark + " accept\n"
	if cfg.EgressProxyPort == 0 || cfg.EgressDNSPort == 0 {
		return "", input
	}
	p, d := cfg.EgressProxyPort, cfg.EgressDNSPort
	mark := "meta mark set meta mark | " + redirectMark
	nat = fmt.Sprintf(`	chain egress_redirect {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "wv*" ip saddr @internet meta l4proto { tcp, udp } th dport 53 %[3]s redirect to :%[2]d
		iifname "wv*" ip saddr @proxied meta l4proto { tcp, udp } th dport 53 %[3]s redirect to :%[2]d
		iifname "wv*" ip saddr @proxied meta l4proto tcp %[3]s redirect to :%[1]d
	}
`, p, d, mark)
	return nat, input
}

// Redirect adds the sandbox at addr to, or removes it from, the set of sandboxes whose
// TCP goes to the egress proxy (egress.Redirector).
func (m *Manager) Redirect(ctx context.Context, addr netip.Addr, on bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := setElement(m.table(), "proxied", addr, on); err != nil {
		return fmt.Errorf("updating egress redirection of %s: %w", addr, err)
	}
	return nil
}

// DefaultDenyCIDRs is the deny list when none is configured: the places a sandbox with
// internet access must still never reach. Private ranges (RFC 1918) hold the node's
// neighbours, databases and caches; 100.64/10 (carrier-grade NAT) is where some clouds
// keep their metadata service (100.100.100.200); 169.254/16 holds the common one;
// 192.0.0/24 (IETF protocol assignments); multicast and the reserved and "this network"
// ranges are never a legitimate destination. The benchmark range 198.18/15 is not in
// it (the end-to-end tests' fake internet lives there).
func DefaultDenyCIDRs() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

// ParseCIDRs parses a comma-separated deny list (--deny-cidr): prefixes or single
// IPv4 addresses; "none" is the empty list.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	ps := []netip.Prefix{}
	if strings.TrimSpace(s) == "none" {
		return ps, nil
	}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("%q is neither a CIDR prefix nor an address (want e.g. 10.0.0.0/8,203.0.113.7)", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if !p.Addr().Is4() {
			return nil, fmt.Errorf("%q: only IPv4 prefixes (sandboxes have no IPv6 egress at all)", f)
		}
		ps = append(ps, p.Masked())
	}
	return ps, nil
}

// ServiceAddrs returns the IPv4 addresses of the hosts in service URLs (the node's
// database and Redis), as /32 prefixes for the deny list: a sandbox must never reach
// them, whatever range they are in. Empty URLs are skipped; a host that does not
// resolve is an error (better to refuse to start than to run without the entry).
func ServiceAddrs(ctx context.Context, urls ...string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, raw := range urls {
		host := serviceHost(raw)
		if host == "" {
			continue
		}
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
		if err != nil {
			return nil, fmt.Errorf("resolving %s to keep it out of sandboxes' reach: %w", host, err)
		}
		for _, a := range addrs {
			ps = append(ps, netip.PrefixFrom(a.Unmap(), 32))
		}
	}
	return ps, nil
}

// serviceHost is the host of a database or Redis URL ("" when it has none, e.g. a
// Unix socket).
func serviceHost(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	h := u.Hostname()
	if h == "" {
		h = u.Query().Get("host") // postgres:///db?host=... (a socket directory or a host)
	}
	if strings.HasPrefix(h, "/") {
		return ""
	}
	return h
}

// hostNameServers are the IPv4 name servers in a resolv.conf, loopback ones left out
// (those are not what sandboxes get).
func hostNameServers(path string) []netip.Addr {
	b, _ := os.ReadFile(path)
	out := []netip.Addr{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		if a, err := netip.ParseAddr(f[1]); err == nil && a.Is4() && !a.IsLoopback() {
			out = append(out, a)
		}
	}
	return out
}

// Close removes the node's nftables table. Sandbox namespaces are left to Detach.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.policies)
	if err := run(ctx, "", "nft", "list", "table", "inet", m.table()); err != nil {
		return nil
	}
	return run(ctx, "", "nft", "delete", "table", "inet", m.table())
}

// Attach creates the sandbox's namespace and veth pair and, if internet is true, lets it
// out. On error everything it made is removed again.
func (m *Manager) Attach(ctx context.Context, id string, slot int, internet bool) (_ *Attachment, err error) {
	host, sbx, err := m.addrs(slot)
	if err != nil {
		return nil, err
	}
	a := &Attachment{
		NetNSName: m.NetNSName(id),
		HostIf:    m.hostIf(id),
		Address:   sbx,
		Gateway:   host,
		Prefix:    30,
	}
	a.NetNSPath = m.cfg.NetnsDir + "/" + a.NetNSName
	defer func() {
		if err != nil {
			_ = m.Detach(context.WithoutCancel(ctx), id, slot)
		}
	}()
	// The nft run (a process start) for the internet set's element, which only needs
	// the address, goes on meanwhile; the links are netlink calls (see attachLinks).
	allowed := make(chan error, 1)
	if internet {
		go func() { allowed <- m.Allow(ctx, slot, true) }()
	} else {
		allowed <- nil
	}
	if err := attachLinks(a); err != nil {
		<-allowed // (Detach, deferred above, takes the element out again)
		return nil, err
	}
	if err := <-allowed; err != nil {
		return nil, err
	}
	return a, nil
}

// Allow turns the sandbox's internet access on or off.
func (m *Manager) Allow(ctx context.Context, slot int, on bool) error {
	_, sbx, err := m.addrs(slot)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := setElement(m.table(), "internet", sbx, on); err != nil {
		return fmt.Errorf("updating internet access of %s: %w", sbx, err)
	}
	return nil
}

// Detach removes the sandbox's internet access, veth pair and namespace. It succeeds
// when they are already gone. slot may be -1 when unknown.
func (m *Manager) Detach(ctx context.Context, id string, slot int) error {
	var errs []error
	if slot >= 0 { // the slot is unknown for orphans; their element goes with the table
		if err := m.Allow(ctx, slot, false); err != nil && !strings.Contains(err.Error(), "table") {
			errs = append(errs, err)
		}
		if err := m.ClearPolicy(ctx, slot); err != nil {
			errs = append(errs, err)
		}
		// The next sandbox in this slot must not inherit the redirection.
		if _, sbx, err := m.addrs(slot); err == nil {
			if err := m.Redirect(ctx, sbx, false); err != nil && !strings.Contains(err.Error(), "table") {
				errs = append(errs, err)
			}
		}
	}
	if err := deleteLink(m.hostIf(id)); err != nil {
		errs = append(errs, err)
	}
	if err := removeNamedNetns(m.cfg.NetnsDir + "/" + m.NetNSName(id)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func linkGone(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return errors.Is(err, os.ErrNotExist)
}

// List returns the ids of sandboxes that have a namespace of this node.
func (m *Manager) List(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(m.cfg.NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	prefix := m.cfg.Name + "-"
	for _, e := range ents {
		if id, ok := strings.CutPrefix(e.Name(), prefix); ok && id != "" {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
