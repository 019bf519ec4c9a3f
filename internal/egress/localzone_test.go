package egress

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestLocalAnswer: which names the resolver answers itself, and how.
func TestLocalAnswer(t *testing.T) {
	for _, c := range []struct {
		name  string
		qtype uint16
		local bool
		rcode int
		soa   string // the SOA's owner, in the answer (apex SOA) or the authority section
		ns    bool   // an NS record answers
	}{
		{"0.0.0.0.in-addr.arpa.", dns.TypePTR, true, dns.RcodeNameError, "0.in-addr.arpa.", false},
		{"1.0.0.127.in-addr.arpa.", dns.TypePTR, true, dns.RcodeNameError, "127.in-addr.arpa.", false},
		{"6.0.214.10.IN-ADDR.ARPA.", dns.TypePTR, true, dns.RcodeNameError, "10.in-addr.arpa.", false},
		{"1.2.16.172.in-addr.arpa.", dns.TypePTR, true, dns.RcodeNameError, "16.172.in-addr.arpa.", false},
		{"1.2.31.172.in-addr.arpa.", dns.TypePTR, true, dns.RcodeNameError, "31.172.in-addr.arpa.", false},
		{"1.2.168.192.in-addr.arpa.", dns.TypePTR, true, dns.RcodeNameError, "168.192.in-addr.arpa.", false},
		{"1.2.64.100.in-addr.arpa.", dns.TypePTR, true, dns.RcodeNameError, "64.100.in-addr.arpa.", false},
		{"4.3.254.169.in-addr.arpa.", dns.TypePTR, true, dns.RcodeNameError, "254.169.in-addr.arpa.", false},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", dns.TypePTR, true, dns.RcodeSuccess, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", false},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa.", dns.TypePTR, true, dns.RcodeNameError, "8.e.f.ip6.arpa.", false},
		// The apex: SOA and NS answer, other types are NODATA.
		{"10.in-addr.arpa.", dns.TypeSOA, true, dns.RcodeSuccess, "10.in-addr.arpa.", false},
		{"10.in-addr.arpa.", dns.TypeNS, true, dns.RcodeSuccess, "", true},
		{"10.in-addr.arpa.", dns.TypePTR, true, dns.RcodeSuccess, "10.in-addr.arpa.", false},
		// Forwarded: public addresses, the edges of the private ranges, other names.
		{"8.8.8.8.in-addr.arpa.", dns.TypePTR, false, 0, "", false},
		{"1.2.15.172.in-addr.arpa.", dns.TypePTR, false, 0, "", false},
		{"1.2.32.172.in-addr.arpa.", dns.TypePTR, false, 0, "", false},
		{"1.2.128.100.in-addr.arpa.", dns.TypePTR, false, 0, "", false},
		{"in-addr.arpa.", dns.TypeSOA, false, 0, "", false},
		{"arpa.", dns.TypeNS, false, 0, "", false},
		{"10.in-addr.arpa.example.com.", dns.TypeA, false, 0, "", false},
		{"example.com.", dns.TypeA, false, 0, "", false},
	} {
		q := new(dns.Msg)
		q.SetQuestion(c.name, c.qtype)
		m := localAnswer(q)
		if (m != nil) != c.local {
			t.Errorf("%s %s: answered locally %v, want %v", c.name, dns.TypeToString[c.qtype], m != nil, c.local)
			continue
		}
		if m == nil {
			continue
		}
		if m.Rcode != c.rcode || !m.Authoritative || m.Id != q.Id || len(m.Question) != 1 {
			t.Errorf("%s: rcode %s aa %v id %d, want %s", c.name, dns.RcodeToString[m.Rcode], m.Authoritative, m.Id, dns.RcodeToString[c.rcode])
		}
		var soa *dns.SOA
		for _, rr := range append(append([]dns.RR{}, m.Answer...), m.Ns...) {
			if s, ok := rr.(*dns.SOA); ok {
				soa = s
			}
		}
		if c.soa != "" && (soa == nil || soa.Hdr.Name != c.soa || soa.Minttl != localNegTTL) {
			t.Errorf("%s: SOA %v, want one for %s", c.name, soa, c.soa)
		}
		if c.ns != (len(m.Answer) == 1 && m.Answer[0].Header().Rrtype == dns.TypeNS) {
			t.Errorf("%s: answer %v", c.name, m.Answer)
		}
	}
	// Not one IN question: not ours to answer.
	q := new(dns.Msg)
	q.SetQuestion("1.0.0.127.in-addr.arpa.", dns.TypePTR)
	q.Question[0].Qclass = dns.ClassCHAOS
	if localAnswer(q) != nil {
		t.Error("CHAOS class answered locally")
	}
	q.Question = nil
	if localAnswer(q) != nil {
		t.Error("no question answered locally")
	}
}

// TestResolverLocalZones: reverse lookups of private addresses are answered at once,
// without asking an upstream (here one that never answers) and whatever the sandbox's
// policy; other reverse lookups are still forwarded.
func TestResolverLocalZones(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var asked atomic.Int32
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			asked.Add(1) // and never answer
		}
	}()
	s, err := New(Config{Upstreams: []string{pc.LocalAddr().String()}, Pool: netip.MustParsePrefix("127.0.0.0/8")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A policy that allows no name at all.
	if err := s.Apply(context.Background(), netip.MustParseAddr("127.0.0.1"), "sbx", policy(t, []string{"allowed.test"}, []string{"0.0.0.0/0"})); err != nil {
		t.Fatal(err)
	}
	at := fmt.Sprintf("127.0.0.1:%d", s.DNSPort())
	for _, network := range []string{"udp", "tcp"} {
		for _, name := range []string{"0.0.0.0.in-addr.arpa.", "6.0.214.10.in-addr.arpa.", "1.0.0.127.in-addr.arpa."} {
			q := new(dns.Msg)
			q.SetQuestion(name, dns.TypePTR)
			start := time.Now()
			r, _, err := (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(q, at)
			if err != nil {
				t.Fatalf("%s %s: %v", network, name, err)
			}
			if r.Rcode != dns.RcodeNameError || !r.Authoritative || len(r.Ns) != 1 {
				t.Errorf("%s %s: %s aa=%v ns=%v, want an authoritative NXDOMAIN with the SOA", network, name, dns.RcodeToString[r.Rcode], r.Authoritative, r.Ns)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("%s %s took %v: was it forwarded?", network, name, d)
			}
		}
	}
	if n := asked.Load(); n != 0 {
		t.Fatalf("the upstream was asked %d times for local names", n)
	}
	// A public reverse name goes through the policy (refused here) ...
	q := new(dns.Msg)
	q.SetQuestion("8.8.8.8.in-addr.arpa.", dns.TypePTR)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(q, at)
	if err != nil || r.Rcode != dns.RcodeRefused {
		t.Fatalf("public reverse name under a deny-all policy: %v %v", r, err)
	}
	// ... and without a policy it is forwarded to the upstream.
	s.Remove(context.Background(), netip.MustParseAddr("127.0.0.1"))
	_, _, _ = (&dns.Client{Timeout: 200 * time.Millisecond}).Exchange(q, at)
	deadline := time.Now().Add(5 * time.Second)
	for asked.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if asked.Load() == 0 {
		t.Fatal("a public reverse name was not forwarded")
	}
}
