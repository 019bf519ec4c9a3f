package egress

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"
)

// clientHello returns the first flight a real crypto/tls client sends for sni.
func clientHello(t testing.TB, sni string) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		c := tls.Client(a, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Handshake() // fails when b closes; only its first flight matters
	}()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 0, 8192)
	for {
		n, err := b.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			t.Fatal(err)
		}
		if _, err := clientHelloSNI(buf); !errors.Is(err, errIncomplete) {
			return buf
		}
	}
}

// splitRecords re-frames a single-record hello as one handshake record per chunk
// bytes, as a client may legally send it.
func splitRecords(hello []byte, chunk int) []byte {
	body := hello[5:]
	var out []byte
	for len(body) > 0 {
		n := min(chunk, len(body))
		out = append(out, 0x16, 3, 1, byte(n>>8), byte(n))
		out = append(out, body[:n]...)
		body = body[n:]
	}
	return out
}

func TestClientHelloSNI(t *testing.T) {
	hello := clientHello(t, "Allowed.Test")
	noSNI := clientHello(t, "") // crypto/tls sends no server_name for ""
	split := splitRecords(hello, 100)
	cases := []struct {
		name string
		in   []byte
		want string
		err  error
	}{
		{"real hello", hello, "allowed.test", nil},
		{"no server name", noSNI, "", nil},
		{"split over records", split, "allowed.test", nil},
		{"header only", hello[:5], "", errIncomplete},
		{"half", hello[:len(hello)/2], "", errIncomplete},
		{"split, half", split[:len(split)/2], "", errIncomplete},
		{"empty", nil, "", errIncomplete},
		{"not a handshake record", append([]byte{0x17}, hello[1:]...), "", errNotHello},
		{"not a client hello", append(append([]byte{}, hello[:5]...), append([]byte{2}, hello[6:]...)...), "", errNotHello},
		{"zero-length record", []byte{0x16, 3, 1, 0, 0}, "", errNotHello},
		{"HTTP", []byte("GET / HTTP/1.1\r\n\r\n"), "", errNotHello},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := clientHelloSNI(c.in)
			if got != c.want || !errors.Is(err, c.err) && !(err == nil && c.err == nil) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, c.want, c.err)
			}
		})
	}
}

func TestHTTPHost(t *testing.T) {
	cases := []struct {
		in, want string
		err      error
	}{
		{"GET / HTTP/1.1\r\nHost: Allowed.Test\r\n\r\n", "allowed.test", nil},
		{"POST /x HTTP/1.1\r\nUser-Agent: a\r\nhost:  allowed.test:8080 \r\n\r\nbody", "allowed.test", nil},
		{"GET / HTTP/1.1\r\nHost: 198.18.0.2\r\n\r\n", "", nil},
		{"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", "", nil},
		{"GET / HTTP/1.0\r\n\r\n", "", nil},
		{"GET / HTTP/1.1\r\nHost: allowed.test\r\n", "", errIncomplete},
		{"GE", "", errIncomplete},
		{"GET / HTTP/1.1\r\nHost: bad name!\r\n\r\n", "", errNotHTTP},
		{"GET / HTTP/1.1\r\nHost: a.test:x\r\n\r\n", "", errNotHTTP},
		{"GET /\r\nHost: a.test\r\n\r\n", "", errNotHTTP},
		{"SSH-2.0-OpenSSH\r\n", "", errNotHTTP},
		{"\x16\x03\x01", "", errNotHTTP},
	}
	for _, c := range cases {
		got, err := httpHost([]byte(c.in))
		if got != c.want || !errors.Is(err, c.err) && !(err == nil && c.err == nil) {
			t.Errorf("%q: got %q, %v; want %q, %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestNormalName(t *testing.T) {
	long := ""
	for i := 0; i < 64; i++ {
		long += "a"
	}
	for in, want := range map[string]string{"Example.COM.": "example.com", "a_b-c.test": "a_b-c.test", "": "", "a..b": "", long + ".test": "", "a b": "", "é.test": ""} {
		got, ok := normalName(in)
		if got != want || ok != (want != "") {
			t.Errorf("%q: got %q %v, want %q", in, got, ok, want)
		}
	}
}

// FuzzClientHelloSNI: no input makes the parser panic, loop or return a name that is
// not a normalised host name.
func FuzzClientHelloSNI(f *testing.F) {
	hello := clientHello(f, "allowed.test")
	f.Add(hello)
	f.Add(splitRecords(hello, 64))
	f.Add(hello[:40])
	f.Add([]byte{0x16, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		name, err := clientHelloSNI(b)
		if err == nil && name != "" {
			if n, ok := normalName(name); !ok || n != name {
				t.Fatalf("returned %q, not a normalised host name", name)
			}
		}
		if err != nil && name != "" {
			t.Fatalf("returned %q with error %v", name, err)
		}
	})
}

// FuzzHTTPHost: the same for the Host header parser.
func FuzzHTTPHost(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: allowed.test:80\r\nX: y\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		name, err := httpHost(b)
		if err == nil && name != "" {
			if n, ok := normalName(name); !ok || n != name {
				t.Fatalf("returned %q, not a normalised host name", name)
			}
		}
		if err != nil && name != "" {
			t.Fatalf("returned %q with error %v", name, err)
		}
	})
}
