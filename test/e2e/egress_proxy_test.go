package e2e

import (
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
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/netns"

	"github.com/miekg/dns"

	"github.com/warren-sh/warren/test/internal/harness"
)

// fakeWeb is a web host (HTTP on 80, TLS with a self-signed certificate on 443) and a
// DNS server answering names from a table, at one address in a network namespace of
// the test's own, routed from the host like an outside address. No packet leaves the
// machine.
type fakeWeb struct {
	addr netip.Addr
}

func newFakeWeb(t *testing.T, third int, names map[string]string) *fakeWeb {
	t.Helper()
	ns, hostIf := fmt.Sprintf("wtep%d", os.Getpid()%100000), fmt.Sprintf("wtep%dh", os.Getpid()%100000)
	f := &fakeWeb{addr: netip.AddrFrom4([4]byte{198, 18, byte(third), 2})}
	gw := netip.AddrFrom4([4]byte{198, 18, byte(third), 1})
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	var closers []func()
	run("ip", "netns", "add", ns)
	t.Cleanup(func() {
		for _, c := range closers {
			c()
		}
		exec.Command("ip", "netns", "del", ns).Run()
		exec.Command("ip", "link", "del", hostIf).Run()
	})
	run("ip", "link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", ns)
	run("ip", "addr", "add", gw.String()+"/24", "dev", hostIf)
	run("ip", "link", "set", hostIf, "up")
	run("ip", "-n", ns, "addr", "add", f.addr.String()+"/24", "dev", "eth0")
	run("ip", "-n", ns, "link", "set", "eth0", "up")
	run("ip", "-n", ns, "link", "set", "lo", "up")
	run("ip", "-n", ns, "route", "add", "default", "via", gw.String())
	path := "/var/run/netns/" + ns
	web := listenInNetns(t, path, net.JoinHostPort(f.addr.String(), "80"))
	tl := tls.NewListener(listenInNetns(t, path, net.JoinHostPort(f.addr.String(), "443")), &tls.Config{Certificates: []tls.Certificate{selfSignedCert(t)}})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "hello %s", r.Host) })
	for _, ln := range []net.Listener{web, tl} {
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		closers = append(closers, func() { srv.Close() })
	}
	pc := packetListenInNetns(t, path, net.JoinHostPort(f.addr.String(), "53"))
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		name := strings.TrimSuffix(strings.ToLower(q.Question[0].Name), ".")
		if ip, ok := names[name]; !ok {
			m.Rcode = dns.RcodeNameError
		} else if q.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(fmt.Sprintf("%s 30 IN A %s", q.Question[0].Name, ip))
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	closers = append(closers, func() { srv.Shutdown() })
	return f
}

