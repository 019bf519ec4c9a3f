package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/agentclient"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/runtime"
)

// Create implements domain.SandboxService: it validates the request; a request a warm
// pool member can serve takes it (Pool.claim). Otherwise it asks the node whether it
// has room (Config.Room), reserves an address slot, writes the row (starting) within
// the team's quota, starts the sandbox on the node, waits for its agent (and its
// template's server), and marks it running. A request that names a snapshot (Snapshot,
// or its id or name as TemplateID) restores the new sandbox from it instead of booting
// it. A request with an IdempotencyKey creates at most once per team and key
// (idempotent.create, which calls Create again without the key).
func (s *Service) Create(ctx context.Context, p domain.Principal, req domain.CreateSandbox) (out *domain.Sandbox, err error) {
	if req.IdempotencyKey != "" {
		return idempotent{s}.create(ctx, p, req)
	}
	ctx, span := startSpan(ctx, "sandbox.create", attrTeamID.String(p.TeamID), attrTemplate.String(req.TemplateID))
	path := "cold"
	t0 := time.Now()
	// sb is the sandbox once the request is valid: from then on the create counts in
	// the metrics, whatever its outcome.
	var sb *domain.Sandbox
	defer func() {
		if out != nil {
			span.SetAttributes(attrSandboxID.String(out.ID), attrRuntime.String(out.RuntimeName), attrCreatePath.String(path))
			s.log.LogAttrs(ctx, slog.LevelInfo, "sandbox created", slog.String(logkey.SandboxID, out.ID),
				slog.String(logkey.TeamID, out.TeamID), slog.String(logkey.Template, out.TemplateID), slog.String("path", path))
		}
		if sb != nil {
			recordCreate(s.cfg.Recorder, sb, path, t0, err)
		}
		endSpan(span, err)
	}()
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return nil, err
	}
	if err := s.nodeOpen(ctx); err != nil {
		return nil, err
	}
	team, quota, err := admitTeam(ctx, &s.cfg, p.TeamID)
	if err != nil {
		return nil, err
	}
	sb, tpl, from, err := s.snaps.prepareCreate(ctx, p, team, req)
	if err != nil {
		return nil, err
	}
	if from != nil {
		defer from.done()
		path = "restore"
		return s.launch(ctx, quota, sb, tpl, from)
	}
	if sb, tpl, err = s.prepare(ctx, p, team, req); err != nil {
		return nil, err
	}
	if s.pool != nil {
		if out, served, err := s.pool.claim(ctx, sb, tpl, quota); served {
			path = "warm"
			return out, err
		}
	}
	from = s.snaps.templateOrigin(sb, tpl, req)
	if from != nil {
		defer from.done()
		path = "restore"
	}
	return s.launch(ctx, quota, sb, tpl, from)
}

// recordCreate records a create of sb by path, begun at t0, that ended with err. Refusals
// (a quota, node admission) are not creates: the edge counts them.
func recordCreate(rec Recorder, sb *domain.Sandbox, path string, t0 time.Time, err error) {
	var full *domain.NodeFullError
	if err != nil && (domain.IsKind(err, domain.KindQuotaExceeded) || errors.As(err, &full)) {
		return
	}
	rec.Created(sb.TemplateID, path, sb.TeamID, time.Since(t0), err == nil)
}

// admitTeam reads the team and returns the quota to hold its new sandboxes to: the
// team's, or what Config.Admit says (which may refuse).
func admitTeam(ctx context.Context, cfg *Config, teamID string) (_ *domain.Team, _ domain.Quota, err error) {
	ctx, span := startSpan(ctx, "sandbox.admit", attrTeamID.String(teamID))
	defer func() { endSpan(span, err) }()
	team, err := cfg.Store.GetTeam(ctx, teamID)
	if err != nil {
		return nil, domain.Quota{}, fmt.Errorf("reading team: %w", err)
	}
	quota := team.Quota
	if cfg.Admit != nil {
		if quota, err = cfg.Admit(ctx, team); err != nil {
			return nil, domain.Quota{}, err
		}
	}
	return team, quota, nil
}

