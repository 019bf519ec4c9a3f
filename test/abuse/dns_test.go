package abuse

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func init() {
	register(probe{name: "network/reverse-dns-private", run: probeReverseDNS})
}

// reverseQuery asks the sandbox's name server (from /etc/resolv.conf) for the PTR
// records of each name given and prints, per name, the answer's rcode, its AA bit and
// whether it carries the SOA Warren's resolver serves its local zones with.
const reverseQuery = `python3 -c '
import random, socket, struct, sys
ns = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")][0]
for name in sys.argv[1:]:
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for l in name.split("."):
        q += bytes([len(l)]) + l.encode()
    q += b"\x00" + struct.pack(">HH", 12, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
    try:
        s.sendto(q, (ns, 53))
        r = s.recv(4096)
        print(name, "rcode=%d aa=%d local=%d" % (r[3] & 15, (r[2] >> 2) & 1, b"\x06nobody\x07invalid" in r))
    except socket.timeout:
        print(name, "timeout")
' `

// probeReverseDNS: a sandbox asking for the names of private addresses (the host's own,
// its gateway, the other private ranges) gets NXDOMAIN from Warren's resolver itself,
// never an answer from the host's DNS servers, which may know the host's private
// networks by name (and which on this machine would not answer at all).
func probeReverseDNS(t *testing.T, e *env) string {
	names := []string{"1.0.16.172.in-addr.arpa", "1.1.168.192.in-addr.arpa", "1.0.0.10.in-addr.arpa",
		"1.0.0.127.in-addr.arpa", "254.169.254.169.in-addr.arpa", "1.0.64.100.in-addr.arpa"}
	for _, a := range hostAddrs(t) {
		if a.IsPrivate() || a.IsLinkLocalUnicast() || netip.MustParsePrefix("100.64.0.0/10").Contains(a) {
			names = append(names, reverseName(a))
		}
	}
	r := e.Exec(reverseQuery + strings.Join(names, " "))
	if r.ExitCode != 0 {
		t.Fatalf("the query script failed: %d %s %s", r.ExitCode, r.Stdout, r.Stderr)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if f := strings.SplitN(line, " ", 2); len(f) == 2 {
			got[f[0]] = f[1]
		}
	}
	for _, n := range names {
		if got[n] != "rcode=3 aa=1 local=1" {
			t.Errorf("PTR %s: %q, want Warren's own authoritative NXDOMAIN (rcode=3 aa=1 local=1)", n, got[n])
		}
	}
	return fmt.Sprintf("%d private reverse names answered NXDOMAIN by Warren's resolver", len(names))
}

// reverseName is the in-addr.arpa name of IPv4 address a.
func reverseName(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa", b[3], b[2], b[1], b[0])
}
