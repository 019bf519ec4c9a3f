package abuse

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/netns"
)

// Network probes. Every target is either the host itself (listeners this test opens) or
// an address inside a network namespace this test makes (the "lab"), routed from the
// host like an outside network would be. No packet leaves the machine.

func init() {
	register(
		probe{name: "network/private-ranges", run: probePrivateRanges},
		probe{name: "network/metadata", run: probeMetadata},
		probe{name: "network/host-services", run: probeHostServices},
		probe{name: "network/host-database", run: probeHostDatabase},
		probe{name: "network/neighbour-sandbox", run: probeNeighbour},
		probe{name: "network/spoofed-source", run: probeSpoof},
	)
}

// lab is a network namespace of the test's own holding one address per target range
// plus an "internet" address in the benchmark range (198.19/16, never denied), with TCP
// (8080) and UDP (8081) listeners on every address that record who reached them.
type lab struct {
	ns, hostIf   string
	hostSide     netip.Addr // the host's address on the lab link
	internet     netip.Addr
	targets      map[string]netip.Addr // name -> address inside the lab
	mu           sync.Mutex
	hits         []labHit
	tcpLn        net.Listener
	udpConn      net.PacketConn
	routed       []string
	closeOnce    sync.Once
	servedClosed chan struct{}
}

type labHit struct {
	proto, local, remote, line string
}

var (
	labsMu sync.Mutex
	labs   = map[*env]*lab{}
)

// theLab returns this server's lab, making it on first use (removed when the runtime's
// server test ends).
func theLab(t *testing.T, e *env) *lab {
	t.Helper()
	labsMu.Lock()
	defer labsMu.Unlock()
	if l := labs[e]; l != nil {
		return l
	}
	n := byte((os.Getpid() + int(e.S.T.Name()[len(e.S.T.Name())-1])) % 250)
	suffix := fmt.Sprintf("%d%c", os.Getpid()%100000, e.Runtime[0])
	l := &lab{ns: "wal" + suffix, hostIf: "wal" + suffix + "h", servedClosed: make(chan struct{})}
	l.hostSide = netip.AddrFrom4([4]byte{198, 19, n, 1})
	l.internet = netip.AddrFrom4([4]byte{198, 19, n, 2})
	l.targets = map[string]netip.Addr{
		"rfc1918-10":       netip.AddrFrom4([4]byte{10, 199, n, 2}),
		"rfc1918-172.16":   netip.AddrFrom4([4]byte{172, 31, n, 2}),
		"rfc1918-192.168":  netip.AddrFrom4([4]byte{192, 168, n, 2}),
		"cgnat-100.64":     netip.AddrFrom4([4]byte{100, 64, n, 2}),
		"ietf-192.0.0":     netip.AddrFrom4([4]byte{192, 0, 0, n}),
		"metadata-169.254": netip.AddrFrom4([4]byte{169, 254, n, 254}),
		"metadata-alibaba": netip.MustParseAddr("100.100.100.200"),
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			l.close()
			t.Fatalf("making the lab: %v: %v %s", args, err, out)
		}
	}
	exec.Command("ip", "netns", "del", l.ns).Run() // a leftover of a killed run
	exec.Command("ip", "link", "del", l.hostIf).Run()
	run("ip", "netns", "add", l.ns)
	run("ip", "link", "add", l.hostIf, "type", "veth", "peer", "name", "eth0", "netns", l.ns)
	run("ip", "addr", "add", l.hostSide.String()+"/24", "dev", l.hostIf)
	run("ip", "link", "set", l.hostIf, "up")
	run("ip", "-n", l.ns, "addr", "add", l.internet.String()+"/24", "dev", "eth0")
	for _, a := range l.targets {
		run("ip", "-n", l.ns, "addr", "add", a.String()+"/32", "dev", "eth0")
		run("ip", "route", "add", a.String()+"/32", "via", l.internet.String(), "dev", l.hostIf)
		l.routed = append(l.routed, a.String()+"/32")
	}
	run("ip", "-n", l.ns, "link", "set", "eth0", "up")
	run("ip", "-n", l.ns, "link", "set", "lo", "up")
	run("ip", "-n", l.ns, "route", "add", "default", "via", l.hostSide.String())
	err := netns.Do("/var/run/netns/"+l.ns, func() error {
		var err error
		if l.tcpLn, err = net.Listen("tcp4", "0.0.0.0:8080"); err != nil {
			return err
		}
		l.udpConn, err = net.ListenPacket("udp4", "0.0.0.0:8081")
		return err
	})
	if err != nil {
		l.close()
		t.Fatalf("lab listeners: %v", err)
	}
	go l.serveTCP()
	go l.serveUDP()
	labs[e] = l
	e.S.T.Cleanup(func() {
		labsMu.Lock()
		delete(labs, e)
		labsMu.Unlock()
		l.close()
	})
	return l
}

