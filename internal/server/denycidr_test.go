package server

import (
	"strings"
	"testing"
)

func TestDenyCIDRFlag(t *testing.T) {
	c, err := ParseFlags(nil)
	if err != nil || c.DenyCIDRs != nil {
		t.Fatalf("no flag: %v %v, want nil (the network package's default list)", c.DenyCIDRs, err)
	}
	c, err = ParseFlags([]string{"--deny-cidr", "10.0.0.0/8,203.0.113.7"})
	if err != nil || len(c.DenyCIDRs) != 2 || c.DenyCIDRs[1].String() != "203.0.113.7/32" {
		t.Fatalf("--deny-cidr: %v %v", c.DenyCIDRs, err)
	}
	c, err = ParseFlags([]string{"--deny-cidr", "none"})
	if err != nil || c.DenyCIDRs == nil || len(c.DenyCIDRs) != 0 {
		t.Fatalf("--deny-cidr none: %v %v, want an empty non-nil list", c.DenyCIDRs, err)
	}
	t.Setenv("WARREN_DENY_CIDR", "fd00::/8")
	if _, err := ParseFlags(nil); err == nil || !strings.Contains(err.Error(), "--deny-cidr") {
		t.Fatalf("an IPv6 entry: %v, want an error naming --deny-cidr", err)
	}
}