// launching is the Service's job of starting sandboxes, booted or restored: admission,
// slot, row, start, readiness (its methods are the Service's).
type launching struct{ *Service }

// launch starts the prepared sandbox sb (a row not written yet) on tpl, or restores it
// from a saved sandbox (from), and marks it running: node admission, an address slot,
// the row within quota, the start, the agent's readiness, and markRunning.
func (s *launching) launch(ctx context.Context, quota domain.Quota, sb *domain.Sandbox, tpl *domain.Template, from *origin) (*domain.Sandbox, error) {
	if err := s.nodeRoom(ctx, sb); err != nil {
		return nil, err
	}
	s.startMu.RLock()
	defer s.startMu.RUnlock()
	if err := s.reserve(ctx, sb, quota); err != nil {
		return nil, err
	}
	defer s.reg.releaseSlot(sb.Slot)
	sctx, cancel := startContext(s.cfg.Life, ctx, s.cfg.StartTimeout)
	defer cancel()
	agent, err := s.start(sctx, sb, tpl, from)
	if err != nil {
		// The cause (runsc's stderr, the sandbox's address) is for the operator log only:
		// EndReason and the error below reach the tenant.
		s.log.ErrorContext(ctx, "sandbox failed to start", logkey.SandboxID, sb.ID, logkey.Err, err)
		sb.State, sb.EndReason, sb.StoppedAt = domain.StateError, "error: the sandbox could not be started", s.cfg.Now().UTC()
		if uerr := s.cfg.Store.UpdateSandbox(context.WithoutCancel(ctx), sb); uerr != nil {
			s.log.Error("recording failed start", logkey.SandboxID, sb.ID, logkey.Err, uerr)
		}
		return nil, domain.Errorf(domain.KindUnavailable, "sandbox %s could not be started; retry, and if it keeps failing, ask the operator to look it up in the server log and run 'warren doctor'", sb.ID)
	}
	return s.markRunning(ctx, sb, agent, tpl.PrivatePorts)
}

// nodeRoom asks the node whether it takes new sandboxes (Config.NodeOpen) and has room
// for sb (Config.Room).
func (s *launching) nodeRoom(ctx context.Context, sb *domain.Sandbox) (err error) {
	if err := s.nodeOpen(ctx); err != nil {
		return err
	}
	if s.cfg.Room == nil {
		return nil
	}
	ctx, span := startSpan(ctx, "sandbox.node_admit", attrSandboxID.String(sb.ID))
	defer func() { endSpan(span, err) }()
	return s.cfg.Room(ctx, sb.Limits)
}

// reserve gives sb an address slot and writes its row within the team's quota. The
// caller releases the slot (s.reg.releaseSlot) once the row holds it.
// Preconditions: startMu read-held.
func (s *launching) reserve(ctx context.Context, sb *domain.Sandbox, quota domain.Quota) (err error) {
	ctx, span := startSpan(ctx, "sandbox.reserve", attrSandboxID.String(sb.ID))
	defer func() { endSpan(span, err) }()
	used, err := s.cfg.Store.UsedSlots(ctx, s.nodeScope())
	if err != nil {
		return err
	}
	if sb.Slot, err = s.reg.reserveSlot(used, s.cfg.Node.Slots()); err != nil {
		return err
	}
	sb.Node = s.cfg.NodeName
	if err := s.cfg.Store.CreateSandboxWithinQuota(ctx, sb, quota); err != nil {
		s.reg.releaseSlot(sb.Slot)
		if domain.IsKind(err, domain.KindQuotaExceeded) {
			return err
		}
		return fmt.Errorf("recording sandbox: %w", err)
	}
	return nil
}

