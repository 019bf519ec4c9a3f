// Package rest serves Warren's native REST API, /v1: sandboxes, commands, code execution,
// files, API keys and templates as JSON over HTTP, with Server-Sent Events for streamed
// command output and code interpreter lines.
//
// It is an edge. It authenticates the caller (Authorization: Bearer sk_...), decodes and
// validates requests, calls domain.SandboxService, domain.KeyService and the services
// given as options (WithProcesses, WithFiles, WithLogs, WithTerminals, WithPorts,
// WithCode, WithTeams, WithUsers, WithSessions, WithAudit, WithBilling, WithPools,
// WithNodes, WithSnapshots) with the
// caller's domain.Principal, and renders errors as edge.Classify classifies them
// (errors.go). Every response carries an X-Request-Id header, and every error body
// carries the same id so that people can quote it.
//
// The route table (routeTable) is the single list of endpoints; the mux, the 405 handling
// and the OpenAPI conformance test are all derived from it. The OpenAPI 3.1 document is
// hand-written in openapi.json and served at GET /v1/openapi.json.
package rest

import (
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// Option configures a Server. Options cannot fail: a zero or nil value means "the
// default", so the constructor has nothing to reject but missing services.
type Option func(*options)

type options struct {
	ready        func() error
	maxJSONBytes int64
	keepAlive    time.Duration
	code         domain.CodeService
	processes    domain.ProcessService
	files        domain.FileService
	logs         domain.LogService
	terminals    domain.TerminalService
	ports        domain.PortLister
	teams        domain.TeamService
	users        domain.UserService
	sessions     domain.SessionService
	audit        domain.AuditLog
	billing      domain.BillingService
	pools        domain.PoolService
	nodes        domain.NodeService
	invoiceCSV   func(io.Writer, *domain.Invoice) error
	rateLimit    edge.RateLimitFunc
	domain       string
	snapshots    domain.SnapshotService
	templates    domain.TemplateService
	maxContext   int64
	uploadDir    string
	metrics      edge.Metrics
	forward      edge.Forwarder
}

// WithMetrics records every request (api v1; the console's session routes as console)
// and every refusal in m.
func WithMetrics(m edge.Metrics) Option { return func(o *options) { o.metrics = m } }

// WithForwarder sends the requests another node must serve there (edge.Forwarder):
// those of a sandbox, creates and template builds.
func WithForwarder(f edge.Forwarder) Option { return func(o *options) { o.forward = f } }

// WithDomain sets the sandbox domain reported with sandboxes and their ports:
// http://<port>-<id>.<domain>/ reaches a port through the proxy.
func WithDomain(d string) Option { return func(o *options) { o.domain = d } }

// RateLimitFunc is edge.RateLimitFunc: it admits one request against a per-minute budget.
type RateLimitFunc = edge.RateLimitFunc

// WithTeams serves teams (/v1/teams, and the team in /v1/me) from ts.
func WithTeams(ts domain.TeamService) Option { return func(o *options) { o.teams = ts } }

// WithUsers serves a team's users (/v1/users, and the user in /v1/me) from us.
func WithUsers(us domain.UserService) Option { return func(o *options) { o.users = us } }

// WithSessions serves logins and logouts (/v1/auth/*, /console/login, /console/logout)
// from ss.
func WithSessions(ss domain.SessionService) Option { return func(o *options) { o.sessions = ss } }

// WithAudit records the audited routes in al and serves /v1/audit from it. Without it
// nothing is recorded.
func WithAudit(al domain.AuditLog) Option { return func(o *options) { o.audit = al } }

// WithBilling serves usage, plans and invoices from bs; csv writes an invoice as CSV.
func WithBilling(bs domain.BillingService, csv func(io.Writer, *domain.Invoice) error) Option {
	return func(o *options) { o.billing, o.invoiceCSV = bs, csv }
}

// WithRateLimit limits each team to its requests_per_minute quota (and logins per
// client address) with f.
func WithRateLimit(f RateLimitFunc) Option { return func(o *options) { o.rateLimit = f } }

// WithReady sets the readiness check behind GET /readyz: a non-nil error answers 503 with
// the error's text. Without it (or with nil), /readyz always answers 200.
func WithReady(ready func() error) Option {
	return func(o *options) { o.ready = ready }
}

// WithMaxJSONBytes caps JSON request bodies; n <= 0 means the default, 1 MiB. File
// uploads are never capped.
func WithMaxJSONBytes(n int64) Option {
	return func(o *options) { o.maxJSONBytes = n }
}

// WithKeepAlive sets how often a quiet SSE stream gets a comment line so that proxies do
// not time it out; d <= 0 means the default, 15s.
func WithKeepAlive(d time.Duration) Option {
	return func(o *options) { o.keepAlive = d }
}

// Server is the /v1 HTTP handler. Create it with New; it is safe for concurrent use.
type Server struct {
	svc  domain.SandboxService
	keys domain.KeyService
	log  *slog.Logger
	edge *edge.Edge
	opts options
	mux  *http.ServeMux
}

var _ http.Handler = (*Server)(nil)

// New returns the /v1 API handler. log may be nil (logs are discarded). A nil svc or
// keys is a wiring bug and panics, as http.Handle does with a nil handler.
func New(svc domain.SandboxService, keys domain.KeyService, log *slog.Logger, opts ...Option) *Server {
	if svc == nil || keys == nil {
		panic("rest.New: nil SandboxService or KeyService")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxJSONBytes <= 0 {
		o.maxJSONBytes = 1 << 20
	}
	if o.keepAlive <= 0 {
		o.keepAlive = 15 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{svc: svc, keys: keys, log: log.With(logkey.Subsystem, "api.rest"), opts: o}
	s.edge = edge.New(s.log, s.renderError, "/healthz", "/readyz")
	if o.metrics != nil {
		s.edge = s.edge.WithMetrics("v1", o.metrics)
	}
	s.mux = s.buildMux()
	return s
}

// ServeHTTP is the outermost middleware (edge.Serve: request id, panic recovery, access
// log) around the mux.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.edge.Serve(w, r, s.mux) }

// Handler returns s; it exists so callers can write srv.Handler() like elsewhere.
func (s *Server) Handler() http.Handler { return s }

// route is one endpoint. Path uses net/http pattern syntax, which is also OpenAPI's.
type route struct {
	method string
	path   string
	// public routes skip authentication.
	public bool
	handle func(*Server, http.ResponseWriter, *http.Request) error
	// action names the route in the audit log; routes that change nothing have none.
	action string
}

// routeTable is the one list of endpoints. The OpenAPI conformance test checks that
// openapi.json documents exactly these (method, path) pairs.
var routeTable = []route{
	{"GET", "/healthz", true, (*Server).healthz, ""},
	{"GET", "/readyz", true, (*Server).readyz, ""},
	{"GET", "/v1/openapi.json", true, (*Server).openAPI, ""},

	{"POST", "/v1/sandboxes", false, (*Server).createSandbox, "sandbox.create"},
	{"GET", "/v1/sandboxes", false, (*Server).listSandboxes, ""},
	{"GET", "/v1/sandboxes/{id}", false, (*Server).getSandbox, ""},
	{"DELETE", "/v1/sandboxes/{id}", false, (*Server).killSandbox, "sandbox.kill"},
	{"POST", "/v1/sandboxes/{id}/timeout", false, (*Server).setTimeout, "sandbox.set_timeout"},
	{"PUT", "/v1/sandboxes/{id}/network", false, (*Server).setNetwork, "sandbox.set_network"},
	{"POST", "/v1/sandboxes/{id}/pause", false, (*Server).pauseSandbox, "sandbox.pause"},
	{"POST", "/v1/sandboxes/{id}/resume", false, (*Server).resumeSandbox, "sandbox.resume"},
	{"POST", "/v1/sandboxes/{id}/commands", false, (*Server).exec, "sandbox.exec"},
	{"POST", "/v1/sandboxes/{id}/fork", false, (*Server).forkSandbox, "sandbox.fork"},
	{"POST", "/v1/sandboxes/{id}/snapshots", false, (*Server).createSnapshot, "snapshot.create"},
	{"GET", "/v1/snapshots", false, (*Server).listSnapshots, ""},
	{"GET", "/v1/snapshots/{id}", false, (*Server).getSnapshot, ""},
	{"DELETE", "/v1/snapshots/{id}", false, (*Server).deleteSnapshot, "snapshot.delete"},

	{"POST", "/v1/sandboxes/{id}/execute", false, (*Server).execute, "sandbox.run_code"},
	{"POST", "/v1/sandboxes/{id}/contexts", false, (*Server).createCodeContext, "sandbox.context_create"},
	{"GET", "/v1/sandboxes/{id}/contexts", false, (*Server).listCodeContexts, ""},
	{"DELETE", "/v1/sandboxes/{id}/contexts/{context_id}", false, (*Server).deleteCodeContext, "sandbox.context_delete"},
	{"POST", "/v1/sandboxes/{id}/contexts/{context_id}/restart", false, (*Server).restartCodeContext, "sandbox.context_restart"},

	{"PUT", "/v1/sandboxes/{id}/files/content", false, (*Server).writeFile, "sandbox.file_write"},
	{"GET", "/v1/sandboxes/{id}/files/content", false, (*Server).readFile, ""},
	{"GET", "/v1/sandboxes/{id}/files", false, (*Server).listFiles, ""},

	{"GET", "/v1/sandboxes/{id}/metrics", false, (*Server).metrics, ""},
	{"GET", "/v1/sandboxes/{id}/logs", false, (*Server).logs, ""},
	{"GET", "/v1/sandboxes/{id}/ports", false, (*Server).listPorts, ""},
	{"GET", "/v1/sandboxes/{id}/terminal", false, (*Server).terminal, "sandbox.terminal"},

	{"POST", "/v1/keys", false, (*Server).createKey, "key.create"},
	{"GET", "/v1/keys", false, (*Server).listKeys, ""},
	{"DELETE", "/v1/keys/{id}", false, (*Server).revokeKey, "key.revoke"},

	{"GET", "/v1/templates", false, (*Server).templates, ""},
	{"POST", "/v1/templates", false, (*Server).buildTemplate, "template.build"},
	{"GET", "/v1/templates/{id}", false, (*Server).getTemplate, ""},
	{"DELETE", "/v1/templates/{id}", false, (*Server).deleteTemplate, "template.delete"},
	{"GET", "/v1/templates/{id}/builds", false, (*Server).listBuilds, ""},
	{"GET", "/v1/templates/{id}/builds/{build}", false, (*Server).getBuild, ""},
	{"GET", "/v1/templates/{id}/builds/{build}/logs", false, (*Server).buildLogs, ""},
	{"GET", "/v1/pools", false, (*Server).listPools, ""},
	{"GET", "/v1/nodes", false, (*Server).listNodes, ""},
	{"POST", "/v1/nodes/{name}/drain", false, (*Server).drainNode, "node.drain"},
	{"POST", "/v1/nodes/{name}/undrain", false, (*Server).undrainNode, "node.undrain"},

	{"POST", "/v1/auth/login", true, (*Server).login, ""},
	{"POST", "/v1/auth/logout", false, (*Server).logout, ""},
	{"GET", "/v1/me", false, (*Server).me, ""},
	{"POST", "/v1/teams", false, (*Server).createTeam, "team.create"},
	{"GET", "/v1/teams", false, (*Server).listTeams, ""},
	{"GET", "/v1/teams/{id}", false, (*Server).getTeam, ""},
	{"PATCH", "/v1/teams/{id}", false, (*Server).updateTeam, "team.update"},
	{"POST", "/v1/users", false, (*Server).createUser, "user.create"},
	{"GET", "/v1/users", false, (*Server).listUsers, ""},
	{"PATCH", "/v1/users/{id}", false, (*Server).updateUser, "user.update"},
	{"DELETE", "/v1/users/{id}", false, (*Server).deleteUser, "user.delete"},
	{"GET", "/v1/audit", false, (*Server).listAudit, ""},

	{"GET", "/v1/usage", false, (*Server).usage, ""},
	{"GET", "/v1/plans", false, (*Server).plans, ""},
	{"GET", "/v1/invoices", false, (*Server).listInvoices, ""},
	{"GET", "/v1/invoices/{period}", false, (*Server).getInvoice, ""},

	{"GET", "/v1/sandboxes/{id}/processes", false, (*Server).listProcesses, ""},
	{"GET", "/v1/sandboxes/{id}/processes/{pid}/events", false, (*Server).processEvents, ""},
	{"POST", "/v1/sandboxes/{id}/processes/{pid}/stdin", false, (*Server).processStdin, "sandbox.process_stdin"},
	{"POST", "/v1/sandboxes/{id}/processes/{pid}/stdin/close", false, (*Server).processStdinClose, "sandbox.process_stdin_close"},
	{"POST", "/v1/sandboxes/{id}/processes/{pid}/signal", false, (*Server).processSignal, "sandbox.process_signal"},

	{"DELETE", "/v1/sandboxes/{id}/files", false, (*Server).deleteFile, "sandbox.file_delete"},
	{"POST", "/v1/sandboxes/{id}/files/dir", false, (*Server).makeDir, "sandbox.file_mkdir"},
	{"GET", "/v1/sandboxes/{id}/files/stat", false, (*Server).statFile, ""},
	{"POST", "/v1/sandboxes/{id}/files/move", false, (*Server).moveFile, "sandbox.file_move"},
}

func (s *Server) buildMux() *http.ServeMux {
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	for _, rt := range routeTable {
		var h http.Handler = s.adapt(rt.handle)
		if rt.action != "" {
			h = s.audit(rt.action, h)
		}
		if target := forwardTarget(rt.method, rt.path); target != nil {
			h = s.edge.Forwarded(s.opts.forward, target, h)
		}
		if !rt.public {
			h = s.edge.Authenticate(s.keys, credentials, s.opts.rateLimit, h)
		}
		mux.Handle(rt.method+" "+rt.path, h)
		allowed[rt.path] = append(allowed[rt.path], rt.method)
	}
	// A method-less pattern per path is less specific than the method patterns, so it
	// only sees the methods the path does not serve: answer those with a JSON 405.
	for path, methods := range allowed {
		if slices.Contains(methods, "GET") {
			methods = append(methods, "HEAD")
		}
		sort.Strings(methods)
		allow := strings.Join(methods, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			s.edge.WriteError(w, r, edge.MethodNotAllowed(r, allow))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.edge.WriteError(w, r, edge.NoRoute(r, "no route for", "see GET /v1/openapi.json"))
	})
	return mux
}

// forwardTarget returns what a route acts on, for the forwarder: a sandbox for the
// routes under /v1/sandboxes/{id} but its plain GET (the row, served from the
// database anywhere), a create, a template build; nil for the routes every server
// serves itself.
func forwardTarget(method, path string) func(*http.Request) edge.Target {
	switch {
	case method == "POST" && path == "/v1/sandboxes":
		return func(*http.Request) edge.Target { return edge.Target{Kind: edge.TargetCreate} }
	case method == "DELETE" && path == "/v1/snapshots/{id}":
		return func(r *http.Request) edge.Target {
			return edge.Target{Kind: edge.TargetSnapshot, Snapshot: r.PathValue("id")}
		}
	case method == "POST" && path == "/v1/templates":
		return func(*http.Request) edge.Target { return edge.Target{Kind: edge.TargetBuild} }
	case strings.HasPrefix(path, "/v1/sandboxes/{id}") && !(method == "GET" && path == "/v1/sandboxes/{id}"):
		return func(r *http.Request) edge.Target {
			return edge.Target{Kind: edge.TargetSandbox, Sandbox: r.PathValue("id")}
		}
	}
	return nil
}

// adapt turns a route's handler into an http.Handler (edge.Adapt).
func (s *Server) adapt(h func(*Server, http.ResponseWriter, *http.Request) error) http.Handler {
	return s.edge.Adapt(func(w http.ResponseWriter, r *http.Request) error { return h(s, w, r) })
}