func (l *lab) close() {
	l.closeOnce.Do(func() {
		if l.tcpLn != nil {
			l.tcpLn.Close()
		}
		if l.udpConn != nil {
			l.udpConn.Close()
		}
		for _, r := range l.routed {
			exec.Command("ip", "route", "del", r).Run()
		}
		exec.Command("ip", "netns", "del", l.ns).Run()
		exec.Command("ip", "link", "del", l.hostIf).Run()
	})
}

func (l *lab) serveTCP() {
	for {
		c, err := l.tcpLn.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			l.record(labHit{"tcp", c.LocalAddr().String(), c.RemoteAddr().String(), strings.TrimSpace(line)})
			io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\nlab-ok\n")
		}()
	}
}

func (l *lab) serveUDP() {
	buf := make([]byte, 2048)
	for {
		n, from, err := l.udpConn.ReadFrom(buf)
		if err != nil {
			return
		}
		l.record(labHit{"udp", "", from.String(), string(buf[:n])})
	}
}

func (l *lab) record(h labHit) {
	l.mu.Lock()
	l.hits = append(l.hits, h)
	l.mu.Unlock()
}

// hitsWith returns the hits whose first line (TCP) or payload (UDP) holds tag.
func (l *lab) hitsWith(tag string) []labHit {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []labHit
	for _, h := range l.hits {
		if strings.Contains(h.line, tag) {
			out = append(out, h)
		}
	}
	return out
}

// hostReaches checks from the host that addr:8080 in the lab answers (so that a refusal
// seen from a sandbox is the policy's, not a dead target's).
func hostReaches(t *testing.T, addr netip.Addr) {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort(addr.String(), "8080"), 3*time.Second)
	if err != nil {
		t.Fatalf("the host cannot reach the lab target %s itself: %v", addr, err)
	}
	fmt.Fprintf(c, "GET /host-control HTTP/1.0\r\n\r\n")
	io.Copy(io.Discard, c)
	c.Close()
}

// sandboxTries makes sandbox id (as root) open TCP connections and send UDP datagrams
// to every address, tagged with tag so that the lab can tell them apart. It returns
// "addr=tcp-ok/tcp-fail udp-sent" lines.
func sandboxTries(t *testing.T, e *env, id, tag string, addrs []netip.Addr) map[string]string {
	t.Helper()
	var list []string
	for _, a := range addrs {
		list = append(list, `"`+a.String()+`"`)
	}
	src := fmt.Sprintf(`import socket, threading
def try_one(a):
    res = []
    try:
        c = socket.create_connection((a, 8080), timeout=1.5)
        c.sendall(b"GET /%s HTTP/1.0\r\n\r\n")
        res.append("tcp-ok:" + c.recv(100).decode(errors="replace").split("\n")[-2:][0].strip())
        c.close()
    except OSError as e:
        res.append("tcp-" + type(e).__name__)
    try:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(b"%s", (a, 8081)); res.append("udp-sent")
    except OSError as e:
        res.append("udp-" + type(e).__name__)
    print(a + "=" + " ".join(res), flush=True)
ts = [threading.Thread(target=try_one, args=(a,)) for a in [%s]]
[t.start() for t in ts]; [t.join() for t in ts]`, tag, tag, strings.Join(list, ", "))
	r := rootExec(t, e, id, pyScript(src), 60)
	res := sysResults(r.Stdout)
	if len(res) < len(addrs) {
		t.Fatalf("the sandbox's probe program did not run: %+v", r)
	}
	return res
}

