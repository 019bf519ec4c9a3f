// Package forward routes requests between the servers of a cluster: a control replica
// (or a node) sends a sandbox's requests and proxied traffic to the node that runs it, a
// create to the node placement picks and a template build to the build node; a node's
// internal listener admits only requests that carry the cluster secret.
//
// Forwarding is HTTP reverse proxying of the whole request, streams and WebSockets
// included: the node serves it with the same handlers as a lone server, authenticating
// the caller's own credentials against the shared database, so a control never vouches
// for anyone and a node trusts a request only as far as its API key goes. The cluster
// secret proves only that the request came through a control (sandboxes cannot reach
// a node's addresses: its nftables table denies them).
package forward

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/proxy"
)

// The headers of forwarded requests.
const (
	// HeaderSecret carries the cluster secret; a node's internal listener strips it.
	HeaderSecret = "X-Warren-Cluster-Secret"
	// HeaderProxied marks sandbox traffic (for the node's proxy, not its API).
	HeaderProxied = "X-Warren-Proxied"
	// HeaderVia names the server that forwarded the request ("control" for a control
	// replica), for the node's logs.
	HeaderVia = "X-Warren-Via"
)

// MinSecretLen is the shortest cluster secret accepted.
const MinSecretLen = 32

// Store is what forwarding reads: where sandboxes run, the nodes, and the templates and
// snapshots that creates name.
type Store interface {
	GetSandbox(ctx context.Context, teamID, id string) (*domain.Sandbox, error)
	GetNode(ctx context.Context, name string) (*domain.Node, error)
	ListNodes(ctx context.Context) ([]*domain.Node, error)
	GetTemplate(ctx context.Context, teamID, id string) (*domain.Template, error)
	GetSnapshot(ctx context.Context, teamID, ref string) (*domain.Snapshot, error)
}

// Config configures a Forwarder.
type Config struct {
	Store Store
	// Self is this server's node name; "" on a control replica (it runs no sandbox).
	Self string
	// Secret is the cluster secret (at least MinSecretLen bytes).
	Secret string
	// Place makes creates and template builds go to the nodes (a control replica);
	// false serves them here (a node with an API of its own: --role all).
	Place bool
	// MaxCreateBody is how much of a create's body is read to place it (default 1 MiB,
	// the APIs' own JSON cap: a longer body is refused by the node anyway).
	MaxCreateBody int64
	// DialTimeout bounds connecting to a node (default 3 s): a dead node is a clear
	// 503 soon, not a hang.
	DialTimeout time.Duration
	Log         *slog.Logger
}

// Forwarder forwards requests to the nodes (edge.Forwarder, and Proxy for sandbox
// traffic). Create it with New; it is safe for concurrent use.
type Forwarder struct {
	cfg       Config
	transport *http.Transport
	nodes     nodeCache
	routes    routeCache
	placed    placements
}

var _ edge.Forwarder = (*Forwarder)(nil)

