// Package sandbox is the sandbox service: it validates requests, keeps the sandbox rows
// in the store, asks the node to start and stop sandboxes, ends them at their timeout,
// and relays commands and files to the agent inside. After a restart it re-attaches to
// the sandboxes that survived and reaps the rest.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// Config configures the Service.
type Config struct {
	Store Store
	Node  Node
	// DefaultTimeout is a sandbox's lifetime when the request gives none (300 s).
	DefaultTimeout time.Duration
	// MaxTimeout caps requested lifetimes (24 h).
	MaxTimeout time.Duration
	// ExecTimeout bounds a command that gives no timeout (10 min).
	ExecTimeout time.Duration
	// StartTimeout bounds starting a sandbox until its agent answers (30 s).
	StartTimeout  time.Duration
	DefaultLimits domain.Limits
	MaxLimits     domain.Limits
	// Admit, when set, may refuse a new sandbox for the team before anything is
	// allocated (the spending limit), and returns the quota to hold it to (the team's,
	// tightened by its plan). Without it the team's own quota applies.
	Admit func(ctx context.Context, team *domain.Team) (domain.Quota, error)
	// Meter, when set, meters every sandbox from its start to its end.
	Meter Meter
	// Runtimes names the runtimes requests may use (the operator's --runtimes); it
	// must include the node's default. Empty offers only the default. The node may
	// hold other drivers, which then serve only recovery and teardown.
	Runtimes []string
	Now      func() time.Time
	Log      *slog.Logger

	// dial connects to a sandbox's agent (dialAgent; tests give a fake).
	dial func(address, token string) agent
}

// Service implements domain.SandboxService.
type Service struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	live     map[string]*liveSandbox // running sandboxes by id
	reserved map[int]bool            // address slots being started or torn down
	tearing  map[string]bool         // stopped sandboxes still being torn down
	nextSlot int                     // where the next slot search starts
	closed   bool
	wg       sync.WaitGroup
	// startMu is held shared by every create in flight and exclusively by Sweep, so the
	// sweeper never mistakes a half-started sandbox for a leftover.
	startMu sync.RWMutex
}

type liveSandbox struct {
	sb    *domain.Sandbox
	agent agent
	// privatePorts are the template's private ports, which the proxy opens only with a
	// token (see Route).
	privatePorts []int
	timer        *time.Timer
	ending       bool
	// ctx ends when the sandbox ends (or the service closes), with the reason as its
	// cause, so that commands and streams running in it end too (see whileLive).
	ctx    context.Context
	cancel context.CancelCauseFunc
}

var _ domain.SandboxService = (*Service)(nil)

// New returns a Service. Call Recover before serving requests.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Node == nil {
		return nil, errors.New("sandbox: Store and Node are required")
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
	return &Service{
		cfg: cfg, log: cfg.Log.With("subsystem", "sandbox"),
		live: map[string]*liveSandbox{}, reserved: map[int]bool{}, tearing: map[string]bool{},
	}, nil
}

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// allocSlot reserves the lowest free address slot.
func (s *Service) allocSlot(ctx context.Context) (int, error) {
	used, err := s.cfg.Store.UsedSlots(ctx)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	taken := make(map[int]bool, len(used)+len(s.reserved))
	for _, u := range used {
		taken[u] = true
	}
	for r := range s.reserved {
		taken[r] = true
	}
	// Round robin from the last slot given out: an address is reused as late as
	// possible, so nothing that still remembers a killed sandbox's address (a client's
	// keep-alive connection, a neighbour entry) meets its successor.
	n := s.cfg.Node.Slots()
	for k := 0; k < n; k++ {
		i := (s.nextSlot + k) % n
		if !taken[i] {
			s.reserved[i] = true
			s.nextSlot = (i + 1) % n
			return i, nil
		}
	}
	return 0, domain.Errorf(domain.KindUnavailable, "this node has no free sandbox addresses (%d in use); kill sandboxes or widen the address pool", len(taken))
}

func (s *Service) release(slot int) {
	s.mu.Lock()
	delete(s.reserved, slot)
	s.mu.Unlock()
}