// checkUnreached fails t for every lab target (by name) that a sandbox reached.
func (l *lab) checkUnreached(t *testing.T, tag string, names []string, res map[string]string) string {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // late datagrams
	hits := l.hitsWith(tag)
	var parts []string
	for _, name := range names {
		a := l.targets[name]
		for _, h := range hits {
			if h.proto == "tcp" && strings.HasPrefix(h.local, a.String()+":") {
				t.Errorf("%s (%s): a sandbox opened a TCP connection to it (from %s)", name, a, h.remote)
			}
		}
		if strings.Contains(res[a.String()], "tcp-ok") {
			t.Errorf("%s (%s): the sandbox got an answer: %s", name, a, res[a.String()])
		}
		parts = append(parts, name+" "+strings.Fields(res[a.String()] + " ?")[0])
	}
	// UDP datagrams name no local address in the lab's record; any tagged datagram
	// other than the control's means one of the denied targets got it.
	return strings.Join(parts, ", ")
}

func probeDeniedTargets(t *testing.T, e *env, names []string) string {
	l := theLab(t, e)
	for _, n := range names {
		hostReaches(t, l.targets[n])
	}
	hostReaches(t, l.internet)
	id := e.Fresh(t, map[string]any{"internet": true})
	tag := marker()
	addrs := []netip.Addr{l.internet}
	for _, n := range names {
		addrs = append(addrs, l.targets[n])
	}
	res := sandboxTries(t, e, id, tag, addrs)
	// Control: the same sandbox does reach the lab's internet address, so what stops
	// the others is the deny list, not a missing route.
	if !strings.Contains(res[l.internet.String()], "tcp-ok") {
		t.Fatalf("control: the sandbox (internet on) cannot reach the fake internet %s: %s", l.internet, res[l.internet.String()])
	}
	out := l.checkUnreached(t, tag, names, res)
	udp := 0
	for _, h := range l.hitsWith(tag) {
		if h.proto == "udp" {
			udp++
		}
	}
	if udp > 1 { // the control's datagram only
		t.Errorf("%d tagged UDP datagrams reached the lab; only the control's (1) may", udp)
	}
	return out + "; control " + l.internet.String() + " reached"
}

func probePrivateRanges(t *testing.T, e *env) string {
	// Private ranges hold the node's neighbours, databases and caches: an internet-
	// enabled sandbox must not reach them.
	return probeDeniedTargets(t, e, []string{"rfc1918-10", "rfc1918-172.16", "rfc1918-192.168", "cgnat-100.64", "ietf-192.0.0"})
}

func probeMetadata(t *testing.T, e *env) string {
	// Cloud metadata services: link-local (AWS, GCP, Azure's IMDS) and Alibaba's
	// 100.100.100.200 in the CGNAT range. (169.254.169.254 itself is left alone: the
	// host may use it; the lab holds another link-local address.)
	return probeDeniedTargets(t, e, []string{"metadata-169.254", "metadata-alibaba"})
}

// hostAddrs are the host's IPv4 addresses (all interfaces but loopback and the other
// sandboxes' veths, which come and go with them).
func hostAddrs(t *testing.T) []netip.Addr {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 || strings.HasPrefix(i.Name, "wv") {
			continue
		}
		as, _ := i.Addrs()
		for _, a := range as {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				out = append(out, p.Addr())
			}
		}
	}
	return out
}

// countingListener accepts on 0.0.0.0 (a service bound to every interface, the worst
// case) and counts connections by remote address.
type countingListener struct {
	ln   net.Listener
	mu   sync.Mutex
	from []string
}

func newCountingListener(t *testing.T, network, addr string) *countingListener {
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &countingListener{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.from = append(c.from, conn.RemoteAddr().String())
			c.mu.Unlock()
			conn.Close()
		}
	}()
	return c
}

func (c *countingListener) port() int { return c.ln.Addr().(*net.TCPAddr).Port }

func (c *countingListener) accepted() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.from...)
}

// sandboxGateway is the host side of the sandbox's link (its default route).
func sandboxGateway(t *testing.T, e *env, id string) string {
	r := rootExec(t, e, id, "ip -4 route show default 2>/dev/null | awk '{print $3; exit}'", 20)
	gw := strings.TrimSpace(r.Stdout)
	if _, err := netip.ParseAddr(gw); err != nil {
		t.Fatalf("cannot find the sandbox's gateway: %+v", r)
	}
	return gw
}

