package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/warren-sh/warren/internal/agentclient"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/runtime"
)

// PoolSize is how many warm sandboxes of a template a Pool keeps.
type PoolSize struct {
	TemplateID string
	Size       int
}

// MaxPoolSize bounds one template's pool: each member holds its memory and an address.
const MaxPoolSize = 64

// ParsePoolSizes reads a --warm-pool value, "base=4,code-interpreter=2", against the
// templates the server offers. Each template at most once, sizes 0 to MaxPoolSize (0 =
// no pool); "" is no pool at all.
func ParsePoolSizes(s string, known []string) ([]PoolSize, error) {
	var out []PoolSize
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		name, n, ok := strings.Cut(strings.TrimSpace(part), "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("warm pool %q: write TEMPLATE=SIZE pairs separated by commas, such as base=4,code-interpreter=2", part)
		}
		if !containsString(known, name) {
			return nil, fmt.Errorf("warm pool: template %q does not exist; templates: %s", name, strings.Join(known, ", "))
		}
		if seen[name] {
			return nil, fmt.Errorf("warm pool: template %q is named twice", name)
		}
		seen[name] = true
		size, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil || size < 0 || size > MaxPoolSize {
			return nil, fmt.Errorf("warm pool %s=%s: the size must be a whole number from 0 to %d", name, n, MaxPoolSize)
		}
		if size > 0 {
			out = append(out, PoolSize{TemplateID: name, Size: size})
		}
	}
	return out, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// PoolConfig configures a Pool.
type PoolConfig struct {
	Sizes []PoolSize
	// Retry is how long upkeep waits after a member failed to start, while a template
	// is not built yet, or while the node has no room, before it tries again; it is
	// also how often idle members are checked (default 10 s).
	Retry time.Duration
	// Settle is how long upkeep waits after the last create of a pooled template
	// before it starts a member (default 500 ms): a start takes a core for a few
	// hundred milliseconds, and the create that just took a member (or started cold)
	// is about to run its first commands.
	Settle time.Duration
}

// Pool keeps warm sandboxes: per template, a few sandboxes started ahead of any request
// (agent and template server ready) with the node's default runtime and default limits
// (the pool's profile), belonging to no team. A create that fits the profile takes one
// (Service.Create, claim) instead of starting a sandbox: its row is written within the
// team's quota as a cold create's would be, and the member then takes the request's
// identity (env and a fresh access token through the agent's /init, internet access
// through the node). A member was started with a fresh random id, which becomes the
// sandbox's id (and is its hostname); nobody outside the server knew it or its token.
//
// Upkeep (Start) refills the pools in the background, one start at a time so that cold
// creates are not starved. Members hold address slots (reserved in the registry, as a
// start in progress does) and are shielded from the sweeper, but count against no team.
// Close removes them all; after a crash they have no row, so the next server's Recover
// sweeps them as leftovers.
type Pool struct {
	svc   *Service
	log   *slog.Logger
	sizes []PoolSize
	retry time.Duration
	// settle is PoolConfig.Settle.
	settle time.Duration
	kick   chan struct{}
	ctx    context.Context // ends at Close
	stop   context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	ready    map[string][]*member // by template, oldest first
	starting string               // the template of the member being started, if any
	stats    map[string]*domain.PoolStats
	closed   bool
	// lastCreate is when a create of a pooled template last came (claim or miss).
	lastCreate time.Time
}

// member is a warm sandbox: its row-to-be (id, slot, runtime, limits, handle, address
// and the pool's access token), the template it was started from, and its agent.
type member struct {
	sb    *domain.Sandbox
	tpl   *domain.Template
	agent *agent
}

