package egress

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/netns"

	"github.com/miekg/dns"
)

func run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v %s", args, err, out)
	}
}

// fakeNet is a test-made "internet": a network namespace routed from the host, with
// web hosts (HTTP on 80, TLS with a self-signed certificate on 443) at its addresses and
// a DNS server on the first one that answers from names.
type fakeNet struct {
	ns     string
	hosts  []netip.Addr
	dnsAt  string
	closer []func()
}

// newFakeNet makes the namespace with n host addresses in 198.18.<third>.0/24 and a DNS
// server mapping names to addresses.
func newFakeNet(t testing.TB, third byte, n int, names map[string]string) *fakeNet {
	t.Helper()
	id := os.Getpid() % 100000
	f := &fakeNet{ns: fmt.Sprintf("wtegi%d", id)}
	hostIf := fmt.Sprintf("wtegi%dh", id)
	gw := netip.AddrFrom4([4]byte{198, 18, third, 1})
	run(t, "ip", "netns", "add", f.ns)
	t.Cleanup(func() {
		for _, c := range f.closer {
			c()
		}
		exec.Command("ip", "netns", "del", f.ns).Run()
		exec.Command("ip", "link", "del", hostIf).Run()
	})
	run(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", f.ns)
	run(t, "ip", "addr", "add", gw.String()+"/24", "dev", hostIf)
	run(t, "ip", "link", "set", hostIf, "up")
	for i := 0; i < n; i++ {
		a := netip.AddrFrom4([4]byte{198, 18, third, byte(2 + i)})
		f.hosts = append(f.hosts, a)
		run(t, "ip", "-n", f.ns, "addr", "add", a.String()+"/24", "dev", "eth0")
	}
	run(t, "ip", "-n", f.ns, "link", "set", "eth0", "up")
	run(t, "ip", "-n", f.ns, "link", "set", "lo", "up")
	run(t, "ip", "-n", f.ns, "route", "add", "default", "via", gw.String())
	cert := selfSigned(t)
	path := "/var/run/netns/" + f.ns
	for _, a := range f.hosts {
		var web, tl net.Listener
		err := netns.Do(path, func() (err error) {
			if web, err = net.Listen("tcp", netip.AddrPortFrom(a, 80).String()); err != nil {
				return err
			}
			tl, err = tls.Listen("tcp", netip.AddrPortFrom(a, 443).String(), &tls.Config{Certificates: []tls.Certificate{cert}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s for %s", a, r.Host)
		})
		for _, ln := range []net.Listener{web, tl} {
			srv := &http.Server{Handler: h}
			go srv.Serve(ln)
			f.closer = append(f.closer, func() { srv.Close() })
		}
	}
	var pc net.PacketConn
	f.dnsAt = netip.AddrPortFrom(f.hosts[0], 53).String()
	if err := netns.Do(path, func() (err error) {
		pc, err = net.ListenPacket("udp", f.dnsAt)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		name := strings.TrimSuffix(strings.ToLower(q.Question[0].Name), ".")
		if ip, ok := names[name]; ok && q.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(fmt.Sprintf("%s 30 IN A %s", q.Question[0].Name, ip))
			m.Answer = append(m.Answer, rr)
		} else if !ok {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	f.closer = append(f.closer, func() { srv.Shutdown() })
	return f
}

var (
	certOnce sync.Once
	cert     tls.Certificate
)

func selfSigned(t testing.TB) tls.Certificate {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake"},
			DNSNames: []string{"allowed.test", "other.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return cert
}

// client makes connections from inside a sandbox's namespace.
type client struct{ ns string }

func (c client) dial(addr string) (net.Conn, error) {
	var conn net.Conn
	err := netns.Do(c.ns, func() (err error) {
		conn, err = net.DialTimeout("tcp4", addr, 5*time.Second)
		return err
	})
	return conn, err
}

// get sends one HTTP/1.1 request to addr with the Host header host and returns the
// status code and body.
func (c client) get(addr, host string) (int, string, error) {
	conn, err := c.dial(addr)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := http.NewRequest("GET", "http://"+host+"/", nil)
	if err := req.Write(conn); err != nil {
		return 0, "", err
	}
	return readResponse(conn, req)
}

// tlsGet does the same over TLS with the server name sni (the certificate is not
// checked: the test host's is self-signed).
func (c client) tlsGet(addr, sni string) (int, string, error) {
	conn, err := c.dial(addr)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(conn, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		return 0, "", err
	}
	req, _ := http.NewRequest("GET", "https://"+sni+"/", nil)
	if err := req.Write(tc); err != nil {
		return 0, "", err
	}
	return readResponse(tc, req)
}

// lookup asks the name server at server (any address: the query is redirected) for
// name's A record and returns the answer's rcode and addresses.
func (c client) lookup(server, name string) (int, []string, error) {
	var r *dns.Msg
	err := netns.Do(c.ns, func() (err error) {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		cl := &dns.Client{Timeout: 5 * time.Second}
		r, _, err = cl.ExchangeContext(context.Background(), m, server)
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return r.Rcode, out, nil
}
