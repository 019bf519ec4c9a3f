// Package sandbox runs sandboxes for the API edges.
//
// Service is a sandbox's life (domain.SandboxService): it validates requests, keeps the
// sandbox rows in the store, asks the node to start and stop sandboxes, ends them at
// their timeout, and after a restart re-attaches to the sandboxes that survived and
// reaps the rest. It keeps the registry of the running sandboxes.
//
// What happens inside a running sandbox has a type of its own, each finding the
// sandbox through the Service: Files (domain.FileService), Processes
// (domain.ProcessService and domain.PortLister), Code (domain.CodeService), Terminals
// (domain.TerminalService) and Logs (domain.LogService). The server wires each one
// into the APIs that serve it.
//
// The package sees the node, the store, the agents and the meter only through the
// interfaces in deps.go.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// Config configures the Service and the services that work inside its sandboxes.
type Config struct {
	Store Store
	Node  Node
	// DefaultTimeout is a sandbox's lifetime when the request gives none (300 s).
	DefaultTimeout time.Duration
	// MaxTimeout caps requested lifetimes (24 h).
	MaxTimeout time.Duration
	// ExecTimeout bounds a command that gives no timeout (10 min).
	ExecTimeout time.Duration
	// StartTimeout bounds starting a sandbox until its agent answers (60 s).
	StartTimeout  time.Duration
	DefaultLimits domain.Limits
	MaxLimits     domain.Limits
	// Admit, when set, may refuse a new sandbox for the team before anything is
	// allocated (the spending limit), and returns the quota to hold it to (the team's,
	// tightened by its plan). Without it the team's own quota applies.
	Admit func(ctx context.Context, team *domain.Team) (domain.Quota, error)
	// Meter, when set, meters every sandbox from its start to its end.
	Meter Meter
	// Room, when set, is node admission: it refuses a sandbox with limits l the host
	// has no room for (node.Room.Admit; a domain.NodeFull error), after the request is
	// validated and before anything is allocated.
	Room func(ctx context.Context, l domain.Limits) error
	// Runtimes names the runtimes requests may use (the operator's --runtimes); it
	// must include the node's default. Empty offers only the default. The node may
	// hold other drivers, which then serve only recovery and teardown.
	Runtimes []string
	Now      func() time.Time
	Log      *slog.Logger

	// dial connects to a sandbox's agent (dialAgent; tests give a fake).
	dial func(address, token string) *agent
}

// Service implements domain.SandboxService and domain.Router.
type Service struct {
	cfg Config
	log *slog.Logger
	reg *registry
	// startMu is held shared by every create in flight and exclusively by Sweep, so the
	// sweeper never mistakes a half-started sandbox for a leftover.
	startMu sync.RWMutex
}

var (
	_ domain.SandboxService = (*Service)(nil)
	_ domain.Router         = (*Service)(nil)
)

// New returns a Service. Call Recover before serving requests.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Node == nil {
		return nil, errors.New("sandbox: Store and Node are required")
	}
	if len(cfg.Node.Drivers()) == 0 {
		return nil, errors.New("sandbox: the node has no runtime driver")
	}
	if def := cfg.Node.Drivers()[0].Capabilities().Name; len(cfg.Runtimes) > 0 && !slices.Contains(cfg.Runtimes, def) {
		return nil, fmt.Errorf("sandbox: the default runtime %s is not among the enabled runtimes %s", def, strings.Join(cfg.Runtimes, ","))
	}
	for _, name := range cfg.Runtimes {
		if _, ok := cfg.Node.DriverFor(name); !ok {
			return nil, fmt.Errorf("sandbox: runtime %s is enabled but the node has no driver for it", name)
		}
	}
	if cfg.DefaultTimeout == 0 {
		cfg.DefaultTimeout = 300 * time.Second
	}
	if cfg.MaxTimeout == 0 {
		cfg.MaxTimeout = 24 * time.Hour
	}
	if cfg.ExecTimeout == 0 {
		cfg.ExecTimeout = 10 * time.Minute
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.dial == nil {
		cfg.dial = dialAgent
	}
	return &Service{cfg: cfg, log: cfg.Log.With(logkey.Subsystem, "sandbox"), reg: newRegistry()}, nil
}

// Get implements domain.SandboxService.
func (s *Service) Get(ctx context.Context, p domain.Principal, id string) (*domain.Sandbox, error) {
	if err := p.Need(domain.ScopeSandboxesRead); err != nil {
		return nil, err
	}
	return s.get(ctx, p, id)
}

// get returns a sandbox of the principal's team, without a scope check.
func (s *Service) get(ctx context.Context, p domain.Principal, id string) (*domain.Sandbox, error) {
	if !domain.ValidSandboxID(id) {
		return nil, domain.NotFound("sandbox", id)
	}
	return s.cfg.Store.GetSandbox(ctx, p.TeamID, id)
}

