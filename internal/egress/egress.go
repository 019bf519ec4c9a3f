// Package egress enforces sandboxes' domain rules on the node: a transparent TCP proxy
// that learns where a connection goes from its TLS server name or HTTP Host, decides
// with the sandbox's network policy and dials the name itself, and a DNS resolver that
// Warren controls. The node's nftables table (internal/network) redirects to them: all
// TCP of sandboxes whose policy has domain rules goes to the proxy, and the DNS traffic
// (UDP and TCP port 53) of every sandbox with internet access goes to the resolver.
//
// Both listen on all of the host's addresses on ports of their own; a redirected
// connection arrives at the host side of the sandbox's veth. Connections from anywhere
// else are refused (the proxy knows sandboxes by their address; the resolver answers
// only the sandbox pool).
package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// Recorder counts decisions (warren_egress_decisions_total{action,kind}); action is
// "allow" or "deny", kind one of the Kind constants.
type Recorder interface {
	Decision(action, kind string)
}

type noRecorder struct{}

func (noRecorder) Decision(string, string) {}

// Redirector turns the redirection of a sandbox's TCP to the proxy on or off
// (network.Manager implements it).
type Redirector interface {
	Redirect(ctx context.Context, addr netip.Addr, on bool) error
}

// Config configures a Service.
type Config struct {
	// ProxyPort and DNSPort are the ports the proxy and the resolver listen on, on all
	// addresses; 0 picks free ones.
	ProxyPort, DNSPort int
	// Upstreams are the name servers the resolver forwards to and the proxy resolves
	// names with (host:port). Empty means the host's resolv.conf.
	Upstreams []string
	// Pool is the sandbox address pool: the resolver answers it only.
	Pool netip.Prefix
	// Deny is the node's deny list: the proxy never dials into it, whatever a policy
	// or a DNS answer says.
	Deny []netip.Prefix
	// MaxConnsPerSandbox bounds a sandbox's proxied connections at once (default 256).
	MaxConnsPerSandbox int
	// IdleTimeout ends a proxied connection that moved no byte for this long (default
	// 5 minutes).
	IdleTimeout time.Duration
	// PeekFirst and PeekTotal bound the wait for the client's first bytes and for a
	// whole ClientHello or request head (defaults 1 s and 3 s).
	PeekFirst, PeekTotal time.Duration
	// DialTimeout bounds a dial of the destination (default 10 s).
	DialTimeout time.Duration
	Metrics     Recorder
	Log         *slog.Logger
}

// sandbox is what the service knows of one sandbox address.
type sandbox struct {
	id      string
	policy  domain.NetworkPolicy
	proxied bool
	conns   int // proxied connections open; Preconditions: Service.mu held
}

// Service is the node's egress proxy and resolver. Safe for concurrent use.
type Service struct {
	cfg   Config
	log   *slog.Logger
	guard *guard
	up    *upstreams
	redir Redirector

	mu        sync.Mutex
	sandboxes map[netip.Addr]*sandbox

	ln      net.Listener
	dns     *resolver
	conns   sync.WaitGroup
	closing chan struct{}
	open    map[net.Conn]struct{} // Preconditions: mu held
}

// New checks cfg, opens the listeners and starts serving. Close stops it.
func New(cfg Config) (*Service, error) {
	if !cfg.Pool.IsValid() {
		return nil, errors.New("egress: the sandbox pool is required")
	}
	if len(cfg.Upstreams) == 0 {
		cfg.Upstreams = HostUpstreams("/etc/resolv.conf")
	}
	if cfg.MaxConnsPerSandbox <= 0 {
		cfg.MaxConnsPerSandbox = 256
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	if cfg.PeekFirst <= 0 {
		cfg.PeekFirst = time.Second
	}
	if cfg.PeekTotal <= 0 {
		cfg.PeekTotal = 3 * time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noRecorder{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		cfg:       cfg,
		log:       cfg.Log.With(logkey.Subsystem, "egress"),
		guard:     &guard{deny: cfg.Deny, pool: cfg.Pool.Masked()},
		up:        &upstreams{servers: cfg.Upstreams, timeout: dnsTimeout},
		sandboxes: map[netip.Addr]*sandbox{},
		closing:   make(chan struct{}),
		open:      map[net.Conn]struct{}{},
	}
	ln, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", cfg.ProxyPort))
	if err != nil {
		return nil, fmt.Errorf("egress proxy: listening on TCP port %d: %w (choose another with --egress-proxy-port, or 0 for any free port)", cfg.ProxyPort, err)
	}
	s.ln = ln
	s.dns, err = newResolver(s, cfg.DNSPort)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s.conns.Add(1)
	go s.serve()
	return s, nil
}

// SetRedirector gives the service the node's network, which redirects the TCP of
// sandboxes with domain rules (Preconditions: before the first Apply). Without one
// nothing is redirected (tests drive the proxy directly).
func (s *Service) SetRedirector(r Redirector) { s.redir = r }

// ProxyPort and DNSPort are the ports the service listens on.
func (s *Service) ProxyPort() int { return s.ln.Addr().(*net.TCPAddr).Port }
func (s *Service) DNSPort() int   { return s.dns.port }

// Apply sets the policy of the sandbox at addr (replacing any earlier one; connections
// already open keep going, new ones follow the new policy) and redirects its TCP to the
// proxy when the policy has domain rules.
func (s *Service) Apply(ctx context.Context, addr netip.Addr, id string, p domain.NetworkPolicy) error {
	proxied := p.HasDomains()
	s.mu.Lock()
	sb := s.sandboxes[addr]
	if sb == nil || sb.id != id {
		sb = &sandbox{id: id}
		s.sandboxes[addr] = sb
	}
	was := sb.proxied
	sb.policy, sb.proxied = p, proxied
	s.mu.Unlock()
	if s.redir != nil && (proxied || was) {
		if err := s.redir.Redirect(ctx, addr, proxied); err != nil {
			return fmt.Errorf("redirecting sandbox %s's TCP to the egress proxy: %w", id, err)
		}
	}
	return nil
}

// Remove forgets the sandbox at addr and ends its redirection (a failure is logged:
// the network's teardown removes the redirection with the sandbox's address anyway).
func (s *Service) Remove(ctx context.Context, addr netip.Addr) {
	s.mu.Lock()
	sb := s.sandboxes[addr]
	delete(s.sandboxes, addr)
	s.mu.Unlock()
	if sb != nil && sb.proxied && s.redir != nil {
		if err := s.redir.Redirect(ctx, addr, false); err != nil {
			s.log.Error("ending a sandbox's egress redirection", logkey.SandboxID, sb.id, logkey.Err, err)
		}
	}
}

// lookup returns the sandbox at addr (id and policy), ok false when none is known.
func (s *Service) lookup(addr netip.Addr) (id string, p domain.NetworkPolicy, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb := s.sandboxes[addr]
	if sb == nil {
		return "", domain.NetworkPolicy{}, false
	}
	return sb.id, sb.policy, true
}

// Close stops the listeners, ends the proxied connections and waits for them.
func (s *Service) Close() error {
	close(s.closing)
	err := s.ln.Close()
	s.dns.close()
	s.mu.Lock()
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.conns.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// decided counts a decision and logs a denied one.
func (s *Service) decided(allow bool, kind, id string, attrs ...any) {
	action := "allow"
	if !allow {
		action = "deny"
	}
	s.cfg.Metrics.Decision(action, kind)
	if !allow {
		s.log.Info("egress denied", append([]any{logkey.SandboxID, id, "kind", kind}, attrs...)...)
	}
}
