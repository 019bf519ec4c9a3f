package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// upstreams forwards DNS messages to the node's name servers, in order, and looks up
// the addresses the proxy dials.
type upstreams struct {
	servers []string // host:port
	timeout time.Duration

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	addrs   []netip.Addr
	expires time.Time
}

// maxCache bounds the proxy's name cache; maxCacheTTL bounds how long an answer is
// reused.
const (
	maxCache    = 4096
	maxCacheTTL = 60 * time.Second
)

// ParseUpstreams parses a comma-separated list of name servers (IPv4 or IPv6
// address, optionally with a port; 53 by default).
func ParseUpstreams(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if ap, err := netip.ParseAddrPort(f); err == nil {
			out = append(out, ap.String())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a name server address (want e.g. 192.0.2.53 or 192.0.2.53:5353)", f)
		}
		out = append(out, netip.AddrPortFrom(a, 53).String())
	}
	return out, nil
}

// HostUpstreams are the name servers of a resolv.conf (loopback ones included: the
// resolver runs on the host).
func HostUpstreams(path string) []string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		if a, err := netip.ParseAddr(f[1]); err == nil {
			out = append(out, netip.AddrPortFrom(a, 53).String())
		}
	}
	return out
}

// exchange sends m to each upstream in turn over network ("udp" or "tcp") until one
// answers. A truncated UDP answer is asked again over TCP.
func (u *upstreams) exchange(ctx context.Context, m *dns.Msg, network string) (*dns.Msg, error) {
	if len(u.servers) == 0 {
		return nil, errors.New("no upstream name server configured (set --egress-dns-upstream)")
	}
	var errs []error
	for _, s := range u.servers {
		c := &dns.Client{Net: network, Timeout: u.timeout}
		r, _, err := c.ExchangeContext(ctx, m, s)
		if err == nil && r.Truncated && network == "udp" {
			c.Net = "tcp"
			r, _, err = c.ExchangeContext(ctx, m, s)
		}
		if err == nil {
			return r, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", s, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// lookup returns the IPv4 addresses of name (CNAMEs followed by the upstream).
func (u *upstreams) lookup(ctx context.Context, name string) ([]netip.Addr, error) {
	now := time.Now()
	u.mu.Lock()
	if c, ok := u.cache[name]; ok && now.Before(c.expires) {
		u.mu.Unlock()
		return c.addrs, nil
	}
	u.mu.Unlock()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.RecursionDesired = true
	r, err := u.exchange(ctx, m, "udp")
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", name, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("resolving %s: %s", name, dns.RcodeToString[r.Rcode])
	}
	var addrs []netip.Addr
	ttl := maxCacheTTL
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			if ip, ok := netip.AddrFromSlice(a.A.To4()); ok {
				addrs = append(addrs, ip)
				ttl = min(ttl, time.Duration(a.Hdr.Ttl)*time.Second)
			}
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolving %s: no IPv4 address", name)
	}
	u.mu.Lock()
	if u.cache == nil || len(u.cache) >= maxCache {
		u.cache = map[string]cached{} // crude, bounded: start over when full
	}
	if ttl > 0 {
		u.cache[name] = cached{addrs: addrs, expires: now.Add(ttl)}
	}
	u.mu.Unlock()
	return addrs, nil
}

// hostPort joins an address and port for net.Dial.
func hostPort(a netip.Addr, port uint16) string {
	return net.JoinHostPort(a.String(), fmt.Sprint(port))
}
