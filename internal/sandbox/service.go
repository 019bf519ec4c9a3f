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
	"github.com/warren-sh/warren/internal/runtime"
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
	// TemplateMemoryMB raises, per built-in template id, the memory a sandbox of that template
	// gets when it asks for none (never above MaxLimits.MemoryMB, never below
	// DefaultLimits.MemoryMB): the browser's Chromium alone takes ~480 MB of gVisor's
	// accounting at idle, which counts its mapped binary.
	TemplateMemoryMB map[string]int64
	// Admit, when set, may refuse a new sandbox for the team before anything is
	// allocated (the spending limit), and returns the quota to hold it to (the team's,
	// tightened by its plan). Without it the team's own quota applies.
	Admit func(ctx context.Context, team *domain.Team) (domain.Quota, error)
	// Meter, when set, meters every sandbox from its start to its end.
	Meter Meter
	// Recorder, when set, counts creates, starts, ends and lifecycle operations for
	// the metrics.
	Recorder Recorder
	// Room, when set, is node admission: it refuses a sandbox with limits l the host
	// has no room for (node.Room.Admit; a domain.NodeFull error), after the request is
	// validated and before anything is allocated.
	Room func(ctx context.Context, l domain.Limits) error
	// NodeName is this node's name in the node table: new sandboxes record it, and
	// recovery, sweeps and paused retention look only at this node's sandboxes (and
	// those without a node, from before the node table). "" is a lone node.
	NodeName string
	// NodeOpen, when set, refuses new sandboxes while the node takes none (drained; a
	// KindUnavailable error saying how to undrain it): creates, forks and warm pool
	// refills ask it first. Existing sandboxes, resumes included, go on.
	NodeOpen func(ctx context.Context) error
	// PausedRetention is how long a paused sandbox is kept before it is deleted with
	// its files (0: forever).
	PausedRetention time.Duration
	// Runtimes names the runtimes requests may use (the operator's --runtimes); it
	// must include the node's default. Empty offers only the default. The node may
	// hold other drivers, which then serve only recovery and teardown.
	Runtimes []string
	// SnapshotDir holds the files of snapshots (one directory per snapshot id, and
	// forks' own while they start); "" keeps no snapshots: forks and snapshots are
	// refused.
	SnapshotDir string
	// SnapshotKey identifies what a template's snapshot depends on besides the
	// template (the agent binary's hash): snapshots made with another are not used.
	// "" turns snapshot-started templates off.
	SnapshotKey string
	Now         func() time.Time
	Log         *slog.Logger
	// Life, when set, is the server's lifetime: once it is done (shutdown), the starts
	// in flight fail at once and remove what they made, and new ones fail. Nil: never.
	Life context.Context

	// dial connects to a sandbox's agent (dialAgent; tests give a fake).
	dial func(address, token string) *agent
	// running says whether a sandbox's root process (its handle's PID) still runs
	// (runtime.ProcessRunning; tests give a fake).
	running func(pid int) bool
}