// sandboxConnects tries TCP connections from sandbox id (as root) to every host:port
// and returns "target=ok|ErrorName" results.
func sandboxConnects(t *testing.T, e *env, id string, targets []string) map[string]string {
	var list []string
	for _, tg := range targets {
		list = append(list, `"`+tg+`"`)
	}
	r := rootExec(t, e, id, pyScript(fmt.Sprintf(`import socket, threading
def try_one(tg):
    host, port = tg.rsplit(":", 1)
    host = host.strip("[]")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        c = socket.socket(fam, socket.SOCK_STREAM); c.settimeout(2)
        c.connect(socket.getaddrinfo(host, int(port), fam)[0][4]); print(tg + "=ok", flush=True); c.close()
    except OSError as e:
        print(tg + "=" + type(e).__name__, flush=True)
ts = [threading.Thread(target=try_one, args=(tg,)) for tg in [%s]]
[t.start() for t in ts]; [t.join() for t in ts]`, strings.Join(list, ", "))), 60)
	res := sysResults(r.Stdout)
	if len(res) < len(targets) {
		t.Fatalf("the sandbox's probe program did not run: %+v", r)
	}
	return res
}

func probeHostServices(t *testing.T, e *env) string {
	// The API and the sandbox proxy (the test server listens on loopback, as by default),
	// and a stand-in for any host service bound to every interface, on every address of
	// the host a sandbox could name: its gateway, the host's other interfaces, the IPv6
	// link-local address of its gateway. Loopback inside a sandbox is its own.
	l := theLab(t, e) // gives the host one more interface to try
	_ = l
	svc := newCountingListener(t, "tcp", ":0") // [::]:port, IPv4 and IPv6
	id := e.Fresh(t, map[string]any{"internet": true})
	gw := sandboxGateway(t, e, id)
	_, apiPort, _ := net.SplitHostPort(e.S.Listen)
	_, proxyPort, _ := net.SplitHostPort(e.S.PListen)
	_, internalPort, _ := net.SplitHostPort(e.S.IListen) // bound to every interface
	var targets []string
	addrs := []string{gw}
	for _, a := range addrStrings(hostAddrs(t)) {
		// Control from the host: the stand-in answers on this address. (An interface of
		// another suite running meanwhile may vanish under us: such an address is left
		// out, the host's own ones always answer.)
		c, err := net.DialTimeout("tcp", net.JoinHostPort(a, fmt.Sprint(svc.port())), 2*time.Second)
		if err != nil {
			t.Logf("control: the host cannot reach its own listener on %s (left out): %v", a, err)
			continue
		}
		c.Close()
		addrs = append(addrs, a)
	}
	if len(addrs) < 3 { // the gateway, the lab's link and at least the host's own interface
		t.Fatalf("too few host addresses to attack: %v", addrs)
	}
	// The gateway is in the pool, whose sources the host's input drops: it has no
	// control from the host.
	for _, a := range addrs {
		targets = append(targets, net.JoinHostPort(a, fmt.Sprint(svc.port())), net.JoinHostPort(a, apiPort), net.JoinHostPort(a, proxyPort),
			net.JoinHostPort(a, internalPort))
	}
	targets = append(targets, "127.0.0.1:"+apiPort)
	if ll := hostIfLinkLocal(e, id); ll != "" {
		targets = append(targets, "["+ll+"%eth0]:"+fmt.Sprint(svc.port()))
	}
	time.Sleep(100 * time.Millisecond)
	before := len(svc.accepted())
	res := sandboxConnects(t, e, id, targets)
	if got := svc.accepted(); len(got) > before {
		t.Errorf("a host service bound to every interface accepted %d connections from the sandbox: %v", len(got)-before, got[before:])
	}
	for _, tg := range targets {
		if res[tg] == "ok" {
			t.Errorf("the sandbox connected to the host at %s", tg)
		}
	}
	return fmt.Sprintf("%d host targets (API, proxy, the node's internal listener and a service on 0.0.0.0/[::], on %d host addresses and IPv6 link-local) refused", len(targets), len(addrs))
}

func addrStrings(as []netip.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// hostIfLinkLocal is the IPv6 link-local address of the host side of sandbox id's veth
// (the name is network.Manager.hostIf's: "wv" + FNV-32a of "<network>/<id>").
func hostIfLinkLocal(e *env, id string) string {
	h := fnv.New32a()
	h.Write([]byte(e.S.Net + "/" + id))
	ifc, err := net.InterfaceByName(fmt.Sprintf("wv%08x", h.Sum32()))
	if err != nil {
		return ""
	}
	as, _ := ifc.Addrs()
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
			return p.Addr().String()
		}
	}
	return ""
}

