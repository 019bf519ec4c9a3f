// Package console serves the web console's built assets (a single-page app, embedded
// from web/dist) at the root of the API listener.
//
// The app routes on the client with #/... fragments, so "/" is its only page: any other
// path that is not a file is a 404, never the app's HTML. index.html is
// revalidated on every load (no-cache) and files with a content hash in their name are
// cached for a year. A file with a pre-compressed sibling ("app-X.js.gz") is sent
// compressed to clients that accept gzip. Every answer carries a strict
// Content-Security-Policy. Without index.html (the front end was not built) pages answer
// 503 and say how to build it.
package console

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/logkey"
)

// ContentSecurityPolicy is sent with every console response: scripts, styles and
// fetches from this origin only (plus WebSockets for the terminal), no framing.
const ContentSecurityPolicy = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; " +
	"frame-ancestors 'none'; base-uri 'self'; form-action 'self'"

// notBuilt is the answer for pages when index.html is missing.
const notBuilt = "console assets are not built: run make"

// hashedName matches file names that carry a content hash, as esbuild ("app-5QJ3XLWK.js")
// and most bundlers ("app-3f2a9c1b.js") write them: their content never changes.
var hashedName = regexp.MustCompile(`[-.]([A-Z0-9]{8,}|[a-f0-9]{8,})\.[A-Za-z0-9]+$`)

// asset is one file, read once at start-up.
type asset struct {
	body      []byte
	gz        []byte // the pre-compressed sibling, if any
	etag      string
	gzETag    string
	ctype     string
	immutable bool
}

// Handler serves the console. Create it with New; it is safe for concurrent use.
type Handler struct {
	assets map[string]*asset // by clean path without the leading slash
	index  *asset            // nil when the console is not built
	log    *slog.Logger
}

var _ http.Handler = (*Handler)(nil)

// New reads every file of assets (the build output, rooted at its top: index.html at
// "index.html"). log may be nil. Names starting with "." are never served.
func New(assets fs.FS, log *slog.Logger) (*Handler, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{assets: map[string]*asset{}, log: log.With(logkey.Subsystem, "console")}
	gz := map[string][]byte{}
	err := fs.WalkDir(assets, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if hidden(name) {
			if d.IsDir() && name != "." {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		b, err := fs.ReadFile(assets, name)
		if err != nil {
			return err
		}
		if base, ok := strings.CutSuffix(name, ".gz"); ok {
			gz[base] = b
		}
		h.assets[name] = &asset{body: b, etag: etag(b), ctype: contentType(name), immutable: hashedName.MatchString(strings.TrimSuffix(name, ".gz"))}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading console assets: %w", err)
	}
	for base, b := range gz {
		if a, ok := h.assets[base]; ok {
			a.gz, a.gzETag = b, etag(b)
		}
	}
	h.index = h.assets["index.html"]
	if h.index == nil {
		h.log.Warn("console assets are not built: the console answers 503 until `make` builds web/dist")
	}
	return h, nil
}

// Built reports whether the console has its index.html.
func (h *Handler) Built() bool { return h.index != nil }

// hidden reports whether a path has a component starting with "." (".gitkeep").
func hidden(name string) bool {
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") && part != "." {
			return true
		}
	}
	return false
}

func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
}

// contentType names a file's media type by its extension; unknown ones are bytes (and
// never sniffed: nosniff is set).
func contentType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method "+r.Method+" is not allowed on console pages; allowed: GET, HEAD", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	a := h.assets[name]
	if hidden(name) || name == "" || strings.HasSuffix(name, ".gz") && h.assets[strings.TrimSuffix(name, ".gz")] != nil {
		a = nil // the compressed copies are served through content negotiation only
	}
	if a == nil {
		// The app routes on the client with #/... fragments, so the only page is "/":
		// anything else unknown is a 404 (never the app's HTML, which would make any
		// mistyped or traversal path look like it exists).
		if name != "" && name != "index.html" {
			http.Error(w, "no such console file: "+r.URL.Path+" (the console is at /)", http.StatusNotFound)
			return
		}
		if h.index == nil {
			hd.Set("Cache-Control", "no-store")
			http.Error(w, notBuilt, http.StatusServiceUnavailable)
			return
		}
		a = h.index // a page of the app: it routes on the client
	}
	h.serve(w, r, a)
}

// serve sends a, compressed when the client takes gzip and a compressed copy exists.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, a *asset) {
	hd := w.Header()
	if a.immutable {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "no-cache")
	}
	hd.Set("Content-Type", a.ctype)
	body, tag := a.body, a.etag
	if a.gz != nil {
		hd.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			body, tag = a.gz, a.gzETag
			hd.Set("Content-Encoding", "gzip")
		}
	}
	hd.Set("ETag", tag)
	// ServeContent answers If-None-Match (304), Range and HEAD. The zero modification
	// time leaves Last-Modified out: the ETag is the validator.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether Accept-Encoding allows gzip (not "gzip;q=0").
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.TrimSpace(coding) != "*" {
				continue
			}
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "q") {
					if f, err := strconv.ParseFloat(v, 64); err == nil {
						q = f
					}
				}
			}
			return q > 0
		}
	}
	return false
}
