package node

import (
	"context"
	"net/netip"

	"github.com/warren-sh/warren/internal/domain"
)

// Egress enforces the name rules of sandboxes' network policies (the host-side egress
// proxy and DNS resolver). The node enforces address rules itself, in nftables, and calls
// Egress wherever it applies a policy: when a sandbox's network is attached, when its
// policy is updated, and when a restarted server re-attaches it; Remove when the network
// goes. A nil Egress (Config.Egress unset) means name rules are not enforced beyond DNS.
type Egress interface {
	// Apply makes p the policy in force for the sandbox id at addr (replacing any
	// previous one). p is already the effective policy: with internet access off it
	// denies 0.0.0.0/0 (domain.NetworkPolicy.WithInternet).
	Apply(ctx context.Context, addr netip.Addr, id string, p domain.NetworkPolicy) error
	// Remove forgets the sandbox at addr. It succeeds when nothing was applied.
	Remove(ctx context.Context, addr netip.Addr)
}