// prepare validates a create request and returns the sandbox's row (without its slot)
// and its template.
func (s *Service) prepare(ctx context.Context, p domain.Principal, team *domain.Team, req domain.CreateSandbox) (*domain.Sandbox, *domain.Template, error) {
	if req.TemplateID == "" {
		req.TemplateID = "base"
	}
	// "app:default" is the template app itself; "app:v2" its build tagged v2 (a row).
	req.TemplateID = strings.TrimSuffix(req.TemplateID, domain.TagSeparator+domain.DefaultTag)
	tpl, err := s.cfg.Store.GetTemplate(ctx, p.TeamID, req.TemplateID)
	if domain.IsKind(err, domain.KindNotFound) {
		return nil, nil, domain.Invalid("template", "template %q does not exist; list templates with GET /v1/templates (or snapshots with GET /v1/snapshots)", req.TemplateID)
	}
	if err != nil {
		return nil, nil, err
	}
	if !tpl.Ready {
		return nil, nil, domain.Errorf(domain.KindUnavailable, "template %q is still being built; try again shortly", req.TemplateID)
	}
	timeout, err := resolveTimeout(req.Timeout, s.cfg.DefaultTimeout, s.cfg.MaxTimeout)
	if err != nil {
		return nil, nil, err
	}
	limits, err := resolveLimits(req.Limits, s.cfg.templateLimits(tpl), s.cfg.MaxLimits)
	if err != nil {
		return nil, nil, err
	}
	drv, err := checkRequest(&s.cfg, team, req, req.Runtime)
	if err != nil {
		return nil, nil, err
	}
	network, err := requestedNetwork(req, domain.NetworkPolicy{})
	if err != nil {
		return nil, nil, err
	}
	// A built template's ENV steps are its sandboxes' defaults; the request's win.
	env := req.Env
	if len(tpl.Env) > 0 {
		env = maps.Clone(tpl.Env)
		maps.Copy(env, req.Env)
	}
	now := s.cfg.Now().UTC()
	return &domain.Sandbox{
		ID: domain.NewID(20), TeamID: p.TeamID, TemplateID: tpl.ID, State: domain.StateStarting,
		Metadata: req.Metadata, Env: env, Limits: limits, Internet: req.Internet == nil || *req.Internet, Network: network,
		RuntimeName: drv.Capabilities().Name, AccessToken: newToken(), TrafficToken: trafficToken(req.AllowPublicTraffic),
		CreatedAt: now, EndsAt: now.Add(timeout), Lifecycle: req.Lifecycle,
	}, tpl, nil
}

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// trafficToken is a new sandbox's traffic token: "" (public) unless public traffic is
// turned off.
func trafficToken(allowPublic *bool) string {
	if allowPublic != nil && !*allowPublic {
		return newToken()
	}
	return ""
}

// start starts sb on the node, or restores it from a saved sandbox (from), and waits
// until its agent, and its template's server if it has one, answer. A restored agent
// first takes sb's identity (token, hostname, env). A restore from a template's own
// snapshot that fails starts sb cold instead. On error nothing of the sandbox is left
// on the node.
func (s *launching) start(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template, from *origin) (*agent, error) {
	if from == nil || !from.coldFallback {
		return s.startOnce(ctx, sb, tpl, from)
	}
	ag, err := s.startOnce(ctx, sb, tpl, from)
	if err == nil {
		return ag, nil
	}
	from.failed(err)
	sb.RuntimeHandle, sb.Address = nil, ""
	return s.startOnce(ctx, sb, tpl, nil)
}

// startOnce is start without a fallback.
func (s *launching) startOnce(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template, from *origin) (_ *agent, err error) {
	name := "sandbox.boot"
	if from != nil {
		name = "sandbox.restore"
	}
	ctx, span := startSpan(ctx, name, attrSandboxID.String(sb.ID), attrRuntime.String(sb.RuntimeName))
	defer func() { endSpan(span, err) }()
	var (
		h    runtime.Handle
		addr string
	)
	if from != nil {
		h, addr, err = s.cfg.Node.StartFrom(ctx, sb, tpl, from.dir)
	} else {
		h, addr, err = s.cfg.Node.Start(ctx, sb, tpl)
	}
	if err != nil {
		return nil, err
	}
	sb.RuntimeHandle, _ = json.Marshal(h)
	sb.Address = addr
	wctx, unwatch := watchExit(ctx, h.PID, s.cfg.running)
	agent, err := s.waitAgent(wctx, sb, tpl, from)
	err = exitedErr(wctx, s.cfg.Node, sb.ID, err)
	unwatch()
	if err != nil {
		agent.conn.Close()
		_ = s.cfg.Node.Stop(context.WithoutCancel(ctx), sb.ID, sb.Slot, &h)
		return nil, err
	}
	return agent, nil
}

