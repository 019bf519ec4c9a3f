package proxy

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

// FuzzParseTarget feeds the proxy arbitrary Host values and routing headers. It must
// never panic, and whatever it accepts must be a well-formed sandbox id and a port in
// range that the same request names; a request it builds from an accepted id and port
// parses back to them.
func FuzzParseTarget(f *testing.F) {
	for _, s := range [][3]string{
		{"49999-abcdefghij0123456789.warren.local", "", ""},
		{"8080-abcdefghij0123456789.warren.local:3001", "", ""},
		{"localhost", "abcdefghij0123456789", "49983"},
		{"x", "ABCDEFGHIJ0123456789", "1"},
		{"0-abcdefghij0123456789.d", "", ""},
		{"65536-abcdefghij0123456789.d", "", ""},
		{"-.", "", "x"},
		{"[::1]:80", "", ""},
		{"80-abcdefghij0123456789", "abcdefghij012345678", "80"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	p := New(nil, nil, Config{Domain: "warren.local"})
	f.Fuzz(func(t *testing.T, host, hid, hport string) {
		r := httptest.NewRequest("GET", "http://placeholder/", nil)
		r.Host = host
		if hid != "" {
			r.Header.Set(HeaderSandboxID, hid)
		}
		if hport != "" {
			r.Header.Set(HeaderSandboxPort, hport)
		}
		id, port, err := p.parseTarget(r)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("refusal with an empty message")
			}
			return
		}
		if !domain.ValidSandboxID(id) {
			t.Fatalf("accepted id %q is not a sandbox id", id)
		}
		if port < 1 || port > 65535 {
			t.Fatalf("accepted port %d out of range", port)
		}
		named := strings.Contains(strings.ToLower(host), id) || r.Header.Get(HeaderSandboxID) == id
		if !named {
			t.Fatalf("accepted id %q that neither the Host %q nor the header names", id, host)
		}
		back := httptest.NewRequest("GET", "http://placeholder/", nil)
		back.Host = strconv.Itoa(port) + "-" + id + ".warren.local"
		if id2, port2, err := p.parseTarget(back); err != nil || id2 != id || port2 != port {
			t.Fatalf("round trip of %s: %q %d %v", back.Host, id2, port2, err)
		}
	})
}