// List implements domain.SandboxService.
func (s *Service) List(ctx context.Context, p domain.Principal, f domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
	if err := p.Need(domain.ScopeSandboxesRead); err != nil {
		return nil, "", err
	}
	f.TeamID = p.TeamID
	return s.cfg.Store.ListSandboxes(ctx, f)
}

// Templates implements domain.SandboxService.
func (s *Service) Templates(ctx context.Context) ([]*domain.Template, error) {
	return s.cfg.Store.ListTemplates(ctx)
}

// SetTimeout implements domain.SandboxService.
func (s *Service) SetTimeout(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return nil, err
	}
	if _, err := s.get(ctx, p, id); err != nil {
		return nil, err
	}
	if d < time.Second {
		return nil, domain.Invalid("timeout", "timeout must be at least 1 second")
	}
	if d > s.cfg.MaxTimeout {
		return nil, domain.Invalid("timeout", "timeout %s exceeds the maximum of %s", d, s.cfg.MaxTimeout)
	}
	sb, _, ok := s.reg.setEnd(id, s.cfg.Now().UTC().Add(d), d, func(time.Time) bool { return false })
	if !ok {
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is not running; create a new one", id)
	}
	if err := s.cfg.Store.UpdateSandbox(ctx, &sb); err != nil {
		return nil, err
	}
	return &sb, nil
}

// Connect implements domain.SandboxService.
func (s *Service) Connect(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return nil, err
	}
	row, err := s.get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if d > s.cfg.MaxTimeout {
		return nil, domain.Invalid("timeout", "timeout %s exceeds the maximum of %s", d, s.cfg.MaxTimeout)
	}
	want := s.cfg.Now().UTC().Add(d)
	sb, changed, ok := s.reg.setEnd(id, want, d, func(current time.Time) bool { return d <= 0 || !want.After(current) })
	if !ok {
		return nil, domain.Errorf(domain.KindNotFound, "sandbox %q is not running (it is %s)", id, row.State)
	}
	if changed {
		if err := s.cfg.Store.UpdateSandbox(ctx, &sb); err != nil {
			return nil, err
		}
	}
	return &sb, nil
}

// Metrics implements domain.SandboxService.
func (s *Service) Metrics(ctx context.Context, p domain.Principal, id string) (*domain.SandboxMetrics, error) {
	ls, err := s.lookup(ctx, p, id, domain.ScopeSandboxesRead)
	if err != nil {
		return nil, err
	}
	return ls.agent.conn.Metrics(ctx)
}

// Route implements domain.Router for the sandbox proxy.
func (s *Service) Route(ctx context.Context, id string) (*domain.Route, error) {
	if !domain.ValidSandboxID(id) {
		return nil, domain.NotFound("sandbox", id)
	}
	if r, ok := s.reg.route(id); ok {
		return r, nil
	}
	if _, err := s.cfg.Store.GetSandbox(ctx, domain.AnyTeam, id); err != nil {
		return nil, err
	}
	return &domain.Route{SandboxID: id, Running: false}, nil
}

// lookup returns the running sandbox id of the principal's team, for the services
// that work inside it. Reading needs sandboxes:read; everything that changes or runs
// needs sandboxes:write.
func (s *Service) lookup(ctx context.Context, p domain.Principal, id string, scope domain.Scope) (*liveSandbox, error) {
	if err := p.Need(scope); err != nil {
		return nil, err
	}
	sb, err := s.get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	ls, ending, ok := s.reg.get(id)
	if !ok || sb.State != domain.StateRunning {
		reason := ""
		if sb.EndReason != "" {
			reason = " (" + sb.EndReason + ")"
		}
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is %s%s; create a new one", id, sb.State, reason)
	}
	if ending {
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is being stopped; create a new one", id)
	}
	return ls, nil
}

// Running returns copies of the running sandboxes this service tracks (not those being
// ended), for the meter.
func (s *Service) Running(context.Context) ([]*domain.Sandbox, error) { return s.reg.rows(), nil }

// Live returns the number of running sandboxes this service tracks.
func (s *Service) Live() int { return s.reg.count() }

// KillAll ends every running sandbox (used by tests and by 'serve --kill-on-exit').
func (s *Service) KillAll(ctx context.Context) error {
	var errs []error
	for _, ls := range s.reg.snapshot() {
		if err := s.end(ctx, ls.sb.ID, "killed"); err != nil && !domain.IsKind(err, domain.KindNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops the timers; running sandboxes keep running so a restarted server can
// re-attach to them, but the streams into them end. It waits for teardowns under way.
func (s *Service) Close() {
	s.reg.close(func(id string) error {
		return domain.Errorf(domain.KindUnavailable, "the server is shutting down; sandbox %s keeps running", id)
	})
}