func probeHostDatabase(t *testing.T, e *env) string {
	// The node's PostgreSQL and Redis: on their usual ports on every host address, and
	// on the ports they really listen on here. A stand-in listener on 0.0.0.0 shows a
	// database bound to every interface would be unreachable too (host-services).
	id := e.Fresh(t, map[string]any{"internet": true})
	gw := sandboxGateway(t, e, id)
	ports := map[string]bool{"5432": true, "6379": true}
	for _, p := range listeningPorts("postgres", "redis") {
		ports[p] = true
	}
	var targets []string
	for _, a := range append([]string{gw}, addrStrings(hostAddrs(t))...) {
		for p := range ports {
			targets = append(targets, net.JoinHostPort(a, p))
		}
	}
	res := sandboxConnects(t, e, id, targets)
	var reached []string
	for _, tg := range targets {
		if res[tg] == "ok" {
			reached = append(reached, tg)
		}
	}
	if len(reached) > 0 {
		t.Errorf("the sandbox connected to database ports on the host: %v", reached)
	}
	return fmt.Sprintf("PostgreSQL/Redis ports %v unreachable on %d host targets", sortedKeys(ports), len(targets))
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// listeningPorts returns the TCP ports the named programs listen on (from ss).
func listeningPorts(progs ...string) []string {
	out, _ := exec.Command("ss", "-Hltnp").Output()
	var ports []string
	for _, line := range strings.Split(string(out), "\n") {
		for _, p := range progs {
			if strings.Contains(line, `"`+p) {
				f := strings.Fields(line)
				if len(f) >= 4 {
					if _, port, err := net.SplitHostPort(f[3]); err == nil {
						ports = append(ports, port)
					}
				}
			}
		}
	}
	return ports
}

const sandboxListener = `cat > /tmp/l.py <<'PY'
import socket, threading
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 8000)); s.listen()
    while True:
        c, a = s.accept(); open("/tmp/hits", "a").write("tcp %s\n" % a[0]); c.sendall(b"HTTP/1.0 200 OK\r\n\r\nneighbour-ok"); c.close()
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 8001))
    while True:
        d, a = u.recvfrom(2048); open("/tmp/hits", "a").write("udp %s\n" % a[0])
threading.Thread(target=udp, daemon=True).start(); tcp()
PY
: > /tmp/hits; nohup python3 /tmp/l.py >/dev/null 2>&1 &
for i in $(seq 50); do python3 -c 'import socket; socket.create_connection(("127.0.0.1", 8000), 1)' 2>/dev/null && break; sleep 0.1; done
: > /tmp/hits; ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1`

func probeNeighbour(t *testing.T, e *env) string {
	// Two sandboxes of different tenants would sit side by side in the pool; one must
	// not reach the other, by TCP or UDP, internet on or off.
	b := e.Fresh(t, map[string]any{"internet": true})
	rb := rootExec(t, e, b, sandboxListener, 30)
	bAddr := strings.TrimSpace(lastLine(rb.Stdout))
	if _, err := netip.ParseAddr(bAddr); err != nil {
		t.Fatalf("neighbour listener: %+v", rb)
	}
	// Control: the host reaches the neighbour's listener (the proxy's path).
	c, err := net.DialTimeout("tcp", net.JoinHostPort(bAddr, "8000"), 3*time.Second)
	if err != nil {
		t.Fatalf("control: the host cannot reach the neighbour's listener: %v", err)
	}
	c.Close()
	time.Sleep(200 * time.Millisecond)
	rootExec(t, e, b, ": > /tmp/hits", 10)
	a := e.Fresh(t, map[string]any{"internet": true})
	r := rootExec(t, e, a, pyScript(fmt.Sprintf(`import socket, threading
def try_port(port):
    try:
        socket.create_connection(("%[1]s", port), timeout=1.5).close(); print("tcp_%%d=ok" %% port, flush=True)
    except OSError as e:
        print("tcp_%%d=%%s" %% (port, type(e).__name__), flush=True)
ts = [threading.Thread(target=try_port, args=(p,)) for p in (8000, 22, 49983)]
[t.start() for t in ts]; [t.join() for t in ts]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5):
    u.sendto(b"x", ("%[1]s", 8001))
print("udp=sent")
try:
    socket.create_connection(("%[1]s", 8000), timeout=1.5, source_address=("0.0.0.0", 0)).close(); print("again=ok")
except OSError as e:
    print("again=" + type(e).__name__)`, bAddr)), 30)
	res := sysResults(r.Stdout)
	if _, ok := res["udp"]; !ok {
		t.Fatalf("the probe program did not run: %+v", r)
	}
	time.Sleep(300 * time.Millisecond)
	hits := rootExec(t, e, b, "cat /tmp/hits", 10).Stdout
	if strings.TrimSpace(hits) != "" {
		t.Errorf("the neighbour sandbox was reached: %q", hits)
	}
	for k, v := range res {
		if v == "ok" {
			t.Errorf("%s: connected to the neighbour", k)
		}
	}
	return fmt.Sprintf("neighbour %s: tcp %s, udp unseen", bAddr, res["tcp_8000"])
}

func probeSpoof(t *testing.T, e *env) string {
	// A forged source address: a sandbox posing as the host, another sandbox or an
	// outside address, toward the lab's "internet" (where no masquerading hides the
	// source). Raw sockets (also from a user namespace the sandbox makes, on gVisor),
	// IP_TRANSPARENT and IP_FREEBIND. The lab records every datagram's source.
	l := theLab(t, e)
	id := e.Fresh(t, map[string]any{"internet": true})
	tag := marker()
	spoofed := []string{l.hostSide.String(), "198.19.250.77", "203.0.113.9", "10.199.0.66"}
	src := fmt.Sprintf(`import socket, struct
dst = "%[1]s"; tag = b"%[2]s"
def csum(b):
    if len(b) %% 2: b += b"\0"
    s = sum(struct.unpack("!%%dH" %% (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
def packet(src):
    udp = struct.pack("!HHHH", 4444, 8081, 8 + len(tag), 0) + tag
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + udp
for src in [%[3]s]:
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        s.sendto(packet(src), (dst, 0)); print("raw_" + src + "=sent")
    except OSError as e:
        print("raw_" + src + "=" + errno.errorcode.get(e.errno, str(e.errno)))
    for opt, name in [(19, "transparent"), (15, "freebind")]:
        try:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.setsockopt(socket.SOL_IP, opt, 1)
            u.bind((src, 0)); u.sendto(tag, (dst, 8081)); print(name + "_" + src + "=sent")
        except OSError as e:
            print(name + "_" + src + "=" + errno.errorcode.get(e.errno, str(e.errno)))`,
		l.internet, tag, `"`+strings.Join(spoofed, `", "`)+`"`)
	// The same again from a user namespace the sandbox makes (gVisor lets unshare(2)
	// through; its root there must still have no raw access to the sandbox's network).
	userns := strings.ReplaceAll(pyScript(src), `print("raw_"`, `print("userns_raw_"`)
	userns = strings.ReplaceAll(userns, `print(name + "_"`, `print("userns_" + name + "_"`)
	r := rootExec(t, e, id, pyScript(src)+"\nunshare -r sh -c "+shQuote(userns)+" 2>&1 || echo userns=refused", 30)
	res := sysResults(r.Stdout)
	if _, ok := res["raw_"+spoofed[0]]; !ok {
		t.Fatalf("the probe program did not run: %+v", r)
	}
	time.Sleep(300 * time.Millisecond)
	for _, h := range l.hitsWith(tag) {
		host, _, _ := net.SplitHostPort(h.remote)
		t.Errorf("a datagram with a forged source reached the lab: source %s", host)
	}
	sent := 0
	for k, v := range res {
		if v == "sent" {
			sent++
			t.Logf("%s: the sandbox could send it (the network dropped it)", k)
		}
	}
	return fmt.Sprintf("raw %s, transparent %s, freebind %s, from a new user namespace raw %s; %d sent, none arrived",
		res["raw_"+spoofed[1]], res["transparent_"+spoofed[1]], res["freebind_"+spoofed[1]], orStr(res["userns_raw_"+spoofed[1]], res["userns"]), sent)
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func orStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
