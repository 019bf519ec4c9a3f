// Package e2b serves the E2B-compatible control plane, so that the unmodified `e2b` and
// `@e2b/code-interpreter` SDKs can create, list, connect to and kill Warren sandboxes.
//
// It is an edge, like api/rest: it authenticates the caller (X-API-Key: sk_..., or
// Authorization: Bearer sk_...), speaks E2B's JSON shapes (camelCase; see
// docs/e2b-protocol.md §2), calls domain.SandboxService (and Config.Logs) with the
// caller's domain.Principal, and renders errors as edge.Classify classifies them
// (errors.go).
// Every error body is E2B's {"code": <int = HTTP status>, "message": "..."}: the SDK reads
// the numeric code in the body, not the status, to recognise "not found".
//
// The API lives at the root of the URL space (/sandboxes, /v2/sandboxes, /templates...),
// next to Warren's own /v1 API on the same listener. Server claims only the path prefixes
// listed in claimedPaths; mount it with Register on a top-level mux whose "/" goes to the
// /v1 handler, or dispatch by hand with Handles.
//
// Template builds (E2B's Template class) are served when Config.Templates is set
// (builds.go, uploads.go). What Warren cannot do yet (template tags, volumes, secrets)
// answers 501 with a message that says so; requests that ask for a setting Warren cannot enforce (egress
// proxies, per-host request rules, MCP...) answer 400 naming the field rather than being
// silently ignored.
package e2b

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/version"
)

// DefaultEnvdVersion is what create and connect report as envdVersion when Config leaves
// it empty: the envd version whose protocol Warren's agent speaks. The SDK gates features
// on it and throws on a value that is not x.y.z.
const DefaultEnvdVersion = version.Envd

// DefaultClientID is the (deprecated, unused by the SDK) clientID in sandbox objects.
const DefaultClientID = "warren"

// Config configures a Server.
type Config struct {
	// Domain is the sandbox domain returned as "domain" (e.g. "localhost:3001"), so that
	// the SDK builds hosts <port>-<sandboxID>.<domain>. Empty sends null and the SDK falls
	// back to its own E2B_DOMAIN.
	Domain string
	// EnvdVersion is reported as envdVersion; empty means DefaultEnvdVersion. It must look
	// like x.y.z; anything else is logged and replaced by the default.
	EnvdVersion string
	// ClientID is reported as clientID; empty means DefaultClientID.
	ClientID string
	// DefaultLimits are the resources a sandbox gets when it asks for none (the sandbox
	// service's defaults); GET /templates reports them as cpuCount, memoryMB and
	// diskSizeMB. Zero fields are reported as 0.
	DefaultLimits domain.Limits
	// TemplateMemoryMB is the sandbox service's per-template default memory where it is
	// more than DefaultLimits.MemoryMB (the browser's); GET /templates reports it.
	TemplateMemoryMB map[string]int64
	// Audit, when set, records every state-changing request in the caller's team's
	// audit log.
	Audit func(ctx context.Context, e *domain.AuditEntry)
	// RateLimit, when set, charges each request to the team's requests_per_minute
	// budget.
	RateLimit edge.RateLimitFunc
	// Logs serves the sandboxes' logs (/sandboxes/{id}/logs, /v2/sandboxes/{id}/logs).
	// Without it those routes answer 503.
	Logs domain.LogService
	// Snapshots serves forks and snapshots (POST /sandboxes/{id}/fork and
	// /sandboxes/{id}/snapshots, GET /snapshots, and snapshots in DELETE /templates/{id}).
	// Without it those routes answer 501.
	Snapshots domain.SnapshotService
	// Metrics, when set, records every request (api e2b) and every refusal.
	Metrics edge.Metrics
	// Templates serves the team's own templates: the SDK's Template.build (POST
	// /v3/templates, file uploads, builds and their status), and team templates in
	// GET /templates, the alias lookup and DELETE /templates/{id}. Without it builds
	// answer 501 and only the built-in templates are listed.
	Templates domain.TemplateService
	// Tags serves template tags (POST and DELETE /templates/tags, GET
	// /templates/{id}/tags); without it they answer 501.
	Tags domain.TemplateTagService
	// PublicURL is the base URL clients reach this API at (e.g. https://api.example.com),
	// for the upload links of template builds; empty derives it from each request.
	PublicURL string
	// MaxUploadBytes bounds one upload of a build's files, compressed and uncompressed
	// (0 = DefaultMaxUploadBytes); more is 413.
	MaxUploadBytes int64
	// SpoolDir holds uploads while they are checked and hashed ("" = the system's
	// temporary directory).
	SpoolDir string
	// Forward sends the requests another node must serve there (edge.Forwarder): those
	// of a sandbox, creates and template builds. Nil serves everything here.
	Forward edge.Forwarder
}

