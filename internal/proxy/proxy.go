// Package proxy is the sandbox traffic proxy: it forwards HTTP, streaming and
// WebSocket traffic from clients to a port inside a sandbox.
//
// A request names its sandbox and port either with the E2B routing headers
// (E2b-Sandbox-Id and E2b-Sandbox-Port, what the SDKs send through E2B_SANDBOX_URL)
// or with a Host of the form <port>-<sandboxID>.<domain>. The proxy answers the
// way E2B's own proxy does where the SDKs depend on it (E2B protocol notes §1.3):
// a dead or unknown sandbox is a 502 with a fixed JSON body, so is a running
// sandbox with nothing listening on the port.
//
// Authentication is per sandbox, not per team: the agent port carries the agent's
// X-Access-Token (the agent enforces it; the proxy rejects a wrong one early); the
// template's private ports (the code interpreter's 49999, which runs any code it is
// sent and has no authentication of its own) need that access token or the sandbox's
// traffic token (E2B-Traffic-Access-Token, domain.PortToken), whatever the sandbox's
// traffic setting; and sandboxes created without public traffic require the traffic
// token on every other port. A sandbox id is not a secret (it is in preview URLs and
// logs), so nothing but these tokens opens a port that is not public.
package proxy

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// Header names the proxy reads. Go canonicalises header keys, so matching is
// case-insensitive.
const (
	HeaderSandboxID    = "E2b-Sandbox-Id"
	HeaderSandboxPort  = "E2b-Sandbox-Port"
	HeaderTrafficToken = "E2b-Traffic-Access-Token"
	HeaderAccessToken  = "X-Access-Token"
)

// DefaultAgentPort is the port of the in-sandbox agent (envd).
const DefaultAgentPort = 49983

// Config configures a Proxy. Zero values mean the defaults.
type Config struct {
	// Domain is the sandbox domain, e.g. "localhost:3001" or "sandbox.example.com";
	// hosts look like <port>-<sandboxID>.<domain>. It is used in error messages only:
	// any suffix is accepted, since users may point their own DNS at the proxy.
	Domain string
	// DialTimeout bounds connecting to the sandbox port (default 5s). Nothing else
	// is timed: streams live as long as both ends keep them open.
	DialTimeout time.Duration
	// Transport replaces the upstream transport (tests). It should not decompress
	// responses or follow redirects.
	Transport http.RoundTripper
	// MaxBufferedBytes caps the request bodies held in memory at once across requests
	// (default 64 MiB): see Proxy.ServeHTTP.
	MaxBufferedBytes int64
	// AgentPort is the agent's port (default 49983).
	AgentPort int
	// Metrics, when set, counts the requests by status and the bytes carried.
	Metrics Metrics
}

// maxBufferedBody is the largest request body read whole before forwarding.
const maxBufferedBody = 1 << 20

// defaultMaxBufferedBytes is Config.MaxBufferedBytes's default: 64 bodies of the
// largest buffered size at once.
const defaultMaxBufferedBytes = 64 << 20

// bufferBusyRetryAfter is the Retry-After of a request refused because the proxy holds
// as many request bodies as it may.
const bufferBusyRetryAfter = "1"

// Proxy is an http.Handler forwarding requests to sandbox ports.
type Proxy struct {
	router domain.Router
	log    *slog.Logger
	cfg    Config
	rp     *httputil.ReverseProxy
	// addrs maps a sandbox id to its address when the proxy's own transport is used:
	// connections are then pooled per sandbox id and address, not per address alone,
	// so a keep-alive connection to a killed sandbox is never reused for a new sandbox
	// that was given the same address, nor one to a paused sandbox's old address for
	// the sandbox resumed at another.
	addrs sync.Map
	keyed bool
	// buffered is the bytes of request bodies held now; at most cfg.MaxBufferedBytes.
	buffered atomic.Int64
}

var _ http.Handler = (*Proxy)(nil)

// target is where one request goes; it travels to Rewrite and ErrorHandler in
// the request context.
type target struct {
	id   string
	port int
	ip   string // the sandbox's address
	addr string // host:port
}

type targetKey struct{}

