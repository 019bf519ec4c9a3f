package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/warren-sh/warren/internal/logkey"
)

// maxInflight bounds the queries the resolver forwards at once; more are answered
// SERVFAIL at once rather than queued.
const maxInflight = 512

// dnsTimeout bounds one exchange with an upstream.
const dnsTimeout = 3 * time.Second

// resolver is the DNS server sandboxes' port-53 traffic is redirected to. It answers
// only the sandbox pool, answers reverse lookups of private addresses itself
// (localzone.go), refuses the names a sandbox's policy denies (decideName) and
// forwards the rest to the upstreams.
type resolver struct {
	s        *Service
	port     int
	udp, tcp *dns.Server
	slots    chan struct{}
	wg       sync.WaitGroup
}

// newResolver listens on UDP and TCP port (one free port for both when 0) and serves.
func newResolver(s *Service, port int) (*resolver, error) {
	r := &resolver{s: s, slots: make(chan struct{}, maxInflight)}
	var pc net.PacketConn
	var ln net.Listener
	var err error
	for try := 0; try < 10; try++ { // a free UDP port may be taken for TCP: try another
		pc, err = net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			break
		}
		p := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", p))
		if err == nil || port != 0 {
			break
		}
		pc.Close()
	}
	if err != nil {
		if pc != nil {
			pc.Close()
		}
		return nil, fmt.Errorf("egress resolver: listening on port %d: %w (choose another with --egress-dns-port, or 0 for any free port)", port, err)
	}
	r.port = pc.LocalAddr().(*net.UDPAddr).Port
	h := dns.HandlerFunc(r.serveDNS)
	r.udp = &dns.Server{PacketConn: pc, Handler: h}
	r.tcp = &dns.Server{Listener: ln, Handler: h, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, MaxTCPQueries: 100}
	// Shutdown before a server has started fails and leaves it serving: return only
	// once both run.
	started := make(chan struct{}, 2)
	for _, srv := range []*dns.Server{r.udp, r.tcp} {
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			_ = srv.ActivateAndServe()
		}()
	}
	<-started
	<-started
	return r, nil
}

func (r *resolver) close() {
	_ = r.udp.Shutdown()
	_ = r.tcp.Shutdown()
	r.wg.Wait()
}

// serveDNS answers one query.
func (r *resolver) serveDNS(w dns.ResponseWriter, q *dns.Msg) {
	src := netip.Addr{}
	network := "udp"
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		src, _ = netip.AddrFromSlice(a.IP)
	case *net.TCPAddr:
		src, _ = netip.AddrFromSlice(a.IP)
		network = "tcp"
	}
	src = src.Unmap()
	if !r.s.guard.pool.Contains(src) || len(q.Question) == 0 {
		reply(w, q, dns.RcodeRefused)
		return
	}
	if ans := localAnswer(q); ans != nil {
		_ = w.WriteMsg(ans)
		return
	}
	id, policy, known := r.s.lookup(src)
	if known {
		for _, qq := range q.Question {
			name, ok := normalName(qq.Name)
			if !ok {
				r.s.decided(false, KindDNS, id, "name", qq.Name, "reason", "not a host name")
				reply(w, q, dns.RcodeRefused)
				return
			}
			allow, rule := decideName(policy, name)
			r.s.decided(allow, KindDNS, id, "name", name, "reason", denyReason(allow, rule))
			if !allow {
				reply(w, q, dns.RcodeRefused)
				return
			}
		}
	}
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	default:
		reply(w, q, dns.RcodeServerFailure)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Upstreams are asked over UDP (TCP when the answer is truncated), whatever the
	// sandbox used; the answer is then cut to what a UDP client takes.
	ans, err := r.s.up.exchange(ctx, q, "udp")
	if err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			r.s.log.Debug("egress resolver: forwarding", "name", strings.ToLower(q.Question[0].Name), logkey.Err, err)
		}
		reply(w, q, dns.RcodeServerFailure)
		return
	}
	ans.Id = q.Id
	if network == "udp" {
		ans.Truncate(udpSize(q))
	}
	_ = w.WriteMsg(ans)
}

func denyReason(allow bool, rule string) string {
	if allow {
		return ""
	}
	return fmt.Sprintf("denied by rule %q", rule)
}

// udpSize is the largest UDP answer the client takes (EDNS0, else 512 bytes).
func udpSize(q *dns.Msg) int {
	if o := q.IsEdns0(); o != nil {
		return int(max(o.UDPSize(), dns.MinMsgSize))
	}
	return dns.MinMsgSize
}

func reply(w dns.ResponseWriter, q *dns.Msg, rcode int) {
	m := new(dns.Msg)
	m.SetRcode(q, rcode)
	_ = w.WriteMsg(m)
}
