package egress

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// guard refuses the destinations no sandbox may reach through the proxy, whatever its
// policy says: the node's deny list, the sandbox pool, and the host itself (the proxy
// dials from the host, where the input chain that keeps sandboxes off the host's own
// services does not apply), plus loopback, link-local, multicast and unspecified
// addresses and anything that is not IPv4 (sandboxes have no IPv6 egress).
type guard struct {
	deny []netip.Prefix
	pool netip.Prefix

	mu      sync.Mutex
	local   map[netip.Addr]bool
	fetched time.Time
}

// localTTL is how long the host's own addresses are cached.
const localTTL = 5 * time.Second

// refuses returns why a is refused ("" when it is not).
func (g *guard) refuses(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case !a.Is4():
		return "not an IPv4 address"
	case a.IsLoopback(), a.IsUnspecified(), a.IsMulticast(), a.IsLinkLocalUnicast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "a loopback, link-local, multicast or unspecified address"
	case g.pool.Contains(a):
		return "the sandbox network"
	}
	for _, p := range g.deny {
		if p.Contains(a) {
			return "in the node's deny list (" + p.String() + ")"
		}
	}
	if g.isLocal(a) {
		return "an address of the host"
	}
	return ""
}

func (g *guard) isLocal(a netip.Addr) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.local == nil || time.Since(g.fetched) > localTTL {
		addrs, err := net.InterfaceAddrs()
		if err == nil {
			g.local = map[netip.Addr]bool{}
			for _, ad := range addrs {
				if n, ok := ad.(*net.IPNet); ok {
					if ip, ok := netip.AddrFromSlice(n.IP); ok {
						g.local[ip.Unmap()] = true
					}
				}
			}
			g.fetched = time.Now()
		}
	}
	return g.local[a]
}
