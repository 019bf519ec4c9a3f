package egress

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// Locally served zones. Reverse lookups of private and special addresses (RFC 6303,
// and RFC 7793 for 100.64.0.0/10) have no answer in public DNS, so the resolver
// answers them itself, as recursive resolvers should, instead of forwarding them:
//   - a program that looks up the name of 0.0.0.0, 127.0.0.1 or its own 10.x address
//     (Python's http.server does, before it listens) gets NXDOMAIN at once, even on a
//     host whose upstreams are slow or unreachable;
//   - sandboxes cannot ask the host's DNS servers for the names of the host's private
//     networks.
//
// Names under these zones are answered whatever the sandbox's egress policy: the
// answer never leaves the host.
var localZones = func() map[string]bool {
	z := map[string]bool{}
	for _, s := range []string{
		"0.in-addr.arpa", "127.in-addr.arpa", "254.169.in-addr.arpa",
		"2.0.192.in-addr.arpa", "100.51.198.in-addr.arpa", "113.0.203.in-addr.arpa",
		"255.255.255.255.in-addr.arpa",
		"10.in-addr.arpa", "168.192.in-addr.arpa",
		"0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa", // ::
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa", // ::1
		"d.f.ip6.arpa",                                                         // fd00::/8
		"8.e.f.ip6.arpa", "9.e.f.ip6.arpa", "a.e.f.ip6.arpa", "b.e.f.ip6.arpa", // fe80::/10
		"8.b.d.0.1.0.0.2.ip6.arpa", // 2001:db8::/32
	} {
		z[s] = true
	}
	for i := 16; i <= 31; i++ {
		z[fmt.Sprintf("%d.172.in-addr.arpa", i)] = true
	}
	for i := 64; i <= 127; i++ {
		z[fmt.Sprintf("%d.100.in-addr.arpa", i)] = true
	}
	return z
}()

// localNegTTL is how long a client may cache a local zone's negative answer (the SOA's
// minimum, RFC 6303 section 3).
const localNegTTL = 10800

// localZone returns the locally served zone that holds name (lower case, no trailing
// dot), if any.
func localZone(name string) (string, bool) {
	for s := name; s != ""; {
		if localZones[s] {
			return s, true
		}
		i := strings.IndexByte(s, '.')
		if i < 0 {
			break
		}
		s = s[i+1:]
	}
	return "", false
}

// localAnswer answers q from the empty local zone that holds its name, or returns nil
// when q is not for one: NXDOMAIN below the zone's apex, the SOA or NS record at the
// apex, and NODATA for any other type there. Negative answers carry the SOA so that
// clients cache them.
func localAnswer(q *dns.Msg) *dns.Msg {
	if len(q.Question) != 1 || q.Question[0].Qclass != dns.ClassINET {
		return nil
	}
	qq := q.Question[0]
	name := strings.TrimSuffix(strings.ToLower(qq.Name), ".")
	zone, ok := localZone(name)
	if !ok {
		return nil
	}
	apex := dns.Fqdn(zone)
	soa := &dns.SOA{
		Hdr:  dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: localNegTTL},
		Ns:   apex,
		Mbox: "nobody.invalid.",
		// RFC 6303 section 3's values.
		Serial: 1, Refresh: 3600, Retry: 1200, Expire: 604800, Minttl: localNegTTL,
	}
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	m.RecursionAvailable = true
	switch {
	case name != zone:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa}
	case qq.Qtype == dns.TypeSOA:
		m.Answer = []dns.RR{soa}
	case qq.Qtype == dns.TypeNS:
		m.Answer = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: localNegTTL}, Ns: apex}}
	default:
		m.Ns = []dns.RR{soa}
	}
	return m
}
