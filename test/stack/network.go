package stack

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/netns"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime/runtimetest"
)

// fakeInternet is an HTTP server in a network namespace the test makes, at 198.18.n.2,
// routed from the host like an outside address. No packet leaves the machine.
type fakeInternet struct {
	addr netip.Addr
	url  string
}

func newFakeInternet(t *testing.T, n int, name string) *fakeInternet {
	t.Helper()
	ns, hostIf := "rti"+name, "rti"+name+"h"
	if len(hostIf) > 15 {
		t.Fatalf("fake internet interface name %q too long", hostIf)
	}
	addr := netip.AddrFrom4([4]byte{198, 18, byte(n), 2})
	gw := netip.AddrFrom4([4]byte{198, 18, byte(n), 1})
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	run("ip", "netns", "add", ns)
	var srv *http.Server
	t.Cleanup(func() {
		if srv != nil {
			srv.Close()
		}
		_ = exec.Command("ip", "netns", "del", ns).Run()
		_ = exec.Command("ip", "link", "del", hostIf).Run()
	})
	run("ip", "link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", ns)
	run("ip", "addr", "add", gw.String()+"/24", "dev", hostIf)
	run("ip", "link", "set", hostIf, "up")
	run("ip", "-n", ns, "addr", "add", addr.String()+"/24", "dev", "eth0")
	run("ip", "-n", ns, "link", "set", "eth0", "up")
	run("ip", "-n", ns, "link", "set", "lo", "up")
	run("ip", "-n", ns, "route", "add", "default", "via", gw.String())
	ln := listenInNetns(t, "/var/run/netns/"+ns, net.JoinHostPort(addr.String(), "8080"))
	srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "internet-ok") })}
	go srv.Serve(ln)
	return &fakeInternet{addr: addr, url: "http://" + net.JoinHostPort(addr.String(), "8080") + "/"}
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

func testNetworking(t *testing.T, e *env) {
	inet := newFakeInternet(t, e.inetN, e.netName)
	off := false
	on := e.create(t, domain.CreateSandbox{})
	cut := e.create(t, domain.CreateSandbox{Internet: &off})
	if !on.Internet || cut.Internet {
		t.Fatalf("internet flags: on=%v off=%v", on.Internet, cut.Internet)
	}
	r := e.exec(t, on.ID, domain.ExecRequest{Cmd: "curl -sS -m 5 " + inet.url})
	if r.ExitCode != 0 || string(r.Stdout) != "internet-ok" {
		t.Errorf("internet on: exit %d stdout %q stderr %q", r.ExitCode, r.Stdout, r.Stderr)
	}
	r = e.exec(t, cut.ID, domain.ExecRequest{Cmd: "curl -sS -m 3 " + inet.url})
	if r.ExitCode == 0 {
		t.Errorf("internet off reached the outside: %q", r.Stdout)
	}
	// The sandbox's root can use ports below 1024 and ping, as on a normal machine.
	if r := e.exec(t, on.ID, domain.ExecRequest{Cmd: "ping -c1 -W3 " + inet.addr.String() + " >/dev/null && echo pong", User: "user"}); strings.TrimSpace(string(r.Stdout)) != "pong" {
		t.Errorf("ping as user: exit %d stdout %q stderr %q", r.ExitCode, r.Stdout, r.Stderr)
	}
	e.kill(t, on)
	e.kill(t, cut)
}

// serveInSandbox starts a TCP server answering "sandbox-ok" on port inside the sandbox.
const serveInSandbox = `cat > /tmp/srv.py <<'PY'
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
while True:
    c, _ = s.accept(); c.recv(4096); c.sendall(b"HTTP/1.0 200 OK\r\n\r\nsandbox-ok"); c.close()
PY
nohup python3 /tmp/srv.py %d >/dev/null 2>&1 &
for i in $(seq 50); do curl -s -m 1 http://127.0.0.1:%d/ >/dev/null && exit 0; sleep 0.1; done; exit 1`