// New returns a proxy resolving sandboxes with router. A nil log discards.
func New(router domain.Router, log *slog.Logger, cfg Config) *Proxy {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.MaxBufferedBytes <= 0 {
		cfg.MaxBufferedBytes = defaultMaxBufferedBytes
	}
	if cfg.AgentPort == 0 {
		cfg.AgentPort = DefaultAgentPort
	}
	p := &Proxy{router: router, log: log.With(logkey.Subsystem, "proxy"), cfg: cfg}
	tr := cfg.Transport
	if tr == nil {
		tr = newTransport(cfg.DialTimeout, p.dialAddr)
		p.keyed = true
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:       p.rewrite,
		Transport:     tr,
		FlushInterval: -1, // flush every write: Connect streams, NDJSON, SSE
		ErrorHandler:  p.upstreamError,
		ErrorLog:      slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	return p
}

// newTransport is the upstream transport: no environment proxy (sandbox
// addresses are private), no transparent gzip (the client's Accept-Encoding and
// the backend's Content-Encoding pass as they are), and no timeouts beyond the
// dial, so long-lived streams are not cut.
func newTransport(dialTimeout time.Duration, dialAddr func(string) (string, error)) *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			a, err := dialAddr(addr)
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, network, a)
		},
		DisableCompression:  true,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		// A sandbox's answer headers are read whole; bodies are streamed, never held.
		MaxResponseHeaderBytes: 1 << 20,
	}
}

// Handler returns the proxy as an http.Handler.
func (p *Proxy) Handler() http.Handler { return p }

// ServeHTTP routes, authorises and forwards one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.cfg.Metrics == nil {
		p.serve(w, r)
		return
	}
	p.counted(w, r)
}

// serve is ServeHTTP without the metrics.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	forwarding := false
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler || forwarding {
			// Part of a response may be on the wire: abort the connection so the
			// client cannot mistake a truncated body for a whole one.
			panic(http.ErrAbortHandler)
		}
		p.log.Error("proxy panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		writeJSON(w, http.StatusInternalServerError, errorBody{Code: 500, Message: "internal proxy error"})
	}()

	id, port, err := p.parseTarget(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Code: 400, Message: err.Error()})
		return
	}
	agent := port == p.cfg.AgentPort
	if agent && isPreflight(r) {
		// The agent is CORS-open; answering here also serves browsers whose
		// preflight would otherwise race a sandbox lookup.
		preflight(w, r)
		return
	}

	route, err := p.router.Route(r.Context(), id)
	switch {
	case domain.IsKind(err, domain.KindNotFound):
		p.notFound(w, r, id)
		return
	case err != nil:
		p.log.Error("resolving sandbox", logkey.SandboxID, id, logkey.Err, err)
		writeJSON(w, http.StatusBadGateway, errorBody{Code: 502, Message: "cannot resolve the sandbox right now; try again"})
		return
	case route == nil || !route.Running || route.Address == "":
		p.addrs.Delete(id)
		p.notFound(w, r, id)
		return
	case !isIP(route.Address):
		// Fail closed: a sandbox's address is an IP the node gave it; anything else
		// would send the request to whatever a name resolves to.
		p.log.Error("sandbox route has no IP address", logkey.SandboxID, id, "address", route.Address)
		writeJSON(w, http.StatusBadGateway, errorBody{Code: 502, Message: "cannot resolve the sandbox right now; try again"})
		return
	}

	switch {
	case agent:
		if !accessTokenOK(r, route.AccessToken) {
			writeJSON(w, http.StatusUnauthorized, errorBody{Code: 401, Message: "invalid access token"})
			return
		}
	case slices.Contains(route.PrivatePorts, port):
		// A CORS preflight carries no credentials and runs nothing; the service answers it.
		if !isPreflight(r) && !privatePortOK(r, route) {
			writeJSON(w, http.StatusUnauthorized, errorBody{Code: 401, Message: fmt.Sprintf(
				"port %d of sandbox %s is private: send the sandbox's access token (envdAccessToken) in the %s header "+
					"or its traffic token (trafficAccessToken; traffic_token in /v1) in the %s header; "+
					"both are given to callers with the sandboxes:write scope when they create or connect to the sandbox",
				port, id, HeaderAccessToken, "E2B-Traffic-Access-Token")})
			return
		}
	case route.TrafficToken != "" && !tokenEqual(r.Header.Get(HeaderTrafficToken), route.TrafficToken):
		writeJSON(w, http.StatusForbidden, errorBody{Code: 403, Message: "this sandbox's ports are private: send its traffic access token in the E2B-Traffic-Access-Token header"})
		return
	}

	t := &target{id: id, port: port, ip: route.Address, addr: net.JoinHostPort(route.Address, strconv.Itoa(port))}
	if p.keyed {
		p.addrs.Store(id, route.Address) // until it is paused and resumed elsewhere
	}
	ctx := context.WithValue(r.Context(), targetKey{}, t)
	if route.Done != nil {
		// A request (a stream, say) into a sandbox that stops or pauses ends with it:
		// its address goes away with no reset, and the connection would hang until TCP
		// gives up, minutes later.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-route.Done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	r = r.WithContext(ctx)
	// HTTP/1.x handlers are half duplex: once the response starts, the request body can
	// no longer be read. A backend may answer before the transport has finished sending a
	// body (Connect streams answer at once), which would cut the request. Small bodies
	// are therefore read whole before forwarding; large ones (uploads) are streamed, and
	// their backends read them before answering. (EnableFullDuplex is not used: after an
	// upstream failure it lets the transport and the server read the connection at once.)
	// The bodies held at once are bounded (Config.MaxBufferedBytes). Over the bound a
	// request is refused with 503 and Retry-After rather than streamed: streaming would
	// bring back the cut requests buffering is for, while clients retry a 503.
	if r.Body != nil && r.ContentLength >= 0 && r.ContentLength <= maxBufferedBody {
		if !p.reserveBuffer(r.ContentLength) {
			p.log.Debug("request bodies held at the proxy's bound; refusing", logkey.SandboxID, id, "max_buffered_bytes", p.cfg.MaxBufferedBytes)
			w.Header().Set("Retry-After", bufferBusyRetryAfter)
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Code: 503, Message: "the proxy is holding as many request bodies as it may; retry in a second"})
			return
		}
		defer p.buffered.Add(-r.ContentLength)
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBufferedBody+1))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Code: 400, Message: "reading the request body: " + err.Error()})
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	} else {
		r.Body = UpstreamBody(r.Body)
	}
	forwarding = true
	p.rp.ServeHTTP(w, r)
}