// packetListenInNetns opens a UDP socket inside the network namespace at nsPath.
func packetListenInNetns(t *testing.T, nsPath, addr string) net.PacketConn {
	t.Helper()
	pc, err := netns.ListenPacket(nsPath, "udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

func selfSignedCert(t *testing.T) tls.Certificate {
	t.Helper()
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
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// dnsQuery is a Python one-liner run in a sandbox: it sends an A query for its first
// argument to 198.18.255.53:53 (an address nothing serves: the sandbox's DNS is
// redirected to Warren's resolver whatever server it names) and prints the rcode and
// the answer count.
const dnsQuery = `python3 -c '
import socket, struct, sys
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
for l in sys.argv[1].split("."):
    q += bytes([len(l)]) + l.encode()
q += b"\x00" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
s.sendto(q, ("198.18.255.53", 53))
r = s.recv(4096)
print("rcode=%d answers=%d" % (r[3] & 15, struct.unpack(">H", r[6:8])[0]))
' `

// reverseLookup asks the sandbox's resolver for the name of an address through libc
// (gethostbyaddr): "herror 1" is NXDOMAIN (HOST_NOT_FOUND), "herror 2" a failed lookup
// (TRY_AGAIN: refused, SERVFAIL or no answer).
const reverseLookup = `python3 -c '
import socket, sys
try:
    print("name", socket.gethostbyaddr(sys.argv[1])[0])
except socket.herror as e:
    print("herror", e.args[0])
' `

// TestEgressDomains: a real gVisor sandbox whose policy allows only allowed.test.
// Its TCP goes through the egress proxy: allowed.test passes by Host and by SNI,
// other.test on the same address fails, a name whose DNS answer points at a private
// address is refused, its DNS is filtered (reverse lookups of private addresses are
// answered by the resolver itself, policy or not), and an update applies to new
// connections.
func TestEgressDomains(t *testing.T) {
	third := 150 + int(harness.ServerSeq.Load())
	host := fmt.Sprintf("198.18.%d.2", third)
	web := newFakeWeb(t, third, map[string]string{"allowed.test": host, "other.test": host, "inward.test": "10.11.12.13"})
	s := startServer(t, serverOpts{ExtraEnv: []string{"WARREN_EGRESS_DNS_UPSTREAM=" + net.JoinHostPort(web.addr.String(), "53")}})
	sb := s.Create(map[string]any{"network": map[string]any{
		"allow_out": []string{"allowed.test", "inward.test"}, "deny_out": []string{"0.0.0.0/0"},
	}})
	defer s.Kill(sb.ID)
	curl := func(name, scheme string) string {
		port := map[string]string{"http": "80", "https": "443"}[scheme]
		return fmt.Sprintf("curl -sk -m 8 -o /dev/null -w '%%{http_code}' --resolve %s:%s:%s %s://%s/", name, port, host, scheme, name)
	}
	check := func(t *testing.T, cmd string, wantOK bool, want string) {
		t.Helper()
		r := s.Exec(sb.ID, cmd)
		if (r.ExitCode == 0) != wantOK || !strings.Contains(r.Stdout, want) {
			t.Errorf("%s: exit %d stdout %q stderr %q; want ok=%v and %q", cmd, r.ExitCode, r.Stdout, r.Stderr, wantOK, want)
		}
	}
	cases := []struct {
		name, cmd string
		ok        bool
		want      string
	}{
		{"allowed by Host", curl("allowed.test", "http"), true, "200"},
		{"allowed by SNI", curl("allowed.test", "https"), true, "200"},
		{"other name, same address, by Host", curl("other.test", "http"), true, "403"},
		{"other name, same address, by SNI", curl("other.test", "https"), false, ""},
		{"bare address", fmt.Sprintf("curl -s -m 8 http://%s/", host), false, ""},
		{"allowed name resolving to a private address", curl("inward.test", "http"), true, "403"},
		{"DNS: allowed name answered", dnsQuery + "allowed.test", true, "rcode=0 answers=1"},
		{"DNS: other name refused", dnsQuery + "other.test", true, "rcode=5 answers=0"},
		{"DNS: reverse lookup of a private address", reverseLookup + "10.11.12.13", true, "herror 1"},
		{"DNS: reverse lookup of 0.0.0.0", reverseLookup + "0.0.0.0", true, "herror 1"},
		{"DNS: reverse lookup of a public address goes through the policy", reverseLookup + host, true, "herror 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { check(t, c.cmd, c.ok, c.want) })
	}

	code, body := s.API("PUT", "/v1/sandboxes/"+sb.ID+"/network", map[string]any{"allow_out": []string{"other.test"}, "deny_out": []string{"0.0.0.0/0"}}, nil)
	if code != 200 {
		t.Fatalf("updating the policy: %d %s", code, body)
	}
	t.Run("after the update", func(t *testing.T) {
		check(t, curl("other.test", "https"), true, "200")
		check(t, curl("other.test", "http"), true, "200")
		check(t, curl("allowed.test", "http"), true, "403")
		check(t, dnsQuery+"other.test", true, "rcode=0 answers=1")
	})
	if s.WaitLog(regexp.MustCompile("egress denied"), 10*time.Second) == nil {
		t.Errorf("no denied decision in the server's log")
	}
}
