package console

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

const (
	indexHTML = `<!doctype html><script type="module" src="/app-5QJ3XLWK.js"></script>`
	appJS     = `console.log("the app");`
)

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func builtFS(t *testing.T) fstest.MapFS {
	return fstest.MapFS{
		"index.html":                  {Data: []byte(indexHTML)},
		"index.html.gz":               {Data: gz(t, indexHTML)},
		"app-5QJ3XLWK.js":             {Data: []byte(appJS)},
		"app-5QJ3XLWK.js.gz":          {Data: gz(t, appJS)},
		"chunks/term-3f2a9c1b.css":    {Data: []byte("body{}")},
		"favicon.svg":                 {Data: []byte("<svg/>")},
		"terminal-worker.js":          {Data: []byte("1")},
		".gitkeep":                    {Data: nil},
		".secret/x.js":                {Data: []byte("no")},
		"chunks/.hidden-3f2a9c1b.css": {Data: []byte("no")},
	}
}

func newHandler(t *testing.T, fsys fstest.MapFS) *Handler {
	t.Helper()
	h, err := New(fsys, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type answer struct {
	status int
	body   string // decoded from gzip when Content-Encoding says so
	header http.Header
}

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) answer {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body := w.Body.Bytes()
	if w.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s %s: gzip body: %v", method, target, err)
		}
		body, _ = io.ReadAll(zr)
	}
	return answer{status: w.Code, body: string(body), header: w.Header()}
}

func TestServeBuilt(t *testing.T) {
	h := newHandler(t, builtFS(t))
	if !h.Built() {
		t.Fatal("Built() = false with an index.html")
	}
	gzipOK := map[string]string{"Accept-Encoding": "br, gzip;q=0.8"}
	cases := []struct {
		name, method, target string
		hdr                  map[string]string
		status               int
		body                 string // "" = not checked
		ctype, cache, enc    string
	}{
		{"root is index", "GET", "/", nil, 200, indexHTML, "text/html; charset=utf-8", "no-cache", ""},
		{"index by name", "GET", "/index.html", nil, 200, indexHTML, "text/html; charset=utf-8", "no-cache", ""},
		// The app routes on #/... fragments: other paths are not pages.
		{"unknown page is not found", "GET", "/keys/new", nil, 404, "", "", "", ""},
		{"directory path is not found", "GET", "/chunks/", nil, 404, "", "", "", ""},
		{"traversal stays inside", "GET", "/../../etc/passwd", nil, 404, "", "", "", ""},
		{"traversal to a file stays inside", "GET", "/../../etc/os-release.txt", nil, 404, "", "", "", ""},
		{"index gzipped", "GET", "/", gzipOK, 200, indexHTML, "text/html; charset=utf-8", "no-cache", "gzip"},
		{"hashed asset, long cache", "GET", "/app-5QJ3XLWK.js", nil, 200, appJS, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", ""},
		{"hashed asset gzipped", "GET", "/app-5QJ3XLWK.js", gzipOK, 200, appJS, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", "gzip"},
		{"gzip refused with q=0", "GET", "/app-5QJ3XLWK.js", map[string]string{"Accept-Encoding": "gzip;q=0"}, 200, appJS, "text/javascript; charset=utf-8", "", ""},
		{"hex-hashed asset in a subdirectory", "GET", "/chunks/term-3f2a9c1b.css", nil, 200, "body{}", "text/css; charset=utf-8", "public, max-age=31536000, immutable", ""},
		{"unhashed file revalidates", "GET", "/favicon.svg", nil, 200, "<svg/>", "image/svg+xml", "no-cache", ""},
		{"a word is not a hash", "GET", "/terminal-worker.js", nil, 200, "1", "", "no-cache", ""},
		{"missing asset is 404, not HTML", "GET", "/app-XXXXXXXX.js", nil, 404, "", "", "", ""},
		{"compressed copy not served by name", "GET", "/app-5QJ3XLWK.js.gz", nil, 404, "", "", "", ""},
		{"dot files hidden", "GET", "/.gitkeep", nil, 404, "", "", "", ""},
		{"dot directories hidden", "GET", "/.secret/x.js", nil, 404, "", "", "", ""},
		{"dot names in subdirectories hidden", "GET", "/chunks/.hidden-3f2a9c1b.css", nil, 404, "", "", "", ""},
		{"HEAD", "HEAD", "/", nil, 200, "", "text/html; charset=utf-8", "no-cache", ""},
		{"POST refused", "POST", "/", nil, 405, "", "", "", ""},
		{"DELETE refused", "DELETE", "/app-5QJ3XLWK.js", nil, 405, "", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := get(t, h, c.method, c.target, c.hdr)
			if a.status != c.status {
				t.Fatalf("status %d, want %d; body %q", a.status, c.status, a.body)
			}
			if c.body != "" && a.body != c.body {
				t.Errorf("body %q, want %q", a.body, c.body)
			}
			if c.ctype != "" && a.header.Get("Content-Type") != c.ctype {
				t.Errorf("Content-Type %q, want %q", a.header.Get("Content-Type"), c.ctype)
			}
			if c.cache != "" && a.header.Get("Cache-Control") != c.cache {
				t.Errorf("Cache-Control %q, want %q", a.header.Get("Cache-Control"), c.cache)
			}
			if a.status == 200 && a.header.Get("Content-Encoding") != c.enc {
				t.Errorf("Content-Encoding %q, want %q", a.header.Get("Content-Encoding"), c.enc)
			}
			// Every answer, errors included, carries the security headers.
			if a.header.Get("Content-Security-Policy") != ContentSecurityPolicy || a.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("security headers missing: %v", a.header)
			}
			if c.status == 405 && a.header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q", a.header.Get("Allow"))
			}
			if c.method == "HEAD" && a.body != "" {
				t.Errorf("HEAD has a body %q", a.body)
			}
		})
	}
}

