package domain

import (
	"fmt"
	"net/netip"
	"strings"
)

// NetworkPolicy says where a sandbox may connect (E2B's network.allowOut/denyOut). Each
// entry is an IPv4 CIDR prefix ("198.18.0.0/24"), an IPv4 address (the same as its /32),
// a domain name ("example.com": exactly that name) or a wildcard ("*.example.com": any
// name below it, not example.com itself).
//
// The rule is E2B's: allow beats deny. A connection is allowed when its address is in an
// allow prefix or its name matches an allow domain; otherwise it is denied when its
// address is in a deny prefix or its name matches a deny domain; otherwise it follows the
// sandbox's internet access. DenyOut ["0.0.0.0/0"] plus an allow list means "only these".
// The node's own deny list (private ranges, --deny-cidr) is denied whatever a policy says.
//
// A policy held by a Sandbox is always normalised (see NewNetworkPolicy): entries are
// valid, lower-case, without trailing dots, masked and free of duplicates.
type NetworkPolicy struct {
	AllowOut []string `json:"allow_out,omitempty"`
	DenyOut  []string `json:"deny_out,omitempty"`
}

// Bounds of a network policy.
const (
	// MaxNetworkEntries caps each of a policy's lists.
	MaxNetworkEntries = 200
	// maxDomainLen is DNS's limit on a name (RFC 1035), the wildcard's "*." included.
	maxDomainLen = 253
)

// AllTraffic is the prefix that covers every IPv4 destination (E2B's ALL_TRAFFIC).
const AllTraffic = "0.0.0.0/0"

// NewNetworkPolicy validates and normalises allow and deny lists, named allow_out and
// deny_out in errors (the /v1 field names).
func NewNetworkPolicy(allow, deny []string) (NetworkPolicy, error) {
	a, err := ParseNetworkEntries("network.allow_out", allow)
	if err != nil {
		return NetworkPolicy{}, err
	}
	d, err := ParseNetworkEntries("network.deny_out", deny)
	if err != nil {
		return NetworkPolicy{}, err
	}
	return NetworkPolicy{AllowOut: a, DenyOut: d}, nil
}