// reserveBuffer takes n bytes of the buffered-body budget, or reports that it is spent.
func (p *Proxy) reserveBuffer(n int64) bool {
	for {
		cur := p.buffered.Load()
		if cur+n > p.cfg.MaxBufferedBytes {
			return false
		}
		if p.buffered.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// errUnknownAddress fails a dial whose sandbox address the proxy does not know (the
// sandbox stopped between routing and dialing, say): the proxy never hands a sandbox id
// to the resolver, so no DNS name can stand in for a sandbox.
var errUnknownAddress = errors.New("the sandbox's address is not known (it may have stopped)")

// poolHost is the pool key's host for sandbox id at addr: "<id>-<address in hex>".
func poolHost(id, addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return id
	}
	return id + "-" + hex.EncodeToString(a.AsSlice())
}

// dialAddr turns the pool key "<sandbox id>-<address in hex>:<port>" back into
// "<address>:<port>". It dials only IP addresses, and only the address the sandbox has
// now: a key whose id has no known address, or another, fails closed.
func (p *Proxy) dialAddr(key string) (string, error) {
	host, port, err := net.SplitHostPort(key)
	if err != nil {
		return "", errUnknownAddress
	}
	i := strings.LastIndexByte(host, '-')
	if i < 0 {
		return "", errUnknownAddress
	}
	raw, err := hex.DecodeString(host[i+1:])
	addr, ok := netip.AddrFromSlice(raw)
	if err != nil || !ok {
		return "", errUnknownAddress
	}
	if a, ok := p.addrs.Load(host[:i]); ok && a.(string) == addr.String() {
		return net.JoinHostPort(addr.String(), port), nil
	}
	return "", errUnknownAddress
}

func isIP(s string) bool { _, err := netip.ParseAddr(s); return err == nil }

// rewrite points the outbound request at the sandbox and drops the headers
// meant for the proxy. The Host header becomes the sandbox address; incoming
// X-Forwarded-* headers are replaced, not trusted.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	t := pr.In.Context().Value(targetKey{}).(*target)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = t.addr
	if p.keyed {
		pr.Out.URL.Host = net.JoinHostPort(poolHost(t.id, t.ip), strconv.Itoa(t.port))
	}
	pr.Out.Host = t.addr
	pr.SetXForwarded()
	h := pr.Out.Header
	h.Del(HeaderSandboxID)
	h.Del(HeaderSandboxPort)
	h.Del(HeaderTrafficToken)
}