// Create implements domain.SandboxService.
func (s *Service) Create(ctx context.Context, p domain.Principal, req domain.CreateSandbox) (*domain.Sandbox, error) {
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return nil, err
	}
	team, err := s.cfg.Store.GetTeam(ctx, p.TeamID)
	if err != nil {
		return nil, fmt.Errorf("reading team: %w", err)
	}
	quota := team.Quota
	if s.cfg.Admit != nil {
		if quota, err = s.cfg.Admit(ctx, team); err != nil {
			return nil, err
		}
	}
	if req.TemplateID == "" {
		req.TemplateID = "base"
	}
	tpl, err := s.cfg.Store.GetTemplate(ctx, req.TemplateID)
	if domain.IsKind(err, domain.KindNotFound) {
		return nil, domain.Invalid("template", "template %q does not exist; list templates with GET /v1/templates", req.TemplateID)
	}
	if err != nil {
		return nil, err
	}
	if !tpl.Ready {
		return nil, domain.Errorf(domain.KindUnavailable, "template %q is still being built; try again shortly", req.TemplateID)
	}
	timeout, err := s.resolveTimeout(req.Timeout)
	if err != nil {
		return nil, err
	}
	limits, err := s.resolveLimits(req.Limits)
	if err != nil {
		return nil, err
	}
	if err := validateMap("env", req.Env, true); err != nil {
		return nil, err
	}
	if err := validateMap("metadata", req.Metadata, false); err != nil {
		return nil, err
	}
	drv, err := s.pickRuntime(team, req.Runtime, req.MinIsolation)
	if err != nil {
		return nil, err
	}
	internet := req.Internet == nil || *req.Internet
	trafficToken := ""
	if req.AllowPublicTraffic != nil && !*req.AllowPublicTraffic {
		trafficToken = newToken()
	}

	s.startMu.RLock()
	defer s.startMu.RUnlock()
	slot, err := s.allocSlot(ctx)
	if err != nil {
		return nil, err
	}
	defer s.release(slot)
	now := s.cfg.Now().UTC()
	sb := &domain.Sandbox{
		ID: domain.NewID(20), TeamID: p.TeamID, TemplateID: tpl.ID, State: domain.StateStarting,
		Metadata: req.Metadata, Env: req.Env, Limits: limits, Internet: internet,
		RuntimeName: drv.Capabilities().Name, Slot: slot, AccessToken: newToken(), TrafficToken: trafficToken,
		CreatedAt: now, EndsAt: now.Add(timeout),
	}
	if err := s.cfg.Store.CreateSandboxWithinQuota(ctx, sb, quota); err != nil {
		if domain.IsKind(err, domain.KindQuotaExceeded) {
			return nil, err
		}
		return nil, fmt.Errorf("recording sandbox: %w", err)
	}
	// Starting must finish (or clean up) even if the client goes away mid-way.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.StartTimeout)
	defer cancel()
	h, addr, err := s.cfg.Node.Start(sctx, sb, tpl)
	if err == nil {
		sb.RuntimeHandle, _ = json.Marshal(h)
		sb.Address = addr
		agent := s.cfg.dial(addr, sb.AccessToken)
		tReady := time.Now()
		err = agent.WaitReady(sctx)
		if err == nil && tpl.ReadyPort > 0 {
			err = agent.WaitPortReady(sctx, tpl.ReadyPort)
		}
		s.log.Debug("agent ready", "sandbox", sb.ID, "wait", time.Since(tReady), "since_create", time.Since(now))
		if err != nil {
			agent.Close()
			_ = s.cfg.Node.Stop(context.WithoutCancel(ctx), sb.ID, slot, &h)
		} else {
			return s.markRunning(ctx, sb, agent, tpl.PrivatePorts)
		}
	}
	// The cause (runsc's stderr, the sandbox's address) is for the operator log only:
	// EndReason and the error below reach the tenant.
	s.log.Error("sandbox failed to start", "sandbox", sb.ID, "err", err)
	sb.State, sb.EndReason, sb.StoppedAt = domain.StateError, "error: the sandbox could not be started", s.cfg.Now().UTC()
	if uerr := s.cfg.Store.UpdateSandbox(context.WithoutCancel(ctx), sb); uerr != nil {
		s.log.Error("recording failed start", "sandbox", sb.ID, "err", uerr)
	}
	return nil, domain.Errorf(domain.KindUnavailable, "sandbox %s could not be started; retry, and if it keeps failing, ask the operator to look it up in the server log and run 'warren doctor'", sb.ID)
}

