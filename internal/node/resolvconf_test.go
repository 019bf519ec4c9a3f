package node

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestResolvConf(t *testing.T) {
	gw := netip.MustParseAddr("10.11.0.1")
	tests := []struct {
		name, host string
		gateway    netip.Addr
		want       string
	}{
		{"host servers kept, loopback dropped", "search example\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver ::1\nnameserver 1.1.1.1\n", gw,
			"nameserver 10.255.255.53\nnameserver 1.1.1.1\n"},
		{"only loopback: the gateway", "nameserver 127.0.0.53\noptions edns0\n", gw,
			"# the host has only loopback name servers: Warren's resolver answers here\nnameserver 10.11.0.1\n"},
		{"no file: the gateway", "", gw,
			"# the host has only loopback name servers: Warren's resolver answers here\nnameserver 10.11.0.1\n"},
		{"only loopback, no gateway known", "nameserver 127.0.0.1\n", netip.Addr{},
			"# no usable name server on the host\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "resolv.conf")
			if tt.host != "" {
				if err := os.WriteFile(path, []byte(tt.host), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := string(resolvConf(path, tt.gateway)); got != tt.want {
				t.Errorf("resolvConf =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