func testIsolation(t *testing.T, e *env) {
	hostLn, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	go http.Serve(hostLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "host-ok") }))
	hostPort := hostLn.Addr().(*net.TCPAddr).Port

	a := e.create(t, domain.CreateSandbox{})
	b := e.create(t, domain.CreateSandbox{})
	// Port 80 as root: a privileged port must work inside the sandbox.
	if r := e.exec(t, a.ID, domain.ExecRequest{Cmd: fmt.Sprintf(serveInSandbox, 80, 80), User: "root"}); r.ExitCode != 0 {
		t.Fatalf("starting a server on port 80 in the sandbox: exit %d stderr %q", r.ExitCode, r.Stderr)
	}
	gw := gateway(t, a.Address)
	cases := []struct{ name, from, url string }{
		{"sandbox to sandbox", b.ID, "http://" + a.Address + ":80/"},
		{"sandbox to its host side", a.ID, fmt.Sprintf("http://%s:%d/", gw, hostPort)},
		{"sandbox to another host address", a.ID, fmt.Sprintf("http://%s:%d/", gateway(t, b.Address), hostPort)},
		{"sandbox to link-local metadata", a.ID, "http://169.254.169.254/"},
	}
	for _, c := range cases {
		r := e.exec(t, c.from, domain.ExecRequest{Cmd: "curl -s -m 2 " + c.url})
		if r.ExitCode == 0 {
			t.Errorf("%s: %s answered %q; it must be unreachable", c.name, c.url, r.Stdout)
		}
	}
	// The host (the proxy's side) reaches the sandbox's ports.
	cl := &http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get("http://" + a.Address + ":80/")
	if err != nil {
		t.Errorf("host to sandbox: %v", err)
	} else {
		resp.Body.Close()
	}
	e.kill(t, a)
	e.kill(t, b)
}

// gateway is the host side of a sandbox's /30 link (its address minus one).
func gateway(t *testing.T, sbAddr string) string {
	t.Helper()
	a, err := netip.ParseAddr(sbAddr)
	if err != nil {
		t.Fatal(err)
	}
	return a.Prev().String()
}

// testRootIsolation: root in the sandbox must not be root on the host. A driver sharing
// the host kernel must map ids (user namespace); a user-space kernel keeps sandbox
// processes off the host's process table.
func testRootIsolation(t *testing.T, e *env) {
	sb := e.create(t, domain.CreateSandbox{})
	h := handle(t, sb)
	if e.caps.UserNamespace {
		m := strings.Fields(string(e.exec(t, sb.ID, domain.ExecRequest{Cmd: "cat /proc/self/uid_map", User: "root"}).Stdout))
		if len(m) != 3 || m[0] != "0" || m[1] == "0" {
			t.Errorf("uid_map inside %v: want root mapped to a non-zero host id", m)
		}
		if h.PID > 0 {
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.PID))
			if err != nil {
				t.Fatalf("sandbox init on the host: %v", err)
			}
			for _, line := range strings.Split(string(status), "\n") {
				if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] == "0" {
					t.Errorf("the sandbox's init runs as host root: %s", line)
				}
			}
		}
		for _, cmd := range []string{"test -s /proc/kcore", "unshare -U true", "mount -t tmpfs none /mnt"} {
			if r := e.exec(t, sb.ID, domain.ExecRequest{Cmd: cmd, User: "root"}); r.ExitCode == 0 {
				t.Errorf("root in the sandbox could %q", cmd)
			}
		}
	}
	if !e.caps.SharesHostKernel {
		marker := strconv.Itoa(900000 + os.Getpid()%99999)
		e.sh(t, sb.ID, "nohup sleep "+marker+" >/dev/null 2>&1 &")
		for _, l := range runtimetest.ProcessTraces("sleep\x00" + marker) {
			t.Errorf("sandbox process visible on the host: %s", l)
		}
	}
	if e.caps.SharesHostKernel && !e.caps.UserNamespace {
		t.Errorf("driver %s shares the host kernel without a user namespace: root in the sandbox is host root", e.caps.Name)
	}
	e.kill(t, sb)
}
