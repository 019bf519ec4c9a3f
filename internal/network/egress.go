package network

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// Egress policies (a sandbox's allow_out/deny_out address entries) live in per-sandbox
// nftables objects named after the sandbox's slot: the sets pa<slot> (allow) and
// pd<slot> (deny), the chain p<slot> that accepts the first and drops the second, and
// the element "<address> : jump p<slot>" of the node's egress map, which the forward
// chain consults after the node's deny list and before internet access (see ruleset).
// Allow beats deny because the accept comes first; what neither set holds falls back to
// the sandbox's internet access. A table replaced by Init has none of them: a restarted
// server re-applies each sandbox's policy.

// Address is the sandbox address of slot.
func (m *Manager) Address(slot int) (netip.Addr, error) {
	_, sbx, err := m.addrs(slot)
	return sbx, err
}

func policyNames(slot int) (chain, allow, deny string) {
	return fmt.Sprintf("p%d", slot), fmt.Sprintf("pa%d", slot), fmt.Sprintf("pd%d", slot)
}

// policyScript is the nft transaction that installs or replaces slot's policy.
func (m *Manager) policyScript(slot int, sbx netip.Addr, allow, deny []netip.Prefix) string {
	t := m.table()
	chain, as, ds := policyNames(slot)
	var b strings.Builder
	for _, set := range []struct {
		name  string
		elems []netip.Prefix
	}{{as, allow}, {ds, deny}} {
		fmt.Fprintf(&b, "add set inet %s %s { type ipv4_addr; flags interval; auto-merge; }\n", t, set.name)
		fmt.Fprintf(&b, "flush set inet %s %s\n", t, set.name)
		if len(set.elems) > 0 {
			es := make([]string, len(set.elems))
			for i, p := range set.elems {
				es[i] = p.Masked().String()
			}
			fmt.Fprintf(&b, "add element inet %s %s { %s }\n", t, set.name, strings.Join(es, ", "))
		}
	}
	fmt.Fprintf(&b, "add chain inet %s %s\nflush chain inet %[1]s %[2]s\n", t, chain)
	fmt.Fprintf(&b, "add rule inet %s %s ip daddr @%s accept\n", t, chain, as)
	fmt.Fprintf(&b, "add rule inet %s %s ip daddr @%s drop\n", t, chain, ds)
	fmt.Fprintf(&b, "add element inet %s egress { %s : jump %s }\n", t, sbx, chain)
	return b.String()
}

// SetPolicy installs or replaces the address rules of the sandbox in slot, in one nft
// transaction (new connections meet the new rules at once; established ones continue):
// destinations in allow are forwarded even without internet access, those in deny
// (and not in allow) are dropped. The node's deny list stays denied regardless. With
// both lists empty the sandbox's rules are removed (ClearPolicy).
func (m *Manager) SetPolicy(ctx context.Context, slot int, allow, deny []netip.Prefix) error {
	if len(allow) == 0 && len(deny) == 0 {
		return m.ClearPolicy(ctx, slot)
	}
	_, sbx, err := m.addrs(slot)
	if err != nil {
		return err
	}
	for _, p := range append(append([]netip.Prefix(nil), allow...), deny...) {
		if !p.IsValid() || !p.Addr().Is4() {
			return fmt.Errorf("egress policy entry %s: need an IPv4 prefix", p)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := run(ctx, m.policyScript(slot, sbx, allow, deny), "nft", "-f", "-"); err != nil {
		return fmt.Errorf("installing the egress policy of %s: %w", sbx, err)
	}
	m.policies[slot] = true
	return nil
}

// ClearPolicy removes the address rules of the sandbox in slot. It succeeds when there
// are none (or no table). Only policies this Manager installed since its last Init are
// removed: Init replaces the table, and with it every policy.
func (m *Manager) ClearPolicy(ctx context.Context, slot int) error {
	_, sbx, err := m.addrs(slot)
	if err != nil {
		return err
	}
	t := m.table()
	chain, as, ds := policyNames(slot)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.policies[slot] {
		return nil
	}
	delete(m.policies, slot)
	if run(ctx, "", "nft", "list", "chain", "inet", t, chain) != nil {
		return nil // the table was removed or replaced behind our back
	}
	script := fmt.Sprintf("delete element inet %[1]s egress { %[2]s }\nflush chain inet %[1]s %[3]s\ndelete chain inet %[1]s %[3]s\ndelete set inet %[1]s %[4]s\ndelete set inet %[1]s %[5]s\n",
		t, sbx, chain, as, ds)
	if err := run(ctx, script, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("removing the egress policy of %s: %w", sbx, err)
	}
	return nil
}