// NewPool returns the warm pools of s's creates. Call Start once s has recovered (the
// sweep of a previous server's leftovers must not meet new members half-started),
// and Close before s.Close.
func NewPool(s *Service, cfg PoolConfig) (*Pool, error) {
	total := 0
	for _, ps := range cfg.Sizes {
		if ps.Size < 0 || ps.Size > MaxPoolSize || ps.TemplateID == "" {
			return nil, fmt.Errorf("warm pool %s=%d: the size must be from 0 to %d", ps.TemplateID, ps.Size, MaxPoolSize)
		}
		total += ps.Size
	}
	if total >= s.cfg.Node.Slots() {
		return nil, fmt.Errorf("warm pools of %d sandboxes would take every one of the node's %d addresses; make them smaller or widen --sandbox-cidr", total, s.cfg.Node.Slots())
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 10 * time.Second
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 500 * time.Millisecond
	}
	p := &Pool{svc: s, log: s.log.With(logkey.Subsystem, "pool"), sizes: cfg.Sizes, retry: cfg.Retry, settle: cfg.Settle,
		kick: make(chan struct{}, 1), ready: map[string][]*member{}, stats: map[string]*domain.PoolStats{}}
	for _, ps := range cfg.Sizes {
		p.stats[ps.TemplateID] = &domain.PoolStats{TemplateID: ps.TemplateID, Size: ps.Size}
	}
	p.ctx, p.stop = context.WithCancel(context.Background())
	s.pool = p
	return p, nil
}

// Start begins the upkeep: the pools fill in the background until Close.
func (p *Pool) Start() {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.run()
	}()
}

// Pools returns each pool's size, members and counters, for platform admins.
func (p *Pool) Pools(_ context.Context, pr domain.Principal) ([]domain.PoolStats, error) {
	if !pr.Admin {
		return nil, domain.Errorf(domain.KindForbidden, "warm pools are the node's: only a platform admin may read them")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]domain.PoolStats, 0, len(p.sizes))
	for _, ps := range p.sizes {
		st := *p.stats[ps.TemplateID]
		st.Ready = len(p.ready[ps.TemplateID])
		if p.starting == ps.TemplateID {
			st.Starting = 1
		}
		out = append(out, st)
	}
	return out, nil
}

// Close stops the upkeep (a start under way is cut short and cleaned up) and removes
// every member from the node. Creates that come later start cold.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	var all []*member
	for id, ms := range p.ready {
		all = append(all, ms...)
		delete(p.ready, id)
	}
	p.mu.Unlock()
	p.stop()
	p.wg.Wait()
	// Removing a sandbox takes a second or more: remove them all at once.
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, m := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.destroy(ctx, m)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// run fills the pools, one member at a time, until Close. Between fills it waits for a
// claim (kick) or the retry interval, and checks that idle members still run.
func (p *Pool) run() {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		if p.ctx.Err() != nil {
			return
		}
		tplID := p.short()
		if wait := p.unsettled(); tplID != "" && wait > 0 {
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		if tplID != "" {
			err := p.fill(tplID)
			if err == nil {
				continue
			}
			if p.ctx.Err() != nil {
				return
			}
			level := slog.LevelWarn
			if errors.Is(err, errNotBuilt) || errors.Is(err, errNodeClosed) {
				level = slog.LevelDebug // templates other than base are built in the background
			}
			p.log.Log(p.ctx, level, "warm pool member not started; retrying later", logkey.Template, tplID, logkey.Err, err)
		}
		t.Reset(p.retry)
		select {
		case <-p.ctx.Done():
			return
		case <-p.kick:
		case <-t.C:
			p.checkIdle()
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
	}
}

// unsettled returns how long upkeep should still wait after the last create.
func (p *Pool) unsettled() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.settle - time.Since(p.lastCreate)
}

// short returns the first template whose pool is below its size, or "".
func (p *Pool) short() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ps := range p.sizes {
		if len(p.ready[ps.TemplateID]) < ps.Size {
			return ps.TemplateID
		}
	}
	return ""
}

