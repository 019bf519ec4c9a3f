package node

import (
	"context"
	"fmt"
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

// applyPolicy makes p (for a sandbox whose internet access is internet) the policy in
// force for the sandbox in slot: its address entries in nftables, all of it in Egress.
// The zero policy removes both.
func applyPolicy(ctx context.Context, cfg *Config, id string, slot int, internet bool, p domain.NetworkPolicy) error {
	eff := p.WithInternet(internet)
	var allow, deny []netip.Prefix
	if !p.IsZero() {
		allow, deny = eff.CIDRs()
	}
	if err := cfg.Network.SetPolicy(ctx, slot, allow, deny); err != nil {
		return err
	}
	if cfg.Egress == nil {
		return nil
	}
	addr, err := cfg.Network.Address(slot)
	if err != nil {
		return err
	}
	if p.IsZero() {
		cfg.Egress.Remove(ctx, addr)
		return nil
	}
	if err := cfg.Egress.Apply(ctx, addr, id, eff); err != nil {
		return fmt.Errorf("applying the egress policy of sandbox %s: %w", id, err)
	}
	return nil
}

// detachNetwork removes a sandbox's network and its egress policy (slot -1: by name;
// the policy then went with a replaced table).
func detachNetwork(ctx context.Context, cfg *Config, id string, slot int) error {
	if cfg.Egress != nil && slot >= 0 {
		if addr, err := cfg.Network.Address(slot); err == nil {
			cfg.Egress.Remove(ctx, addr)
		}
	}
	return cfg.Network.Detach(ctx, id, slot)
}