func TestCSPIsStrict(t *testing.T) {
	for _, want := range []string{"default-src 'self'", "connect-src 'self' ws: wss:", "frame-ancestors 'none'"} {
		if !strings.Contains(ContentSecurityPolicy, want) {
			t.Errorf("CSP %q lacks %q", ContentSecurityPolicy, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*"} {
		if strings.Contains(ContentSecurityPolicy, bad) {
			t.Errorf("CSP %q allows %q", ContentSecurityPolicy, bad)
		}
	}
}

// TestValidators: the ETag answers conditional requests, and the plain and compressed
// bodies have different ETags (a cache must not mix them up).
func TestValidators(t *testing.T) {
	h := newHandler(t, builtFS(t))
	plain := get(t, h, "GET", "/app-5QJ3XLWK.js", nil)
	zipped := get(t, h, "GET", "/app-5QJ3XLWK.js", map[string]string{"Accept-Encoding": "gzip"})
	tag, ztag := plain.header.Get("ETag"), zipped.header.Get("ETag")
	if tag == "" || ztag == "" || tag == ztag {
		t.Fatalf("ETags %q and %q: want two different ones", tag, ztag)
	}
	if v := zipped.header.Values("Vary"); len(v) != 1 || v[0] != "Accept-Encoding" {
		t.Errorf("Vary = %q", v)
	}
	if a := get(t, h, "GET", "/app-5QJ3XLWK.js", map[string]string{"If-None-Match": tag}); a.status != 304 {
		t.Errorf("If-None-Match with the ETag: %d, want 304", a.status)
	}
	if a := get(t, h, "GET", "/app-5QJ3XLWK.js", map[string]string{"If-None-Match": ztag}); a.status != 200 {
		t.Errorf("If-None-Match with the other encoding's ETag: %d, want 200", a.status)
	}
	if a := get(t, h, "GET", "/favicon.svg", nil); a.header.Get("Vary") != "" {
		t.Errorf("Vary on a file without a compressed copy: %q", a.header.Get("Vary"))
	}
}

func TestServeNotBuilt(t *testing.T) {
	h := newHandler(t, fstest.MapFS{".gitkeep": {Data: nil}, "app-5QJ3XLWK.js": {Data: []byte(appJS)}})
	if h.Built() {
		t.Fatal("Built() = true without index.html")
	}
	for _, target := range []string{"/", "/index.html"} {
		a := get(t, h, "GET", target, nil)
		if a.status != 503 || strings.TrimSpace(a.body) != "console assets are not built: run make" ||
			!strings.HasPrefix(a.header.Get("Content-Type"), "text/plain") {
			t.Errorf("GET %s: %d %q %q; want 503 text saying to run make", target, a.status, a.body, a.header.Get("Content-Type"))
		}
		if a.header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: Cache-Control %q; a 503 must not be cached", target, a.header.Get("Cache-Control"))
		}
	}
	// What exists is still served; a missing file is still a 404.
	if a := get(t, h, "GET", "/app-5QJ3XLWK.js", nil); a.status != 200 {
		t.Errorf("existing asset: %d", a.status)
	}
	if a := get(t, h, "GET", "/nope.css", nil); a.status != 404 {
		t.Errorf("missing asset: %d", a.status)
	}
}

func TestAcceptsGzip(t *testing.T) {
	cases := map[string]bool{
		"":                     false,
		"gzip":                 true,
		"GZIP":                 true,
		"br, gzip":             true,
		"gzip;q=0":             false,
		"gzip; q=0.001":        true,
		"deflate, br":          false,
		"*":                    true,
		"br;q=1, identity;q=0": false,
		"x-gzip":               false,
	}
	for v, want := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		if v != "" {
			r.Header.Set("Accept-Encoding", v)
		}
		if got := acceptsGzip(r); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", v, got, want)
		}
	}
}
