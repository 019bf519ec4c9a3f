package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/netns"
)

// TestAttachReachableAtOnce: the first packets over a sandbox's veth pair, sent as
// soon as Attach returns, get through. A veth end drops what it is given until the kernel's link watcher has
// activated it; a first ARP request lost that way is retried only a second later, so
// the first connection of a sandbox (or of a test) would time out now and then.
func TestAttachReachableAtOnce(t *testing.T) {
	ctx := context.Background()
	m := realManager(t, fmt.Sprintf("wtup%d", os.Getpid()%100000), fmt.Sprintf("10.224.%d.0/24", os.Getpid()%256))
	for i := range 20 {
		id := fmt.Sprintf("reachableatonce%05d", i)
		slot := i%8 + 1
		a, err := m.Attach(ctx, id, slot, false)
		if err != nil {
			t.Fatal(err)
		}
		err = dialGateway(a)
		if derr := m.Detach(ctx, id, slot); derr != nil {
			t.Fatal(derr)
		}
		if err != nil {
			t.Fatalf("round %d: the first connection into the sandbox at %s failed: %v", i, a.Address, err)
		}
	}
}

// dialGateway listens on a's sandbox side (in its namespace) and connects to it from
// the host: the first packets cross both ends of the pair, an ARP exchange included.
// (The node's rules drop connections from a sandbox to the host itself.)
func dialGateway(a *Attachment) error {
	var ln net.Listener
	if err := netns.Do(a.NetNSPath, func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(a.Address, 0).String())
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.DialTimeout("tcp4", ln.Addr().String(), 700*time.Millisecond)
	if err == nil {
		c.Close()
	}
	return err
}
