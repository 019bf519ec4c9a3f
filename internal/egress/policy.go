package egress

import (
	"net/netip"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
)

// deniesAll tells whether the policy's deny list covers every address ("only these",
// or internet access off: see domain.NetworkPolicy.WithInternet).
func deniesAll(p domain.NetworkPolicy) (string, bool) {
	_, deny := p.CIDRs()
	for _, c := range deny {
		if c.Bits() == 0 {
			return "deny_out " + c.String(), true
		}
	}
	return "", false
}

// decideName decides a DNS query for name. The resolver sees no address, so: a name an
// allow domain matches is answered; a name a deny domain matches is refused; any other
// name is refused when the policy denies every address ("only these": answering would
// let a sandbox carry data out in the names it asks about), and answered otherwise.
func decideName(p domain.NetworkPolicy, name string) (allow bool, rule string) {
	// With no address, only name entries can match.
	allow, rule = p.Decide(netip.Addr{}, name)
	if !allow || strings.HasPrefix(rule, "allow_out ") {
		return allow, rule
	}
	if r, ok := deniesAll(p); ok {
		return false, r
	}
	return true, ""
}

// allowedByCIDR tells whether one of the policy's allow CIDRs holds ip: the client
// asked for that address, and may have it whatever name it sent.
func allowedByCIDR(p domain.NetworkPolicy, ip netip.Addr) bool {
	allow, _ := p.CIDRs()
	for _, c := range allow {
		if c.Contains(ip) {
			return true
		}
	}
	return false
}
