package domain

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseNetworkEntries(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr string // substring of the error; "" = no error
	}{
		{name: "nil", in: nil, want: nil},
		{name: "cidr", in: []string{"198.18.0.0/24"}, want: []string{"198.18.0.0/24"}},
		{name: "cidr is masked", in: []string{"198.18.0.77/24"}, want: []string{"198.18.0.0/24"}},
		{name: "all traffic", in: []string{"0.0.0.0/0"}, want: []string{"0.0.0.0/0"}},
		{name: "address", in: []string{" 198.18.0.7 "}, want: []string{"198.18.0.7"}},
		{name: "domain lower-cased, trailing dot dropped", in: []string{"API.Example.COM."}, want: []string{"api.example.com"}},
		{name: "wildcard", in: []string{"*.Example.com"}, want: []string{"*.example.com"}},
		{name: "underscore and digits", in: []string{"_srv.a1-b2.example.io"}, want: []string{"_srv.a1-b2.example.io"}},
		{name: "duplicates dropped, order kept", in: []string{"b.com", "a.com", "B.com", "10.0.0.1"}, want: []string{"b.com", "a.com", "10.0.0.1"}},
		{name: "empty entry", in: []string{""}, wantErr: `f[0] "": empty entry`},
		{name: "blank entry", in: []string{"a.com", "  "}, wantErr: "f[1]"},
		{name: "ipv6 prefix", in: []string{"2001:db8::/32"}, wantErr: "IPv6 is not supported"},
		{name: "ipv6 address", in: []string{"::1"}, wantErr: "IPv6 is not supported"},
		{name: "mapped ipv6 prefix", in: []string{"::ffff:1.2.3.4/128"}, wantErr: "IPv6 is not supported"},
		{name: "bad prefix", in: []string{"10.0.0.0/33"}, wantErr: "not a valid CIDR prefix"},
		{name: "bad address", in: []string{"10.0.0.256"}, wantErr: "numeric label"},
		{name: "short address", in: []string{"10.0.0"}, wantErr: "numeric label"},
		{name: "host with port", in: []string{"example.com:443"}, wantErr: "ports and IPv6 are not supported"},
		{name: "url", in: []string{"https://example.com/"}, wantErr: "not a valid CIDR prefix"},
		{name: "single label", in: []string{"localhost"}, wantErr: "at least two labels"},
		{name: "bare star", in: []string{"*"}, wantErr: "wildcard must be the whole first label"},
		{name: "star in the middle", in: []string{"a.*.example.com"}, wantErr: "wildcard must be the whole first label"},
		{name: "star without dot", in: []string{"*example.com"}, wantErr: "wildcard must be the whole first label"},
		{name: "wildcard of a tld only", in: []string{"*.com"}, wantErr: "at least two labels"},
		{name: "empty label", in: []string{"a..com"}, wantErr: "empty label"},
		{name: "hyphen edge", in: []string{"-a.com"}, wantErr: "cannot start or end with '-'"},
		{name: "bad character", in: []string{"exa mple.com"}, wantErr: "character ' ' is not allowed"},
		{name: "long label", in: []string{strings.Repeat("a", 64) + ".com"}, wantErr: "longer than 63"},
		{name: "long name", in: []string{strings.Repeat("abcdefghi.", 26) + "com"}, wantErr: "longer than 253"},
		{name: "too many", in: make([]string, MaxNetworkEntries+1), wantErr: "at most 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNetworkEntries("f", tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				var de *Error
				if !errors.As(err, &de) || de.Kind != KindInvalid || de.Field != "f" {
					t.Fatalf("err = %#v, want a KindInvalid error on field f", err)
				}
				if !strings.Contains(err.Error(), "*.example.com") && !strings.Contains(err.Error(), "at most") {
					t.Errorf("err = %v: does not say what is accepted", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewNetworkPolicyNamesTheList(t *testing.T) {
	_, err := NewNetworkPolicy([]string{"a.com"}, []string{"a.com", "nope"})
	if err == nil || !strings.Contains(err.Error(), "network.deny_out[1]") {
		t.Fatalf("err = %v, want it to name network.deny_out[1]", err)
	}
	p, err := NewNetworkPolicy([]string{"198.18.0.1", "*.A.com"}, []string{"0.0.0.0/0"})
	if err != nil {
		t.Fatal(err)
	}
	want := NetworkPolicy{AllowOut: []string{"198.18.0.1", "*.a.com"}, DenyOut: []string{"0.0.0.0/0"}}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got %+v, want %+v", p, want)
	}
}

func TestNetworkPolicyParts(t *testing.T) {
	p := NetworkPolicy{AllowOut: []string{"198.18.0.1", "a.com", "198.19.0.0/16"}, DenyOut: []string{"*.b.com", "0.0.0.0/0"}}
	allow, deny := p.CIDRs()
	wantA := []netip.Prefix{netip.MustParsePrefix("198.18.0.1/32"), netip.MustParsePrefix("198.19.0.0/16")}
	wantD := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
	if !reflect.DeepEqual(allow, wantA) || !reflect.DeepEqual(deny, wantD) {
		t.Fatalf("CIDRs = %v, %v; want %v, %v", allow, deny, wantA, wantD)
	}
	an, dn := p.Domains()
	if !reflect.DeepEqual(an, []string{"a.com"}) || !reflect.DeepEqual(dn, []string{"*.b.com"}) {
		t.Fatalf("Domains = %q, %q", an, dn)
	}
	if !p.HasDomains() {
		t.Fatal("HasDomains = false")
	}
	if (NetworkPolicy{DenyOut: []string{"1.2.3.4"}}).HasDomains() {
		t.Fatal("HasDomains = true for an address-only policy")
	}
	if !(NetworkPolicy{}).IsZero() || p.IsZero() {
		t.Fatal("IsZero wrong")
	}
}

func TestNetworkPolicyDecide(t *testing.T) {
	onlyThese := NetworkPolicy{AllowOut: []string{"198.18.0.7", "198.19.1.0/24", "api.example.com", "*.pkg.dev"}, DenyOut: []string{"0.0.0.0/0"}}
	denySome := NetworkPolicy{DenyOut: []string{"198.18.0.0/16", "evil.com", "*.evil.org"}}
	overlap := NetworkPolicy{AllowOut: []string{"198.18.0.7", "good.evil.org"}, DenyOut: []string{"198.18.0.0/24", "*.evil.org"}}
	ip := netip.MustParseAddr
	tests := []struct {
		name     string
		p        NetworkPolicy
		ip       netip.Addr
		host     string
		allow    bool
		wantRule string
	}{
		{"empty policy allows", NetworkPolicy{}, ip("203.0.113.1"), "x.com", true, ""},
		{"only these: listed address", onlyThese, ip("198.18.0.7"), "", true, "allow_out 198.18.0.7"},
		{"only these: listed prefix", onlyThese, ip("198.19.1.200"), "", true, "allow_out 198.19.1.0/24"},
		{"only these: other address", onlyThese, ip("198.18.0.8"), "", false, "deny_out 0.0.0.0/0"},
		{"only these: mapped address is unmapped", onlyThese, ip("::ffff:198.18.0.7"), "", true, "allow_out 198.18.0.7"},
		{"only these: name", onlyThese, ip("203.0.113.1"), "API.example.com.", true, "allow_out api.example.com"},
		{"only these: sibling name", onlyThese, ip("203.0.113.1"), "www.example.com", false, "deny_out 0.0.0.0/0"},
		{"only these: wildcard child", onlyThese, ip("203.0.113.1"), "a.b.pkg.dev", true, "allow_out *.pkg.dev"},
		{"only these: wildcard apex is not matched", onlyThese, ip("203.0.113.1"), "pkg.dev", false, "deny_out 0.0.0.0/0"},
		{"only these: suffix without a dot is not matched", onlyThese, ip("203.0.113.1"), "xpkg.dev", false, "deny_out 0.0.0.0/0"},
		{"only these: no address, unknown name", onlyThese, netip.Addr{}, "other.com", true, ""},
		{"deny some: denied prefix", denySome, ip("198.18.3.4"), "", false, "deny_out 198.18.0.0/16"},
		{"deny some: other prefix", denySome, ip("198.20.0.1"), "", true, ""},
		{"deny some: denied name", denySome, ip("198.20.0.1"), "evil.com", false, "deny_out evil.com"},
		{"deny some: wildcard", denySome, ip("198.20.0.1"), "x.evil.org", false, "deny_out *.evil.org"},
		{"allow beats deny: address", overlap, ip("198.18.0.7"), "", true, "allow_out 198.18.0.7"},
		{"allow beats deny: neighbour denied", overlap, ip("198.18.0.6"), "", false, "deny_out 198.18.0.0/24"},
		{"allow beats deny: name over wildcard", overlap, ip("203.0.113.9"), "good.evil.org", true, "allow_out good.evil.org"},
		{"allow beats deny: name allowed though its address is denied", overlap, ip("198.18.0.9"), "good.evil.org", true, "allow_out good.evil.org"},
		{"allow beats deny: address allowed though its name is denied", overlap, ip("198.18.0.7"), "bad.evil.org", true, "allow_out 198.18.0.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allow, rule := tt.p.Decide(tt.ip, tt.host)
			if allow != tt.allow || rule != tt.wantRule {
				t.Fatalf("Decide(%v, %q) = %v, %q; want %v, %q", tt.ip, tt.host, allow, rule, tt.allow, tt.wantRule)
			}
		})
	}
}

func TestNetworkPolicyWithInternet(t *testing.T) {
	p := NetworkPolicy{AllowOut: []string{"198.18.0.7"}}
	if got := p.WithInternet(true); !reflect.DeepEqual(got, p) {
		t.Fatalf("WithInternet(true) = %+v", got)
	}
	off := p.WithInternet(false)
	if ok, _ := off.Decide(netip.MustParseAddr("198.18.0.7"), ""); !ok {
		t.Fatal("internet off: an allow entry must still pass (E2B semantics)")
	}
	if ok, rule := off.Decide(netip.MustParseAddr("198.18.0.8"), ""); ok || rule != "deny_out 0.0.0.0/0" {
		t.Fatalf("internet off: other address = %v %q, want denied", ok, rule)
	}
	if len(p.DenyOut) != 0 {
		t.Fatal("WithInternet changed its receiver")
	}
}
