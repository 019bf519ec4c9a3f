package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/netns"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/testenv"
)

// TestCountersSysfs reads the counters from a fake /sys/class/net: the sandbox's rx is
// the host interface's tx and the other way round.
func TestCountersSysfs(t *testing.T) {
	m, _ := New(Config{Name: "wtunit"})
	root := t.TempDir()
	old := sysClassNet
	sysClassNet = root
	t.Cleanup(func() { sysClassNet = old })
	write := func(id, tx, rx string) {
		dir := filepath.Join(root, m.hostIf(id), "statistics")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, v := range map[string]string{"tx_bytes": tx, "rx_bytes": rx} {
			if v == "" {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("aaaaaaaaaaaaaaaaaaa1", "123456789012\n", "45\n")
	write("aaaaaaaaaaaaaaaaaaa2", "12x\n", "45\n")
	write("aaaaaaaaaaaaaaaaaaa3", "1\n", "")
	cases := []struct {
		id       string
		rx, tx   int64
		wantKind domain.Kind // KindInternal with wantErr: an unclassified error
		wantErr  bool
	}{
		{id: "aaaaaaaaaaaaaaaaaaa1", rx: 123456789012, tx: 45},
		{id: "aaaaaaaaaaaaaaaaaaa2", wantErr: true, wantKind: domain.KindInternal},
		{id: "aaaaaaaaaaaaaaaaaaa3", wantErr: true, wantKind: domain.KindNotFound},
		{id: "aaaaaaaaaaaaaaaaaaa4", wantErr: true, wantKind: domain.KindNotFound},
	}
	for _, c := range cases {
		rx, tx, err := m.Counters(c.id)
		if c.wantErr {
			if err == nil || domain.KindOf(err) != c.wantKind {
				t.Errorf("%s: err %v (kind %v), want kind %v", c.id, err, domain.KindOf(err), c.wantKind)
			}
			continue
		}
		if err != nil || rx != c.rx || tx != c.tx {
			t.Errorf("%s: rx %d tx %d err %v, want rx %d tx %d", c.id, rx, tx, err, c.rx, c.tx)
		}
	}
}

// TestCountersReal attaches a real namespace and veth, sends datagrams each way and
// checks that each direction lands on the right counter; after Detach the counters are
// KindNotFound.
func TestCountersReal(t *testing.T) {
	testenv.NeedsRoot(t, "network namespaces")
	testenv.NeedsTool(t, "ip")
	ctx := context.Background()
	pid := os.Getpid()
	m, err := New(Config{Name: fmt.Sprintf("wc%d", pid%10000000),
		Pool: netip.MustParsePrefix(fmt.Sprintf("10.222.%d.0/24", pid%256))})
	if err != nil {
		t.Fatal(err)
	}
	id := "cccccccccccccccccccc"
	// No Init: without the node's nftables table nothing filters the link, and Detach
	// tolerates the missing table.
	a, err := m.Attach(ctx, id, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	detached := false
	t.Cleanup(func() {
		if !detached {
			_ = m.Detach(ctx, id, 2)
		}
	})

	const n, size = 20, 1400
	payload := make([]byte, size)
	measure := func(send func() error) (drx, dtx int64) {
		t.Helper()
		rx0, tx0, err := m.Counters(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := send(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // let replies (ARP, ICMP) settle
		rx1, tx1, err := m.Counters(id)
		if err != nil {
			t.Fatal(err)
		}
		return rx1 - rx0, tx1 - tx0
	}
	// burst sends from an unconnected socket: a connected one would fail its next
	// write with ECONNREFUSED once an ICMP port-unreachable came back.
	burst := func(to netip.Addr) error {
		c, err := net.ListenPacket("udp4", ":0")
		if err != nil {
			return err
		}
		defer c.Close()
		dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, 9))
		for i := 0; i < n; i++ {
			if _, err := c.WriteTo(payload, dst); err != nil {
				return err
			}
		}
		return nil
	}
	// Into the sandbox: the host sends to the sandbox's address (nothing listens there;
	// its kernel answers with a few small ICMP errors).
	drx, dtx := measure(func() error { return burst(a.Address) })
	t.Logf("host to sandbox: rx +%d, tx +%d", drx, dtx)
	if drx < n*size || dtx >= drx/2 {
		t.Errorf("host to sandbox, %d x %d bytes: rx +%d, tx +%d; want rx >= %d and tx well below it", n, size, drx, dtx, n*size)
	}
	// Out of the sandbox: a socket made inside its namespace sends to the gateway.
	drx, dtx = measure(func() error {
		return netns.Do(a.NetNSPath, func() error { return burst(a.Gateway) })
	})
	t.Logf("sandbox to host: rx +%d, tx +%d", drx, dtx)
	if dtx < n*size || drx >= dtx/2 {
		t.Errorf("sandbox to host, %d x %d bytes: tx +%d, rx +%d; want tx >= %d and rx well below it", n, size, dtx, drx, n*size)
	}

	if err := m.Detach(ctx, id, 2); err != nil {
		t.Fatal(err)
	}
	detached = true
	if _, _, err := m.Counters(id); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("counters after Detach: err %v, want KindNotFound", err)
	}
}