// poolProfile returns what a warm pool member of template tplID is started with: the
// node's default runtime and the template's default limits.
func poolProfile(s *Service, tplID string) (runtimeName string, limits domain.Limits, err error) {
	limits, err = resolveLimits(domain.Limits{}, s.cfg.defaultLimits(tplID), s.cfg.MaxLimits)
	return s.cfg.Node.Drivers()[0].Capabilities().Name, limits, err
}

// errNotBuilt is a template that cannot be started yet; errNodeClosed a node that
// takes no new sandboxes (drained): the pools stop filling until it does.
var (
	errNotBuilt   = errors.New("the template is not built yet")
	errNodeClosed = errors.New("the node takes no new sandboxes")
)

// fill starts one member of tplID through the same start path as a cold create and
// adds it to its pool.
func (p *Pool) fill(tplID string) error {
	s := p.svc
	ctx := p.ctx
	tpl, err := s.cfg.Store.GetTemplate(ctx, "", tplID) // pools are of built-ins
	if err != nil {
		return err
	}
	if !tpl.Ready {
		return errNotBuilt
	}
	if err := s.nodeOpen(ctx); err != nil {
		return fmt.Errorf("%w: %w", errNodeClosed, err)
	}
	rt, limits, err := poolProfile(p.svc, tplID)
	if err != nil {
		return err
	}
	if s.cfg.Room != nil {
		if err := s.cfg.Room(ctx, limits); err != nil {
			return err
		}
	}
	sb := &domain.Sandbox{
		ID: domain.NewID(20), TemplateID: tpl.ID, State: domain.StateStarting, Limits: limits, Internet: true,
		RuntimeName: rt, AccessToken: newToken(), CreatedAt: s.cfg.Now().UTC(),
	}
	used, err := s.cfg.Store.UsedSlots(ctx, s.nodeScope())
	if err != nil {
		return err
	}
	if sb.Slot, err = s.reg.reserveSlot(used, s.cfg.Node.Slots()); err != nil {
		return err
	}
	s.reg.setPooled(sb.ID, true) // before anything of it exists on the node
	p.mu.Lock()
	p.starting = tpl.ID
	p.mu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	t0 := time.Now()
	// The same start as a cold create's (launching.start), so that whatever makes cold
	// starts faster makes members start faster too: restored from the template's
	// snapshot when it has one (the code interpreter's kernel then needs no boot).
	from := s.snaps.templateOrigin(sb, tpl, domain.CreateSandbox{})
	ag, err := s.start(sctx, sb, tpl, from)
	if from != nil {
		from.done()
	}
	cancel()
	p.mu.Lock()
	p.starting = ""
	p.mu.Unlock()
	if err != nil {
		s.reg.setPooled(sb.ID, false)
		s.reg.releaseSlot(sb.Slot)
		p.count(tpl.ID, func(st *domain.PoolStats) { st.Failures++ })
		return err
	}
	if ag.procs != nil { // (tests' fake agents run no commands)
		// One command before the member waits: a sandbox's first command pays a few
		// milliseconds more than the next ones (the agent's spawn path and the
		// program's pages, cold in the sandbox), and a claim's first command should
		// not. The sandbox's log shows it (a process "true" that ended).
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := ag.procs.Exec(wctx, domain.ExecRequest{Cmd: "true", Timeout: 10 * time.Second}, nil); err != nil {
			p.log.Debug("warming up a warm pool member", logkey.SandboxID, sb.ID, logkey.Err, err)
		}
		wcancel()
	}
	if ag.code != nil && strconv.Itoa(tpl.ReadyPort) == agentclient.CodePort {
		// The code interpreter answers /health before its default Python kernel has
		// started (some seconds in gVisor); a claim must not wait for it. An empty cell
		// waits for the kernel and leaves no trace (the claim's first cell still has
		// execution_count 1).
		cctx, ccancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
		if err := ag.code.RunCode(cctx, domain.RunCode{}, func(domain.CodeEvent) error { return nil }); err != nil {
			p.log.Warn("starting a warm pool member's code interpreter kernel", logkey.SandboxID, sb.ID, logkey.Err, err)
		}
		ccancel()
	}
	m := &member{sb: sb, tpl: tpl, agent: ag}
	p.mu.Lock()
	closed := p.closed
	if !closed {
		p.ready[tpl.ID] = append(p.ready[tpl.ID], m)
	}
	p.mu.Unlock()
	if closed {
		return p.destroy(context.WithoutCancel(ctx), m)
	}
	p.log.Debug("warm pool member ready", logkey.SandboxID, sb.ID, logkey.Template, tpl.ID, "took", time.Since(t0))
	return nil
}