func (s *Service) markRunning(ctx context.Context, sb *domain.Sandbox, agent agent, privatePorts []int) (*domain.Sandbox, error) {
	sb.State, sb.StartedAt = domain.StateRunning, s.cfg.Now().UTC()
	if err := s.cfg.Store.UpdateSandbox(context.WithoutCancel(ctx), sb); err != nil {
		var h runtime.Handle
		_ = json.Unmarshal(sb.RuntimeHandle, &h)
		agent.Close()
		_ = s.cfg.Node.Stop(context.WithoutCancel(ctx), sb.ID, sb.Slot, &h)
		return nil, fmt.Errorf("recording started sandbox: %w", err)
	}
	s.track(sb, agent, privatePorts)
	if s.cfg.Meter != nil {
		if err := s.cfg.Meter.Begin(context.WithoutCancel(ctx), sb); err != nil {
			s.log.Error("starting metering", "sandbox", sb.ID, "err", err)
		}
	}
	cp := *sb
	return &cp, nil
}

// track registers a running sandbox and arms its timeout.
func (s *Service) track(sb *domain.Sandbox, agent agent, privatePorts []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := &liveSandbox{sb: sb, agent: agent, privatePorts: privatePorts}
	ls.ctx, ls.cancel = context.WithCancelCause(context.Background())
	id := sb.ID
	ls.timer = time.AfterFunc(time.Until(sb.EndsAt), func() { s.expire(id) })
	s.live[id] = ls
}

func (s *Service) expire(id string) {
	s.wg.Add(1)
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.end(ctx, id, "timeout"); err != nil && !domain.IsKind(err, domain.KindNotFound) {
		s.log.Error("ending sandbox at its timeout", "sandbox", id, "err", err)
	}
}

// end stops a live sandbox and records why.
func (s *Service) end(ctx context.Context, id, reason string) error {
	s.mu.Lock()
	ls, ok := s.live[id]
	if !ok || ls.ending {
		s.mu.Unlock()
		return domain.Errorf(domain.KindNotFound, "sandbox %q is not running", id)
	}
	ls.ending = true
	ls.timer.Stop()
	ls.cancel(domain.Errorf(domain.KindConflict, "sandbox %s was stopped (%s) while the command ran", id, reason))
	s.mu.Unlock()

	if s.cfg.Meter != nil {
		// The last reading must be taken while the sandbox still exists.
		if err := s.cfg.Meter.End(ctx, ls.sb, s.cfg.Now().UTC()); err != nil {
			s.log.Error("closing metering", "sandbox", id, "err", err)
		}
	}
	var h runtime.Handle
	_ = json.Unmarshal(ls.sb.RuntimeHandle, &h)
	// Halt is quick (kill + network removal); reclaiming memory, runtime state, mounts
	// and files can take a second or more and continues in the background, with the
	// address slot reserved and the id shielded from the sweeper until it is done.
	if err := s.cfg.Node.Halt(ctx, id, ls.sb.Slot, &h); err != nil {
		s.log.Error("halting sandbox", "sandbox", id, "err", err)
	}
	ls.agent.Close()
	s.mu.Lock()
	delete(s.live, id)
	s.tearing[id] = true
	s.reserved[ls.sb.Slot] = true
	sb := *ls.sb
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := s.cfg.Node.Stop(tctx, id, sb.Slot, &h); err != nil {
			s.log.Error("teardown incomplete; the sweeper will retry", "sandbox", id, "err", err)
		}
		s.mu.Lock()
		delete(s.tearing, id)
		delete(s.reserved, sb.Slot)
		s.mu.Unlock()
	}()
	sb.State, sb.EndReason, sb.StoppedAt = domain.StateStopped, reason, s.cfg.Now().UTC()
	if err := s.cfg.Store.UpdateSandbox(context.WithoutCancel(ctx), &sb); err != nil {
		return fmt.Errorf("recording stopped sandbox: %w", err)
	}
	s.log.Info("sandbox stopped", "sandbox", id, "reason", reason)
	return nil
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

// Kill implements domain.SandboxService.
func (s *Service) Kill(ctx context.Context, p domain.Principal, id string) error {
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return err
	}
	sb, err := s.get(ctx, p, id)
	if err != nil {
		return err
	}
	if sb.State.Terminal() {
		return domain.Errorf(domain.KindNotFound, "sandbox %q is not running (it is %s)", id, sb.State)
	}
	return s.end(ctx, id, "killed")
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
	s.mu.Lock()
	ls, ok := s.live[id]
	if !ok || ls.ending {
		s.mu.Unlock()
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is not running; create a new one", id)
	}
	sb := *ls.sb
	sb.EndsAt = s.cfg.Now().UTC().Add(d)
	ls.sb.EndsAt = sb.EndsAt
	ls.timer.Reset(d)
	s.mu.Unlock()
	if err := s.cfg.Store.UpdateSandbox(ctx, &sb); err != nil {
		return nil, err
	}
	return &sb, nil
}