// upstreamError answers when forwarding failed before a response started.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	t, _ := r.Context().Value(targetKey{}).(*target)
	if r.Context().Err() != nil {
		// The client went away; nobody reads this answer.
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	if t != nil && isDialError(err) {
		if wantsHTML(r) {
			writeHTML(w, "Port not open", fmt.Sprintf("Sandbox %s is running but nothing listens on port %d.", t.id, t.port))
			return
		}
		writeJSON(w, http.StatusBadGateway, portClosedBody{
			Message: "The sandbox is running but port is not open", SandboxID: t.id, Port: t.port, Code: 502,
		})
		return
	}
	p.log.Warn("forwarding to sandbox", logkey.SandboxID, targetID(t), "method", r.Method, "path", r.URL.Path, logkey.Err, err)
	writeJSON(w, http.StatusBadGateway, errorBody{Code: 502, Message: "the sandbox port did not answer properly"})
}

func targetID(t *target) string {
	if t == nil {
		return ""
	}
	return t.id
}

// isDialError reports whether err is a failure to connect (refused, unreachable,
// timed out), as opposed to a failure after the connection was made.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (p *Proxy) notFound(w http.ResponseWriter, r *http.Request, id string) {
	if wantsHTML(r) {
		writeHTML(w, "Sandbox not found", fmt.Sprintf("Sandbox %s was not found: it may have timed out or been killed.", id))
		return
	}
	writeJSON(w, http.StatusBadGateway, notFoundBody{SandboxID: id, Message: "The sandbox was not found", Code: 502})
}

// SandboxOf returns the sandbox id r is addressed to ("" when it names none validly),
// for a front that sends other nodes' sandbox traffic there.
func (p *Proxy) SandboxOf(r *http.Request) string {
	id, _, err := p.parseTarget(r)
	if err != nil {
		return ""
	}
	return id
}

// parseTarget finds the sandbox id and port: from the routing headers when both
// are present, otherwise from the Host.
func (p *Proxy) parseTarget(r *http.Request) (string, int, error) {
	id, portStr := r.Header.Get(HeaderSandboxID), r.Header.Get(HeaderSandboxPort)
	if id == "" || portStr == "" {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		label, _, _ := strings.Cut(strings.ToLower(host), ".")
		var ok bool
		portStr, id, ok = strings.Cut(label, "-")
		if !ok {
			return "", 0, fmt.Errorf("cannot tell which sandbox this request is for: address it as %s, or send the %s and %s headers",
				p.hostPattern(), HeaderSandboxID, HeaderSandboxPort)
		}
	}
	if !validID(id) {
		return "", 0, fmt.Errorf("invalid sandbox id %q: ids are 20 characters of [a-z0-9]; address a sandbox as %s", id, p.hostPattern())
	}
	port, ok := parsePort(portStr)
	if !ok {
		return "", 0, fmt.Errorf("invalid port %q: ports are 1 to 65535; address a sandbox as %s", portStr, p.hostPattern())
	}
	return id, port, nil
}

func (p *Proxy) hostPattern() string {
	d := p.cfg.Domain
	if d == "" {
		d = "<domain>"
	}
	return "<port>-<sandboxID>." + d
}

func validID(id string) bool {
	if len(id) != 20 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func parsePort(s string) (int, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n >= 1 && n <= 65535
}

// accessTokenOK is the proxy's defence in depth for the agent port: a request
// that presents a wrong X-Access-Token is refused, except on /health and /files,
// which accept signed URLs and are left to the agent. A missing token is also
// left to the agent.
func accessTokenOK(r *http.Request, want string) bool {
	if want == "" || r.URL.Path == "/health" || r.URL.Path == "/files" {
		return true
	}
	for _, got := range r.Header.Values(HeaderAccessToken) {
		if !tokenEqual(got, want) {
			return false
		}
	}
	return true
}

// privatePortOK reports whether a request to one of the template's private ports
// carries the sandbox's access token (every X-Access-Token value right) or its traffic
// token. A sandbox without tokens opens its private ports to nobody.
func privatePortOK(r *http.Request, route *domain.Route) bool {
	if at := r.Header.Values(HeaderAccessToken); len(at) > 0 && route.AccessToken != "" {
		ok := true
		for _, got := range at {
			ok = ok && tokenEqual(got, route.AccessToken)
		}
		if ok {
			return true
		}
	}
	want := route.PortToken()
	return want != "" && tokenEqual(r.Header.Get(HeaderTrafficToken), want)
}

func tokenEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