// count changes the counters of tplID's pool, if it has one.
func (p *Pool) count(tplID string, f func(*domain.PoolStats)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.stats[tplID]; ok {
		f(st)
	}
}

// created notes a create of a pooled template (see PoolConfig.Settle).
func (p *Pool) created() {
	p.mu.Lock()
	p.lastCreate = time.Now()
	p.mu.Unlock()
}

// wake asks the upkeep to refill.
func (p *Pool) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// checkIdle removes the members whose sandbox no longer runs.
func (p *Pool) checkIdle() {
	p.mu.Lock()
	var all []*member
	for _, ms := range p.ready {
		all = append(all, ms...)
	}
	p.mu.Unlock()
	for _, m := range all {
		if p.ctx.Err() != nil {
			return
		}
		h, _ := handleOf(m.sb)
		drv, ok := p.svc.cfg.Node.DriverFor(h.Driver)
		if !ok {
			continue
		}
		if st, err := drv.Status(p.ctx, h); err != nil || st == runtime.StatusRunning || st == runtime.StatusUnknown {
			continue
		}
		if p.remove(m) {
			p.log.Warn("warm pool member stopped on its own; replacing it", logkey.SandboxID, m.sb.ID, logkey.Template, m.tpl.ID)
			p.count(m.tpl.ID, func(st *domain.PoolStats) { st.Failures++ })
			if err := p.destroy(p.ctx, m); err != nil {
				p.log.Error("removing a dead warm pool member", logkey.SandboxID, m.sb.ID, logkey.Err, err)
			}
		}
	}
	p.wake()
}

// remove takes m out of its pool; false if it was no longer there (claimed).
func (p *Pool) remove(m *member) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ms := p.ready[m.tpl.ID]
	for i, x := range ms {
		if x == m {
			p.ready[m.tpl.ID] = append(ms[:i:i], ms[i+1:]...)
			return true
		}
	}
	return false
}

// destroy removes a member from the node and gives up its slot and shield.
func (p *Pool) destroy(ctx context.Context, m *member) error {
	s := p.svc
	m.agent.conn.Close()
	h, _ := handleOf(m.sb)
	err := s.cfg.Node.Stop(ctx, m.sb.ID, m.sb.Slot, &h)
	if err != nil {
		err = fmt.Errorf("removing warm pool member %s: %w", m.sb.ID, err)
	} else {
		// A member the node could not remove keeps its shield and slot: the sweeper
		// would otherwise take it for another's leftovers while it still holds them.
		s.reg.setPooled(m.sb.ID, false)
		s.reg.releaseSlot(m.sb.Slot)
	}
	return err
}

// fits reports whether a member of the pool can serve the prepared sandbox sb of tpl:
// the node's default runtime, limits equal to the profile and, for a template whose
// start command is already running in the member, no env of its own (it would not
// reach that command, as it does on a cold start).
func (p *Pool) fits(sb *domain.Sandbox, tpl *domain.Template) bool {
	rt, limits, err := poolProfile(p.svc, tpl.ID)
	return err == nil && sb.RuntimeName == rt && sb.Limits == limits && (tpl.StartCmd == "" || len(sb.Env) == 0)
}