// ParseNetworkEntries validates and normalises one list of a policy; field names it in
// errors (a KindInvalid error saying which entry is wrong and what is accepted).
func ParseNetworkEntries(field string, entries []string) ([]string, error) {
	if len(entries) > MaxNetworkEntries {
		return nil, Invalid(field, "%s has %d entries; at most %d are allowed (use wider CIDR prefixes or wildcards)", field, len(entries), MaxNetworkEntries)
	}
	var out []string
	seen := map[string]bool{}
	for i, e := range entries {
		n, err := normalizeEntry(e)
		if err != nil {
			return nil, Invalid(field, "%s[%d] %q: %v; use an IPv4 address (203.0.113.7), an IPv4 CIDR prefix (203.0.113.0/24), a domain name (example.com) or a wildcard (*.example.com)", field, i, clip(e, 80), err)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// clip bounds user input quoted back in an error.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// normalizeEntry returns the canonical form of one entry: a masked prefix, an address,
// or a lower-case name without a trailing dot.
func normalizeEntry(e string) (string, error) {
	s := strings.TrimSpace(e)
	if s == "" {
		return "", fmt.Errorf("empty entry")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", fmt.Errorf("not a valid CIDR prefix")
		}
		if !p.Addr().Is4() || p.Addr().Is4In6() {
			return "", fmt.Errorf("IPv6 is not supported (sandboxes have no IPv6 egress)")
		}
		return p.Masked().String(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if !a.Is4() {
			return "", fmt.Errorf("IPv6 is not supported (sandboxes have no IPv6 egress)")
		}
		return a.String(), nil
	}
	if strings.Contains(s, ":") {
		return "", fmt.Errorf("not a valid address, prefix or name (ports and IPv6 are not supported)")
	}
	return normalizeDomain(s)
}

// normalizeDomain checks a domain name or "*." wildcard and returns it lower-case
// without a trailing dot.
func normalizeDomain(s string) (string, error) {
	name := strings.TrimSuffix(strings.ToLower(s), ".")
	if len(name) > maxDomainLen {
		return "", fmt.Errorf("name longer than %d characters", maxDomainLen)
	}
	rest, wild := strings.CutPrefix(name, "*.")
	if strings.Contains(rest, "*") {
		return "", fmt.Errorf("a wildcard must be the whole first label (*.example.com)")
	}
	labels := strings.Split(rest, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("a domain name needs at least two labels (example.com)")
	}
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return "", err
		}
	}
	if allDigits(labels[len(labels)-1]) {
		return "", fmt.Errorf("not a valid IPv4 address, and a domain name cannot end in a numeric label")
	}
	if wild {
		return "*." + rest, nil
	}
	return rest, nil
}

func checkLabel(l string) error {
	if l == "" {
		return fmt.Errorf("empty label in domain name")
	}
	if len(l) > 63 {
		return fmt.Errorf("domain label longer than 63 characters")
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("a domain label cannot start or end with '-'")
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("character %q is not allowed in a domain name", c)
		}
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// IsZero reports whether the policy has no entries (the sandbox's internet access alone
// decides).
func (p NetworkPolicy) IsZero() bool { return len(p.AllowOut) == 0 && len(p.DenyOut) == 0 }

// WithInternet is the policy in force for a sandbox whose internet access is on: when it
// is off, everything not allowed is denied (E2B: allowInternetAccess false is denyOut
// ALL_TRAFFIC), so the allow entries still pass.
func (p NetworkPolicy) WithInternet(on bool) NetworkPolicy {
	if on {
		return p
	}
	deny := append([]string{AllTraffic}, p.DenyOut...)
	return NetworkPolicy{AllowOut: p.AllowOut, DenyOut: deny}
}

// CIDRs returns the address entries of both lists as prefixes (an address as its /32).
// Entries that do not parse (never in a normalised policy) are left out.
func (p NetworkPolicy) CIDRs() (allow, deny []netip.Prefix) {
	return prefixes(p.AllowOut), prefixes(p.DenyOut)
}

func prefixes(entries []string) []netip.Prefix {
	var out []netip.Prefix
	for _, e := range entries {
		if p, ok := entryPrefix(e); ok {
			out = append(out, p)
		}
	}
	return out
}

// entryPrefix parses an address entry.
func entryPrefix(e string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(e); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(e); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// Domains returns the name entries (names and wildcards) of both lists.
func (p NetworkPolicy) Domains() (allow, deny []string) {
	return names(p.AllowOut), names(p.DenyOut)
}

func names(entries []string) []string {
	var out []string
	for _, e := range entries {
		if _, ok := entryPrefix(e); !ok {
			out = append(out, e)
		}
	}
	return out
}

// HasDomains reports whether the policy has any name entry (which only a proxy that
// sees names can enforce).
func (p NetworkPolicy) HasDomains() bool {
	a, d := p.Domains()
	return len(a)+len(d) > 0
}

// Decide applies the policy to a connection to ip, made for name ("" when unknown):
// allow beats deny, and what neither list matches is allowed. rule is the entry that
// decided, as "allow_out <entry>" or "deny_out <entry>", or "" when none did. The node's
// deny list and the sandbox's internet access are not part of it (see WithInternet).
func (p NetworkPolicy) Decide(ip netip.Addr, name string) (allow bool, rule string) {
	ip = ip.Unmap()
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if e, ok := match(p.AllowOut, ip, name); ok {
		return true, "allow_out " + e
	}
	if e, ok := match(p.DenyOut, ip, name); ok {
		return false, "deny_out " + e
	}
	return true, ""
}

// match returns the first entry that ip or name matches.
func match(entries []string, ip netip.Addr, name string) (string, bool) {
	for _, e := range entries {
		if pr, ok := entryPrefix(e); ok {
			if ip.IsValid() && pr.Contains(ip) {
				return e, true
			}
			continue
		}
		if name != "" && MatchDomain(e, name) {
			return e, true
		}
	}
	return "", false
}

// MatchDomain reports whether name (lower-case, no trailing dot) matches a domain entry:
// "example.com" only itself, "*.example.com" any name below example.com but not
// example.com itself.
func MatchDomain(entry, name string) bool {
	if suffix, ok := strings.CutPrefix(entry, "*"); ok {
		return len(name) > len(suffix) && strings.HasSuffix(name, suffix)
	}
	return name == entry
}