// waitAgent waits until the agent of the started sandbox sb answers (a restored one
// after taking sb's identity), and its template's server if it has one.
func (s *launching) waitAgent(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template, from *origin) (_ *agent, err error) {
	ctx, span := startSpan(ctx, "sandbox.agent_ready", attrSandboxID.String(sb.ID))
	defer func() { endSpan(span, err) }()
	tReady := time.Now()
	var agent *agent
	if from != nil {
		agent, err = takeIdentity(ctx, s.cfg.dial, sb, from.token)
	} else {
		agent = s.cfg.dial(sb.Address, sb.AccessToken)
		hintCtx, stopHint := context.WithCancel(ctx)
		err = waitServing(ctx, agent.conn, s.servingHint(hintCtx, sb.ID))
		stopHint()
	}
	if err == nil && tpl.ReadyPort > 0 {
		err = agent.conn.WaitPortReady(ctx, tpl.ReadyPort)
	}
	if err == nil {
		exec := func(ctx context.Context, req domain.ExecRequest) (*domain.ExecResult, error) {
			return agent.procs.Exec(ctx, req, func(domain.ExecEvent) error { return nil })
		}
		err = readyCheckErr(waitReadyCheck(ctx, sb.Address, exec, tpl.ReadyCheck))
	}
	s.log.DebugContext(ctx, "agent ready", logkey.SandboxID, sb.ID, "restored", from != nil, "wait", time.Since(tReady), "since_create", time.Since(sb.CreatedAt))
	if err == nil {
		s.cfg.Recorder.StartPhase("agent_ready", sb.RuntimeName, time.Since(tReady))
	}
	return agent, err
}

// takeIdentity gives the agent of the restored sandbox sb, which still holds the
// identity it was saved with (its access token oldToken), sb's own: its token,
// hostname and env (envd's POST /init). It returns the connection to the agent with
// sb's token, on the connection the identity went over (a new connection into a
// sandbox just restored costs more than a request), or with the error the old one,
// for the caller to close.
func takeIdentity(ctx context.Context, dial func(address, token string) *agent, sb *domain.Sandbox, oldToken string) (*agent, error) {
	old := dial(sb.Address, oldToken)
	if err := old.conn.WaitReady(ctx); err != nil {
		return old, err
	}
	if err := old.conn.Init(ctx, agentclient.Identity{AccessToken: sb.AccessToken, Hostname: sb.ID, EnvVars: sb.Env}); err != nil {
		return old, fmt.Errorf("giving the restored agent its identity: %w", err)
	}
	return rekey(old, sb.AccessToken, func() *agent { return dial(sb.Address, sb.AccessToken) }), nil
}

// markRunning records a started sandbox as running, tracks it (with its template's
// private ports) and begins its metering.
func (s *Service) markRunning(ctx context.Context, sb *domain.Sandbox, agent *agent, privatePorts []int) (*domain.Sandbox, error) {
	sb.State, sb.StartedAt = domain.StateRunning, s.cfg.Now().UTC()
	if err := s.cfg.Store.UpdateSandbox(context.WithoutCancel(ctx), sb); err != nil {
		var h runtime.Handle
		_ = json.Unmarshal(sb.RuntimeHandle, &h)
		agent.conn.Close()
		_ = s.cfg.Node.Stop(context.WithoutCancel(ctx), sb.ID, sb.Slot, &h)
		return nil, fmt.Errorf("recording started sandbox: %w", err)
	}
	s.track(sb, agent, privatePorts)
	if s.cfg.Meter != nil {
		if err := s.cfg.Meter.Begin(context.WithoutCancel(ctx), sb); err != nil {
			s.log.Error("starting metering", logkey.SandboxID, sb.ID, logkey.Err, err)
		}
	}
	cp := *sb
	return &cp, nil
}