// Service implements domain.SandboxService and domain.Router.
type Service struct {
	*pausing
	*launching
	*networking
	*homing
	cfg Config
	log *slog.Logger
	reg *registry
	// snaps saves sandboxes and restores new ones from what it saved (NewSnapshots).
	snaps *Snapshots
	// startMu is held shared by every create in flight and exclusively by Sweep, so the
	// sweeper never mistakes a half-started sandbox for a leftover.
	startMu sync.RWMutex
	// netMu serialises network policy updates (SetNetwork).
	netMu sync.Mutex
	// pool, when set, serves the creates that fit a warm sandbox (NewPool).
	pool *Pool
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
	if cfg.Life == nil {
		cfg.Life = context.Background()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.dial == nil {
		cfg.dial = dialAgent
	}
	if cfg.running == nil {
		cfg.running = runtime.ProcessRunning
	}
	if cfg.Recorder == nil {
		cfg.Recorder = nopRecorder{}
	}
	s := &Service{cfg: cfg, log: cfg.Log.With(logkey.Subsystem, "sandbox"), reg: newRegistry()}
	s.pausing = &pausing{s}
	s.launching = &launching{s}
	s.networking = &networking{s}
	s.homing = &homing{s}
	var err error
	if s.snaps, err = newSnapshots(s); err != nil {
		return nil, err
	}
	return s, nil
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

// Templates implements domain.SandboxService: the built-in templates (a team's own are
// listed by the template service).
func (s *Service) Templates(ctx context.Context) ([]*domain.Template, error) {
	return s.cfg.Store.ListTemplates(ctx, "")
}

// SetTimeout implements domain.SandboxService.
func (s *Service) SetTimeout(ctx context.Context, p domain.Principal, id string, d time.Duration) (*domain.Sandbox, error) {
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return nil, err
	}
	row, err := s.getHere(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if d < time.Second {
		return nil, domain.Invalid("timeout", "timeout must be at least 1 second")
	}
	if d > s.cfg.MaxTimeout {
		return nil, domain.Invalid("timeout", "timeout %s exceeds the maximum of %s", d, s.cfg.MaxTimeout)
	}
	sb, _, ok := s.reg.setEnd(id, s.cfg.Now().UTC().Add(d), d, func(time.Time) bool { return false })
	if !ok && row.State == domain.StatePaused {
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is paused; resume it with the timeout instead (POST /v1/sandboxes/%s/resume {\"timeout\": seconds})", id, id)
	}
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
	row, err := s.getHere(ctx, p, id)
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
	c := callIn(ctx, ls, agentCallTimeout)
	m, err := ls.agent.conn.Metrics(c.ctx)
	return m, c.end(err)
}

// Route implements domain.Router for the sandbox proxy.
func (s *Service) Route(ctx context.Context, id string) (*domain.Route, error) {
	if !domain.ValidSandboxID(id) {
		return nil, domain.NotFound("sandbox", id)
	}
	if r, ok := s.reg.route(id); ok {
		return r, nil
	}
	row, err := s.cfg.Store.GetSandbox(ctx, domain.AnyTeam, id)
	if err != nil {
		return nil, err
	}
	if row.State == domain.StatePaused && row.Lifecycle.AutoResume && s.onThisNode(row) == nil {
		// Traffic for a paused sandbox that asked for it resumes it (E2B's autoResume).
		if _, err := s.resume(ctx, id, 0); err != nil {
			s.log.Warn("resuming a sandbox for its traffic", logkey.SandboxID, id, logkey.Err, err)
		} else if r, ok := s.reg.route(id); ok {
			return r, nil
		}
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
	sb, err := s.getHere(ctx, p, id)
	if err != nil {
		return nil, err
	}
	ls, ending, ok := s.reg.get(id)
	if sb.State == domain.StatePaused {
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is paused; resume it (POST /v1/sandboxes/%s/resume) and try again", id, id)
	}
	if !ok || sb.State != domain.StateRunning {
		reason := ""
		if sb.EndReason != "" {
			reason = " (" + sb.EndReason + ")"
		}
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is %s%s; create a new one", id, sb.State, reason)
	}
	if ending {
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is being stopped or paused; try again once it is done", id)
	}
	return ls, nil
}

// Running returns copies of the running sandboxes this service tracks (not those being
// ended), for the meter.
func (s *Service) Running(context.Context) ([]*domain.Sandbox, error) { return s.reg.rows(), nil }

// Live returns the number of running sandboxes this service tracks.
func (s *Service) Live() int { return s.reg.count() }

// KillAll ends every running sandbox and removes every paused one (used by tests and
// by 'serve --kill-on-exit'). It first waits (within ctx) for the starts in flight to
// finish, so a sandbox still starting is not left behind: with Config.Life done they
// fail at once and remove what they made (a resume finishes and is then ended).
func (s *Service) KillAll(ctx context.Context) error {
	var errs []error
	if err := lockWithin(ctx, &s.startMu); err != nil {
		errs = append(errs, fmt.Errorf("waiting for the sandboxes still starting: %w", err))
	} else {
		defer s.startMu.Unlock()
	}
	for _, ls := range s.reg.snapshot() {
		if err := s.end(ctx, ls.sb.ID, "killed", "shutdown"); err != nil && !domain.IsKind(err, domain.KindNotFound) {
			errs = append(errs, err)
		}
	}
	for cursor := ""; ; {
		page, next, err := s.cfg.Store.ListSandboxes(ctx, domain.SandboxFilter{TeamID: domain.AnyTeam,
			States: []domain.SandboxState{domain.StatePaused}, Nodes: s.nodeScope(), Cursor: cursor, Limit: 500})
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		for _, sb := range page {
			if err := s.discardPaused(ctx, sb, "killed", "shutdown"); err != nil {
				errs = append(errs, err)
			}
		}
		if cursor = next; next == "" {
			break
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

// lockWithin takes mu exclusively, or gives up when ctx is done (then mu is unlocked
// by itself once it is taken).
func lockWithin(ctx context.Context, mu *sync.RWMutex) error {
	locked := make(chan struct{})
	go func() { mu.Lock(); close(locked) }()
	select {
	case <-locked:
		return nil
	case <-ctx.Done():
		go func() { <-locked; mu.Unlock() }()
		return ctx.Err()
	}
}

// startContext bounds a start by d and by the service's lifetime (Config.Life), but
// not by ctx: a start must finish (or clean up) even if the client goes away mid-way.
func startContext(life, ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	stop := context.AfterFunc(life, cancel)
	return sctx, func() { stop(); cancel() }
}