// Server is the E2B control-plane handler. Create it with New; it is safe for concurrent use.
type Server struct {
	svc  domain.SandboxService
	keys domain.KeyService
	log  *slog.Logger
	edge *edge.Edge
	cfg  Config
	mux  *http.ServeMux
	up   *uploads
	now  func() time.Time
}

var _ http.Handler = (*Server)(nil)

var versionRE = regexp.MustCompile(`^v?\d+\.\d+\.\d+([-+].*)?$`)

// New returns the E2B API handler. log may be nil (logs are discarded). A nil svc or keys
// is a wiring bug and panics, as http.Handle does with a nil handler.
func New(svc domain.SandboxService, keys domain.KeyService, log *slog.Logger, cfg Config) *Server {
	if svc == nil || keys == nil {
		panic("e2b.New: nil SandboxService or KeyService")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(logkey.Subsystem, "api.e2b")
	if cfg.EnvdVersion == "" {
		cfg.EnvdVersion = DefaultEnvdVersion
	} else if !versionRE.MatchString(cfg.EnvdVersion) {
		log.Error("envd version is not x.y.z; the E2B SDK would throw on it, reporting the default instead",
			"envd_version", cfg.EnvdVersion, "default", DefaultEnvdVersion)
		cfg.EnvdVersion = DefaultEnvdVersion
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	s := &Server{svc: svc, keys: keys, log: log, cfg: cfg, up: newUploads(), now: time.Now}
	s.edge = edge.New(log, s.renderError)
	if cfg.Metrics != nil {
		s.edge = s.edge.WithMetrics("e2b", cfg.Metrics)
	}
	s.mux = s.buildMux()
	return s
}

// ServeHTTP is the outermost middleware (edge.Serve: request id, panic recovery, access
// log) around the mux.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.edge.Serve(w, r, s.mux) }

// claimedPaths are the ServeMux patterns of the URL space the E2B API owns: E2B's
// sandbox, snapshot, template, volume and secret resources. Nothing here overlaps /v1,
// /healthz or /readyz.
var claimedPaths = []string{
	"/sandboxes", "/sandboxes/", "/v2/sandboxes", "/v2/sandboxes/",
	"/snapshots", "/snapshots/",
	"/templates", "/templates/", "/v2/templates", "/v2/templates/", "/v3/templates", "/v3/templates/",
	"/volumes", "/volumes/", "/volumecontent/", "/secrets", "/secrets/",
}

// Register mounts s on mux for every path the E2B API owns (all methods; s answers 405,
// 404 and 501 itself, in E2B's error shape). Register the /v1 handler on "/" of the same
// mux: ServeMux prefers the longer patterns registered here, so everything else reaches
// /v1. It panics if mux already has one of these patterns, as ServeMux.Handle does.
func (s *Server) Register(mux *http.ServeMux) {
	for _, p := range claimedPaths {
		mux.Handle(p, s)
	}
}

// Handles reports whether r's path belongs to the E2B API, for callers that dispatch by
// hand instead of using Register. It agrees with Register on every cleaned path.
func (s *Server) Handles(r *http.Request) bool {
	path := r.URL.Path
	for _, p := range claimedPaths {
		if path == p || strings.HasSuffix(p, "/") && strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// route is one endpoint; path uses net/http pattern syntax.
type route struct {
	method string
	path   string
	handle func(*Server, http.ResponseWriter, *http.Request) error
}

// byToken lists the routes that authorise with a token of their own instead of the API
// key: the upload link of a build's files, which the SDK calls without the key.
var byToken = map[string]bool{"PUT /templates/{id}/files/{hash}": true}

// routeTable is the one list of endpoints. Every route but those in byToken is
// authenticated with the API key.
var routeTable = []route{
	{"POST", "/v2/sandboxes", (*Server).createV2},
	{"POST", "/sandboxes", (*Server).createV1},
	{"GET", "/v2/sandboxes", (*Server).listV2},
	{"GET", "/sandboxes", (*Server).listV1},
	{"GET", "/sandboxes/metrics", (*Server).metricsMany},
	{"GET", "/sandboxes/{id}", (*Server).getSandbox},
	{"DELETE", "/sandboxes/{id}", (*Server).killSandbox},
	{"POST", "/v2/sandboxes/{id}/connect", (*Server).connect},
	{"POST", "/sandboxes/{id}/connect", (*Server).connect},
	{"POST", "/sandboxes/{id}/timeout", (*Server).setTimeout},
	{"POST", "/sandboxes/{id}/refreshes", (*Server).refresh},
	{"GET", "/sandboxes/{id}/metrics", (*Server).metrics},
	{"GET", "/sandboxes/{id}/logs", (*Server).logsV1},
	{"GET", "/v2/sandboxes/{id}/logs", (*Server).logsV2},

	{"POST", "/sandboxes/{id}/pause", (*Server).pause},
	{"POST", "/sandboxes/{id}/resume", (*Server).resume},
	{"POST", "/sandboxes/{id}/fork", (*Server).fork},
	{"POST", "/sandboxes/{id}/snapshots", (*Server).createSnapshot},
	{"PUT", "/sandboxes/{id}/network", (*Server).updateNetwork},
	{"GET", "/snapshots", (*Server).listSnapshots},

	{"GET", "/templates", (*Server).templates},
	{"GET", "/v2/templates", (*Server).templates},
	// GET /templates/aliases/{alias} and GET /templates/{id}/tags overlap (Go's router
	// refuses both patterns): one route serves both.
	{"GET", "/templates/{id}/{sub}", (*Server).templateSub},
	{"DELETE", "/templates/{id}", (*Server).deleteTemplate},

	{"POST", "/v3/templates", (*Server).requestBuild},
	{"GET", "/templates/{id}/files/{hash}", (*Server).fileUploadLink},
	{"PUT", "/templates/{id}/files/{hash}", (*Server).uploadFiles},
	{"POST", "/v2/templates/{id}/builds/{buildID}", (*Server).startBuild},
	{"GET", "/templates/{id}/builds/{buildID}/status", (*Server).buildStatus},
	{"POST", "/templates/tags", (*Server).assignTags},
	{"DELETE", "/templates/tags", (*Server).removeTags},
}

// catchAll answers the paths and methods under a claimed prefix that no route serves.
var catchAll = []struct {
	paths  []string
	handle func(*Server, http.ResponseWriter, *http.Request) error
}{
	{[]string{"/templates", "/templates/", "/v2/templates", "/v2/templates/", "/v3/templates", "/v3/templates/"},
		unsupported("this template operation", templateHint)},
	{[]string{"/volumes", "/volumes/", "/volumecontent/"}, unsupported("volumes", "")},
	{[]string{"/secrets", "/secrets/"}, unsupported("secrets", "")},
}

func (s *Server) buildMux() *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range routeTable {
		h := s.adapt(rt.handle)
		if action := auditActions[rt.method+" "+rt.path]; action != "" {
			h = s.audit(action, h)
		}
		if target := forwardTarget(rt.method, rt.path); target != nil {
			h = s.edge.Forwarded(s.cfg.Forward, target, h)
		}
		if !byToken[rt.method+" "+rt.path] {
			h = s.authenticate(h)
		}
		mux.Handle(rt.method+" "+rt.path, h)
	}
	for _, c := range catchAll {
		for _, p := range c.paths {
			mux.Handle(p, s.authenticate(s.adapt(c.handle)))
		}
	}
	mux.HandleFunc("/", s.noRoute)
	return mux
}

// forwardTarget returns what a route acts on, for the forwarder: a sandbox for the
// routes under /sandboxes/{id} but its plain GET (the row, served from the database
// anywhere), a create, a template build (the request, the upload of its files and its
// start: all on the build node, where the files are spooled); nil for the routes every
// server serves itself.
func forwardTarget(method, path string) func(*http.Request) edge.Target {
	switch {
	case method == "POST" && (path == "/sandboxes" || path == "/v2/sandboxes"):
		return func(*http.Request) edge.Target { return edge.Target{Kind: edge.TargetCreate} }
	case method == "DELETE" && path == "/templates/{id}": // a template, or a snapshot
		return func(r *http.Request) edge.Target {
			return edge.Target{Kind: edge.TargetSnapshot, Snapshot: r.PathValue("id")}
		}
	case path == "/v3/templates" || strings.HasPrefix(path, "/templates/{id}/files/") ||
		strings.HasPrefix(path, "/v2/templates/{id}/builds/"):
		return func(*http.Request) edge.Target { return edge.Target{Kind: edge.TargetBuild} }
	case (strings.HasPrefix(path, "/sandboxes/{id}") || strings.HasPrefix(path, "/v2/sandboxes/{id}")) &&
		!(method == "GET" && path == "/sandboxes/{id}"):
		return func(r *http.Request) edge.Target {
			return edge.Target{Kind: edge.TargetSandbox, Sandbox: r.PathValue("id")}
		}
	}
	return nil
}

// probeMethods are the methods tried to tell a 405 from a 404.
var probeMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

// noRoute answers what no route serves: 405 with Allow when the path exists for other
// methods, else 404. Probing the mux keeps the route table the one source of truth (and
// avoids method-less fallback patterns, which would conflict with GET /sandboxes/metrics
// beside GET /sandboxes/{id}).
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range probeMethods {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allowed = append(allowed, m)
			if m == "GET" {
				allowed = append(allowed, "HEAD")
			}
		}
	}
	if len(allowed) == 0 {
		s.edge.WriteError(w, r, edge.NoRoute(r, "no E2B API route for", ""))
		return
	}
	sort.Strings(allowed)
	allow := strings.Join(allowed, ", ")
	w.Header().Set("Allow", allow)
	s.edge.WriteError(w, r, edge.MethodNotAllowed(r, allow))
}

// adapt turns a route's handler into an http.Handler (edge.Adapt).
func (s *Server) adapt(h func(*Server, http.ResponseWriter, *http.Request) error) http.Handler {
	return s.edge.Adapt(func(w http.ResponseWriter, r *http.Request) error { return h(s, w, r) })
}

// authenticate resolves the API key to a Principal and charges the team's rate limit
// (edge.Authenticate).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return s.edge.Authenticate(s.keys, apiKey, s.cfg.RateLimit, next)
}

// apiKey reads the key from X-API-Key (what the E2B SDKs send; header names are
// case-insensitive) or, failing that, from Authorization: Bearer.
func apiKey(r *http.Request) (string, error) {
	if k := strings.TrimSpace(r.Header.Get("X-API-Key")); k != "" {
		return k, nil
	}
	return edge.BearerToken(r, "missing API key: send it as the X-API-Key header (set E2B_API_KEY to a Warren key sk_...)",
		", or send the key as X-API-Key")
}