// agentFor returns the agent of a running sandbox of the principal's team.
// Reading files needs sandboxes:read; everything that changes or runs needs
// sandboxes:write.
func (s *Service) agentFor(ctx context.Context, p domain.Principal, id string, scope domain.Scope) (agent, error) {
	ls, err := s.liveFor(ctx, p, id, scope)
	if err != nil {
		return nil, err
	}
	return ls.agent, nil
}

// liveFor is agentFor, returning the running sandbox's entry.
func (s *Service) liveFor(ctx context.Context, p domain.Principal, id string, scope domain.Scope) (*liveSandbox, error) {
	if err := p.Need(scope); err != nil {
		return nil, err
	}
	sb, err := s.get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	ls, ok := s.live[id]
	ending := ok && ls.ending
	s.mu.Unlock()
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

// Exec implements domain.SandboxService.
func (s *Service) Exec(ctx context.Context, p domain.Principal, id string, req domain.ExecRequest, onEvent func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	if err := checkExec(req); err != nil {
		return nil, err
	}
	if req.Timeout == 0 {
		req.Timeout = s.cfg.ExecTimeout
	}
	ls, err := s.liveFor(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return nil, err
	}
	ctx, done := whileLive(ctx, ls)
	defer done()
	res, err := ls.agent.Exec(ctx, req, onEvent)
	return res, ls.stopped(err)
}

// WriteFile implements domain.SandboxService.
func (s *Service) WriteFile(ctx context.Context, p domain.Principal, id, path, user string, r io.Reader) (*domain.FileInfo, error) {
	if path == "" {
		return nil, domain.Invalid("path", "path is required")
	}
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesWrite)
	if err != nil {
		return nil, err
	}
	return agent.WriteFile(ctx, path, user, r)
}

// ReadFile implements domain.SandboxService.
func (s *Service) ReadFile(ctx context.Context, p domain.Principal, id, path, user string, w io.Writer) error {
	if path == "" {
		return domain.Invalid("path", "path is required")
	}
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesRead)
	if err != nil {
		return err
	}
	return agent.ReadFile(ctx, path, user, w)
}

// ListFiles implements domain.SandboxService.
func (s *Service) ListFiles(ctx context.Context, p domain.Principal, id, path, user string, depth int) ([]domain.FileInfo, error) {
	if path == "" {
		return nil, domain.Invalid("path", "path is required")
	}
	if depth < 0 || depth > 32 {
		return nil, domain.Invalid("depth", "depth must be between 1 and 32")
	}
	agent, err := s.agentFor(ctx, p, id, domain.ScopeSandboxesRead)
	if err != nil {
		return nil, err
	}
	return agent.ListDir(ctx, path, user, depth)
}

// Templates implements domain.SandboxService.
func (s *Service) Templates(ctx context.Context) ([]*domain.Template, error) {
	return s.cfg.Store.ListTemplates(ctx)
}

// Running returns copies of the running sandboxes this service tracks (not those being
// ended), for the meter.
func (s *Service) Running(context.Context) ([]*domain.Sandbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*domain.Sandbox, 0, len(s.live))
	for _, ls := range s.live {
		if !ls.ending {
			cp := *ls.sb
			out = append(out, &cp)
		}
	}
	return out, nil
}

// Live returns the number of running sandboxes this service tracks.
func (s *Service) Live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// KillAll ends every running sandbox (used by tests and by 'serve --kill-on-exit').
func (s *Service) KillAll(ctx context.Context) error {
	s.mu.Lock()
	ids := make([]string, 0, len(s.live))
	for id := range s.live {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	var errs []error
	for _, id := range ids {
		if err := s.end(ctx, id, "killed"); err != nil && !domain.IsKind(err, domain.KindNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops the timers; running sandboxes keep running so a restarted server can
// re-attach to them.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	for id, ls := range s.live {
		ls.timer.Stop()
		// The sandboxes keep running, but the streams into them end with the server.
		ls.cancel(domain.Errorf(domain.KindUnavailable, "the server is shutting down; sandbox %s keeps running", id))
	}
	s.mu.Unlock()
	s.wg.Wait()
}