// New returns a Forwarder.
func New(cfg Config) (*Forwarder, error) {
	if cfg.Store == nil {
		return nil, errors.New("forward: a Store is required")
	}
	if err := CheckSecret(cfg.Secret); err != nil {
		return nil, err
	}
	if cfg.MaxCreateBody <= 0 {
		cfg.MaxCreateBody = 1 << 20
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 3 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	f := &Forwarder{cfg: cfg, transport: &http.Transport{
		DialContext: d.DialContext, MaxIdleConns: 256, MaxIdleConnsPerHost: 64,
		IdleConnTimeout: 90 * time.Second, DisableCompression: true,
	}}
	f.nodes.ttl, f.routes.ttl = 2*time.Second, 30*time.Second
	return f, nil
}

// CheckSecret says what is wrong with a cluster secret, if anything.
func CheckSecret(s string) error {
	if len(s) < MinSecretLen {
		return fmt.Errorf("the cluster secret must be at least %d characters (it has %d): generate one with `openssl rand -hex 32` and give every control and node the same (WARREN_CLUSTER_SECRET or --cluster-secret-file)", MinSecretLen, len(s))
	}
	return nil
}

// Close drops the idle connections to the nodes.
func (f *Forwarder) Close() { f.transport.CloseIdleConnections() }

// Forward implements edge.Forwarder.
func (f *Forwarder) Forward(w http.ResponseWriter, r *http.Request, p domain.Principal, t edge.Target) (bool, error) {
	switch t.Kind {
	case edge.TargetSandbox:
		return f.forwardSandbox(w, r, p, t.Sandbox)
	case edge.TargetCreate:
		if !f.cfg.Place {
			return false, nil
		}
		return true, f.create(w, r, p)
	case edge.TargetSnapshot:
		return f.forwardSnapshot(w, r, p, t.Snapshot)
	case edge.TargetBuild:
		if !f.cfg.Place {
			return false, nil
		}
		n, err := f.buildNode(r.Context())
		if err != nil {
			return false, err
		}
		return true, f.send(w, r, n, false)
	}
	return false, nil
}

// forwardSandbox sends r to the node of sandbox id (of p's team) when that is another
// node; an unknown sandbox and this node's are served here. An ended sandbox is served
// here by a node (from the database, as a lone server would), and by its node for a
// control (which has none of a sandbox's services); its node gone, a control says the
// sandbox has ended.
func (f *Forwarder) forwardSandbox(w http.ResponseWriter, r *http.Request, p domain.Principal, id string) (bool, error) {
	if !domain.ValidSandboxID(id) || p.TeamID == "" {
		return false, nil
	}
	control := f.cfg.Self == ""
	sb, err := f.cfg.Store.GetSandbox(r.Context(), p.TeamID, id)
	switch {
	case domain.IsKind(err, domain.KindNotFound) && control:
		// A control has none of a sandbox's services: it answers as a node would.
		return false, domain.NotFound("sandbox", id)
	case domain.IsKind(err, domain.KindNotFound):
		return false, nil
	case err != nil:
		return false, err
	case control && sb.Node == "" && !sb.State.Terminal():
		return false, domain.Errorf(domain.KindUnavailable, "sandbox %q has no node recorded (a row from before the node table); reach it through the server that runs it", id)
	case control && sb.Node == "":
		return false, domain.Errorf(domain.KindConflict, "sandbox %q is not running: it is %s (%s); create a new one", id, sb.State, sb.EndReason)
	case sb.Node == "" || sb.Node == f.cfg.Self || (sb.State.Terminal() && !control):
		return false, nil
	}
	n, err := f.node(r.Context(), sb.Node, id)
	if err != nil && sb.State.Terminal() {
		return false, domain.Errorf(domain.KindConflict, "sandbox %q is not running: it is %s (%s); create a new one", id, sb.State, sb.EndReason)
	}
	if err != nil {
		return false, err
	}
	if err := f.send(w, r, n, false); err != nil && sb.State.Terminal() {
		return false, domain.Errorf(domain.KindConflict, "sandbox %q is not running: it is %s (%s); create a new one", id, sb.State, sb.EndReason)
	} else if err != nil {
		return false, err
	}
	return true, nil
}

// forwardSnapshot sends the deletion of p's team's snapshot ref to the node that holds
// its files (the node of the sandbox it was taken of) when that is another node and it
// answers; otherwise it is served here (the row deleted; the holder removes files
// without a row when it next starts).
func (f *Forwarder) forwardSnapshot(w http.ResponseWriter, r *http.Request, p domain.Principal, ref string) (bool, error) {
	if ref == "" || len(ref) > 128 || p.TeamID == "" {
		return false, nil
	}
	snap, err := f.cfg.Store.GetSnapshot(r.Context(), p.TeamID, ref)
	if err != nil {
		return false, nil // not a snapshot (E2B: maybe a template), or the local answer
	}
	sb, err := f.cfg.Store.GetSandbox(r.Context(), domain.AnyTeam, snap.SandboxID)
	if err != nil || sb.Node == "" || sb.Node == f.cfg.Self {
		return false, nil
	}
	n, err := f.node(r.Context(), sb.Node, snap.SandboxID)
	if err != nil {
		return false, nil
	}
	if err := f.send(w, r, n, false); err != nil {
		return false, err
	}
	return true, nil
}

// remote reports whether sb's requests go to another node.
func (f *Forwarder) remote(sb *domain.Sandbox) bool {
	return sb.Node != "" && sb.Node != f.cfg.Self && !sb.State.Terminal()
}

// node returns the node name, if it can take requests now; id names the sandbox the
// request is for ("" for placement).
func (f *Forwarder) node(ctx context.Context, name, id string) (*domain.Node, error) {
	n, err := f.nodes.get(ctx, f.cfg.Store, name)
	if domain.IsKind(err, domain.KindNotFound) {
		return nil, domain.Errorf(domain.KindUnavailable, "sandbox %s runs on node %q, which is not in the node table; try again shortly", id, name)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case n.State == domain.NodeDown:
		return nil, domain.Errorf(domain.KindUnavailable, "sandbox %s runs on node %q, which is down (no heartbeat since %s); its sandboxes are marked lost: create a new one",
			id, name, n.HeartbeatAt.UTC().Format(time.RFC3339))
	case n.Address == "":
		return nil, domain.Errorf(domain.KindUnavailable, "sandbox %s runs on node %q, which advertises no address (--advertise); ask the operator", id, name)
	}
	return n, nil
}

// send relays r to node n and its answer to w; proxied marks sandbox traffic. A node
// that does not answer is an *unreachable error (a 503; nothing written).
func (f *Forwarder) send(w http.ResponseWriter, r *http.Request, n *domain.Node, proxied bool) error {
	var failed error
	rp := &httputil.ReverseProxy{
		Transport:     f.transport,
		FlushInterval: -1, // streams (commands, logs, watches) go out as they come
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: n.Address})
			pr.Out.Host = pr.In.Host // the proxy routes by <port>-<id>.<domain>
			pr.SetXForwarded()
			pr.Out.Header.Set(HeaderSecret, f.cfg.Secret)
			via := f.cfg.Self
			if via == "" {
				via = "control"
			}
			pr.Out.Header.Set(HeaderVia, via)
			if proxied {
				pr.Out.Header.Set(HeaderProxied, "1")
			} else {
				pr.Out.Header.Del(HeaderProxied)
			}
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			failed = err
		},
		ErrorLog: slog.NewLogLogger(f.cfg.Log.Handler(), slog.LevelWarn),
	}
	r.Body = proxy.UpstreamBody(r.Body)
	rp.ServeHTTP(w, r)
	if failed == nil {
		return nil
	}
	if errors.Is(failed, context.Canceled) && r.Context().Err() != nil {
		return failed
	}
	f.nodes.forget(n.Name)
	f.cfg.Log.WarnContext(r.Context(), "forwarding to a node failed", logkey.Node, n.Name, "address", n.Address, logkey.Err, failed)
	return &unreachable{node: n.Name, err: failed}
}

