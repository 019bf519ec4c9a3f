package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/netns"

	"github.com/warren-sh/warren/test/internal/harness"
)

// fakeInternet is a test host in a network namespace of the test's own, routed from the
// host like an outside address would be. No packet leaves the machine.
type fakeInternet struct {
	ns, hostIf string
	addr       netip.Addr
	srv        *http.Server
}

func newFakeInternet(t *testing.T, n int) *fakeInternet {
	t.Helper()
	f := &fakeInternet{ns: fmt.Sprintf("wti%d", os.Getpid()%100000), hostIf: fmt.Sprintf("wti%dh", os.Getpid()%100000)}
	f.addr = netip.AddrFrom4([4]byte{198, 18, byte(n), 2})
	host := netip.AddrFrom4([4]byte{198, 18, byte(n), 1})
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	run("ip", "netns", "add", f.ns)
	t.Cleanup(func() {
		if f.srv != nil {
			f.srv.Close()
		}
		exec.Command("ip", "netns", "del", f.ns).Run()
		exec.Command("ip", "link", "del", f.hostIf).Run()
	})
	run("ip", "link", "add", f.hostIf, "type", "veth", "peer", "name", "eth0", "netns", f.ns)
	run("ip", "addr", "add", host.String()+"/24", "dev", f.hostIf)
	run("ip", "link", "set", f.hostIf, "up")
	run("ip", "-n", f.ns, "addr", "add", f.addr.String()+"/24", "dev", "eth0")
	run("ip", "-n", f.ns, "link", "set", "eth0", "up")
	run("ip", "-n", f.ns, "link", "set", "lo", "up")
	run("ip", "-n", f.ns, "route", "add", "default", "via", host.String())
	ln := listenInNetns(t, "/var/run/netns/"+f.ns, net.JoinHostPort(f.addr.String(), "8080"))
	f.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "internet-ok") })}
	go f.srv.Serve(ln)
	return f
}

// listenInNetns opens a listening socket inside the network namespace at nsPath.
func listenInNetns(t *testing.T, nsPath, addr string) net.Listener {
	t.Helper()
	ln, err := netns.Listen(nsPath, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// slotAddr is the sandbox address of the n-th sandbox of a fresh server (slot n).
func slotAddr(cidr string, slot int, host bool) string {
	p := netip.MustParsePrefix(cidr)
	b := p.Addr().As4()
	off := byte(slot*4 + 2)
	if host {
		off--
	}
	b[3] += off
	return netip.AddrFrom4(b).String()
}

const tcpServer = `cat > /tmp/srv.py <<'PY'
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8000)); s.listen()
while True:
    c, _ = s.accept(); c.recv(4096); c.sendall(b"HTTP/1.0 200 OK\r\n\r\nsandbox-ok"); c.close()
PY
nohup python3 /tmp/srv.py >/dev/null 2>&1 &
for i in $(seq 50); do curl -s -m 1 http://127.0.0.1:8000/ >/dev/null && exit 0; sleep 0.1; done; exit 1`

func TestNetworkIsolation(t *testing.T) {
	s := startServer(t, serverOpts{})
	inet := newFakeInternet(t, 100+int(harness.ServerSeq.Load()))
	hostLn, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	go http.Serve(hostLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "host-ok") }))
	hostPort := hostLn.Addr().(*net.TCPAddr).Port

	a := s.Create(map[string]any{}) // slot 0, internet on by default
	b := s.Create(map[string]any{"internet": false})
	if !a.Internet || b.Internet {
		t.Fatalf("internet flags: a=%v b=%v", a.Internet, b.Internet)
	}
	aAddr, aGW := slotAddr(s.CIDR, 0, false), slotAddr(s.CIDR, 0, true)
	if r := s.Exec(a.ID, tcpServer); r.ExitCode != 0 {
		t.Fatalf("starting server in sandbox: %+v", r)
	}
	inetURL := "http://" + net.JoinHostPort(inet.addr.String(), "8080") + "/"

	cases := []struct {
		name, sandbox, cmd string
		ok                 bool
		want               string
	}{
		{"internet on reaches the outside", a.ID, "curl -s -m 3 " + inetURL, true, "internet-ok"},
		{"internet off is cut off", b.ID, "curl -s -m 3 " + inetURL, false, ""},
		{"sandbox cannot reach another sandbox", b.ID, "curl -s -m 3 http://" + aAddr + ":8000/", false, ""},
		{"sandbox cannot reach the host", a.ID, fmt.Sprintf("curl -s -m 3 http://%s:%d/", aGW, hostPort), false, ""},
		{"sandbox cannot reach the host's other addresses", a.ID, fmt.Sprintf("curl -s -m 3 http://%s:%d/", slotAddr(s.CIDR, 1, true), hostPort), false, ""},
		{"sandbox cannot reach link-local metadata", a.ID, "curl -s -m 2 http://169.254.169.254/", false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.Exec(c.sandbox, c.cmd)
			if (r.ExitCode == 0) != c.ok || !strings.Contains(r.Stdout, c.want) {
				t.Errorf("%s: exit %d stdout %q stderr %q", c.cmd, r.ExitCode, r.Stdout, r.Stderr)
			}
		})
	}
	// The host (where the proxy runs) can reach a sandbox's ports.
	cl := &http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get("http://" + aAddr + ":8000/")
	if err != nil {
		t.Fatalf("host to sandbox: %v", err)
	}
	resp.Body.Close()
	// Switching internet off at create is per sandbox: a's access is untouched by b.
	s.Kill(a.ID)
	s.Kill(b.ID)
}