// take pops the oldest member of tpl's pool that was started from tpl as it is now; a
// member of an older build of the template is removed.
func (p *Pool) take(tpl *domain.Template) *member {
	for {
		p.mu.Lock()
		ms := p.ready[tpl.ID]
		if len(ms) == 0 {
			p.mu.Unlock()
			return nil
		}
		m := ms[0]
		p.ready[tpl.ID] = ms[1:]
		p.mu.Unlock()
		if sameBuild(m.tpl, tpl) {
			return m // the claim wakes the upkeep once it keeps it
		}
		p.wake()
		p.log.Info("warm pool member of an older template build removed", logkey.SandboxID, m.sb.ID, logkey.Template, tpl.ID)
		p.detach(m)
	}
}

func sameBuild(a, b *domain.Template) bool {
	return a.Hash == b.Hash && a.RootFS == b.RootFS && a.StartCmd == b.StartCmd && a.ReadyPort == b.ReadyPort
}

// put returns an untouched member to the front of its pool.
func (p *Pool) put(m *member) {
	p.mu.Lock()
	if !p.closed {
		p.ready[m.tpl.ID] = append([]*member{m}, p.ready[m.tpl.ID]...)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.detach(m)
}

// detach destroys a member in the background (the pool's goroutines, which Close waits
// for), or at once once the pool is closed.
func (p *Pool) detach(m *member) {
	remove := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := p.destroy(ctx, m); err != nil {
			p.log.Error("removing a warm pool member", logkey.SandboxID, m.sb.ID, logkey.Err, err)
		}
	}
	p.mu.Lock()
	closed := p.closed
	if !closed {
		p.wg.Add(1) // under mu: Close sets closed under mu before it waits
	}
	p.mu.Unlock()
	if closed {
		remove()
		return
	}
	go func() {
		defer p.wg.Done()
		remove()
	}()
}

// claim serves the create of sb (prepared and validated: its team, env, metadata,
// timeout, internet access, limits, tokens) from tpl's pool. It returns false when no
// member can serve it: the caller starts it cold. Otherwise the create is answered
// here: the row is written within quota (a refusal puts the member back untouched),
// then the member takes sb's identity. A member that fails to is destroyed and sb is
// started cold under the same id and slot.
func (p *Pool) claim(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template, quota domain.Quota) (_ *domain.Sandbox, served bool, err error) {
	s := p.svc
	if _, pooled := p.stats[tpl.ID]; !pooled {
		return nil, false, nil
	}
	ctx, span := startSpan(ctx, "sandbox.pool_claim", attrTemplate.String(tpl.ID))
	defer func() {
		span.SetAttributes(attribute.Bool("warren.pool_hit", served))
		endSpan(span, err)
	}()
	p.created()
	var m *member
	if p.fits(sb, tpl) {
		m = p.take(tpl)
	}
	if m == nil {
		p.count(tpl.ID, func(st *domain.PoolStats) { st.Misses++ })
		return nil, false, nil
	}
	span.SetAttributes(attrSandboxID.String(m.sb.ID))
	t0 := time.Now()
	now := s.cfg.Now().UTC()
	sb.ID, sb.Slot, sb.RuntimeHandle, sb.Address = m.sb.ID, m.sb.Slot, m.sb.RuntimeHandle, m.sb.Address
	sb.EndsAt = now.Add(sb.EndsAt.Sub(sb.CreatedAt))
	sb.CreatedAt, sb.StartedAt, sb.State = now, now, domain.StateRunning
	sb.Node = s.cfg.NodeName
	if err := s.cfg.Store.CreateSandboxWithinQuota(ctx, sb, quota); err != nil {
		p.put(m)
		if domain.IsKind(err, domain.KindQuotaExceeded) {
			return nil, true, err
		}
		return nil, true, fmt.Errorf("recording sandbox: %w", err)
	}
	// From here the row holds the slot (UsedSlots) and shields the id from the sweeper.
	p.wake()
	defer s.reg.releaseSlot(sb.Slot)
	defer s.reg.setPooled(sb.ID, false)
	tInsert := time.Since(t0)
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = m.agent.conn.Init(ictx, agentclient.Identity{EnvVars: sb.Env, AccessToken: sb.AccessToken})
	tInit := time.Since(t0)
	if err == nil && (!sb.Internet || !sb.Network.IsZero()) {
		// The member runs with internet on and no egress policy.
		err = s.cfg.Node.Reattach(ictx, sb)
	}
	if err != nil {
		p.count(tpl.ID, func(st *domain.PoolStats) { st.Failures++ })
		p.log.Error("warm pool member could not take its claim's identity; starting the sandbox cold", logkey.SandboxID, sb.ID, logkey.Err, err)
		return p.cold(ctx, sb, tpl, m)
	}
	ag := rekey(m.agent, sb.AccessToken, func() *agent { return s.cfg.dial(sb.Address, sb.AccessToken) })
	s.track(sb, ag, tpl.PrivatePorts)
	if s.cfg.Meter != nil {
		if err := s.cfg.Meter.Begin(context.WithoutCancel(ctx), sb); err != nil {
			s.log.Error("starting metering", logkey.SandboxID, sb.ID, logkey.Err, err)
		}
	}
	p.count(tpl.ID, func(st *domain.PoolStats) { st.Claims++ })
	p.log.Debug("warm pool claim", logkey.SandboxID, sb.ID, logkey.Template, tpl.ID, "insert", tInsert, "init", tInit, "took", time.Since(t0))
	cp := *sb
	return &cp, true, nil
}