// unreachable is a node that did not answer a forwarded request.
type unreachable struct {
	node string
	err  error
}

func (e *unreachable) Error() string {
	return fmt.Sprintf("node %q did not answer (%v); if it stays silent it is marked down within the node timeout and its sandboxes lost: try again shortly", e.node, e.err)
}

// Kind makes it a 503 at the edges.
func (e *unreachable) Unwrap() error {
	return &domain.Error{Kind: domain.KindUnavailable, Message: e.Error(), Err: e.err}
}

// dialFailed reports whether err is a failure to connect (nothing reached the node).
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// readBody reads up to max bytes of r's body and puts it back whole for the handler
// that forwards or serves it; whole is false when the body is longer.
func readBody(r *http.Request, max int64) (head []byte, whole bool, err error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true, nil
	}
	head, err = io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, false, domain.Invalid("body", "reading the request body: %v", err)
	}
	whole = int64(len(head)) <= max
	rest := r.Body
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), rest), rest}
	return head, whole, nil
}

// nodeCache keeps node rows for a short while: every forwarded request needs its
// node's address, and the table changes at heartbeat pace.
type nodeCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]cachedNode
}

type cachedNode struct {
	n  *domain.Node
	at time.Time
}

func (c *nodeCache) get(ctx context.Context, s Store, name string) (*domain.Node, error) {
	c.mu.Lock()
	e, ok := c.m[name]
	c.mu.Unlock()
	if ok && time.Since(e.at) < c.ttl {
		return e.n, nil
	}
	n, err := s.GetNode(ctx, name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 4096 {
		c.m = map[string]cachedNode{}
	}
	c.m[name] = cachedNode{n: n, at: time.Now()}
	return n, nil
}

func (c *nodeCache) forget(name string) {
	c.mu.Lock()
	delete(c.m, name)
	c.mu.Unlock()
}

// Internal is a node's internal listener's handler: GET /healthz and /readyz for
// anyone (probes), everything else only with the cluster secret, which it strips;
// sandbox traffic (HeaderProxied) goes to proxy, the rest to api.
func Internal(secret string, api, proxy http.Handler) http.Handler {
	want := []byte(secret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && (r.URL.Path == "/healthz" || r.URL.Path == "/readyz") && r.Header.Get(HeaderProxied) == "" {
			api.ServeHTTP(w, r)
			return
		}
		got := r.Header.Get(HeaderSecret)
		if len(want) == 0 || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"code":401,"message":"this is a Warren node's internal listener: only control replicas holding the cluster secret may call it; send API requests to a control replica"}`+"\n")
			return
		}
		r.Header.Del(HeaderSecret)
		if r.Header.Get(HeaderProxied) == "1" {
			r.Header.Del(HeaderProxied)
			proxy.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}