// cold replaces a member that failed its claim: it is removed, and sb (whose row is
// written) starts cold under the same id and slot, as Create would have started it.
func (p *Pool) cold(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template, m *member) (*domain.Sandbox, bool, error) {
	s := p.svc
	sctx, cancel := startContext(s.cfg.Life, ctx, s.cfg.StartTimeout)
	defer cancel()
	m.agent.conn.Close()
	h, _ := handleOf(m.sb)
	err := s.cfg.Node.Stop(sctx, m.sb.ID, m.sb.Slot, &h)
	var ag *agent
	if err == nil {
		sb.State, sb.RuntimeHandle, sb.Address = domain.StateStarting, nil, ""
		ag, err = s.start(sctx, sb, tpl, nil)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "sandbox failed to start", logkey.SandboxID, sb.ID, logkey.Err, err)
		sb.State, sb.EndReason, sb.StoppedAt = domain.StateError, "error: the sandbox could not be started", s.cfg.Now().UTC()
		if uerr := s.cfg.Store.UpdateSandbox(context.WithoutCancel(ctx), sb); uerr != nil {
			s.log.Error("recording failed start", logkey.SandboxID, sb.ID, logkey.Err, uerr)
		}
		return nil, true, domain.Errorf(domain.KindUnavailable, "sandbox %s could not be started; retry, and if it keeps failing, ask the operator to look it up in the server log and run 'warren doctor'", sb.ID)
	}
	out, err := s.markRunning(ctx, sb, ag, tpl.PrivatePorts)
	return out, true, err
}

// rekey returns the connection to a member's agent for its new token. A real agent
// connection keeps its open connections (the claim's first command then needs no new
// one into the sandbox); others are closed and dialled anew.
func rekey(old *agent, token string, dial func() *agent) *agent {
	if c, ok := old.conn.(*agentclient.Client); ok {
		return agentOf(c.WithToken(token))
	}
	old.conn.Close()
	return dial()
}

// handleOf decodes a sandbox's persisted runtime handle.
func handleOf(sb *domain.Sandbox) (runtime.Handle, error) {
	var h runtime.Handle
	err := json.Unmarshal(sb.RuntimeHandle, &h)
	return h, err
}
