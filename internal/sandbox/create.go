package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/runtime"
)

// Create implements domain.SandboxService: it validates the request, asks the node
// whether it has room (Config.Room), reserves an address slot, writes the row (starting) within the team's quota, starts the sandbox
// on the node, waits for its agent (and its template's server), and marks it running.
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
	sb, tpl, err := s.prepare(ctx, p, team, req)
	if err != nil {
		return nil, err
	}
	if s.cfg.Room != nil {
		if err := s.cfg.Room(ctx, sb.Limits); err != nil {
			return nil, err
		}
	}

	s.startMu.RLock()
	defer s.startMu.RUnlock()
	used, err := s.cfg.Store.UsedSlots(ctx)
	if err != nil {
		return nil, err
	}
	if sb.Slot, err = s.reg.reserveSlot(used, s.cfg.Node.Slots()); err != nil {
		return nil, err
	}
	defer s.reg.releaseSlot(sb.Slot)
	if err := s.cfg.Store.CreateSandboxWithinQuota(ctx, sb, quota); err != nil {
		if domain.IsKind(err, domain.KindQuotaExceeded) {
			return nil, err
		}
		return nil, fmt.Errorf("recording sandbox: %w", err)
	}
	// Starting must finish (or clean up) even if the client goes away mid-way.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.StartTimeout)
	defer cancel()
	agent, err := s.start(sctx, sb, tpl)
	if err != nil {
		// The cause (runsc's stderr, the sandbox's address) is for the operator log only:
		// EndReason and the error below reach the tenant.
		s.log.Error("sandbox failed to start", logkey.SandboxID, sb.ID, logkey.Err, err)
		sb.State, sb.EndReason, sb.StoppedAt = domain.StateError, "error: the sandbox could not be started", s.cfg.Now().UTC()
		if uerr := s.cfg.Store.UpdateSandbox(context.WithoutCancel(ctx), sb); uerr != nil {
			s.log.Error("recording failed start", logkey.SandboxID, sb.ID, logkey.Err, uerr)
		}
		return nil, domain.Errorf(domain.KindUnavailable, "sandbox %s could not be started; retry, and if it keeps failing, ask the operator to look it up in the server log and run 'warren doctor'", sb.ID)
	}
	return s.markRunning(ctx, sb, agent, tpl.PrivatePorts)
}

// prepare validates a create request and returns the sandbox's row (without its slot)
// and its template.
func (s *Service) prepare(ctx context.Context, p domain.Principal, team *domain.Team, req domain.CreateSandbox) (*domain.Sandbox, *domain.Template, error) {
	if req.TemplateID == "" {
		req.TemplateID = "base"
	}
	tpl, err := s.cfg.Store.GetTemplate(ctx, req.TemplateID)
	if domain.IsKind(err, domain.KindNotFound) {
		return nil, nil, domain.Invalid("template", "template %q does not exist; list templates with GET /v1/templates", req.TemplateID)
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
	limits, err := resolveLimits(req.Limits, s.cfg.DefaultLimits, s.cfg.MaxLimits)
	if err != nil {
		return nil, nil, err
	}
	if err := validateMap("env", req.Env, true); err != nil {
		return nil, nil, err
	}
	if err := validateMap("metadata", req.Metadata, false); err != nil {
		return nil, nil, err
	}
	drv, err := pickRuntime(s.cfg.Node, s.cfg.Runtimes, team, req.Runtime, req.MinIsolation)
	if err != nil {
		return nil, nil, err
	}
	trafficToken := ""
	if req.AllowPublicTraffic != nil && !*req.AllowPublicTraffic {
		trafficToken = newToken()
	}
	now := s.cfg.Now().UTC()
	return &domain.Sandbox{
		ID: domain.NewID(20), TeamID: p.TeamID, TemplateID: tpl.ID, State: domain.StateStarting,
		Metadata: req.Metadata, Env: req.Env, Limits: limits, Internet: req.Internet == nil || *req.Internet,
		RuntimeName: drv.Capabilities().Name, AccessToken: newToken(), TrafficToken: trafficToken,
		CreatedAt: now, EndsAt: now.Add(timeout),
	}, tpl, nil
}

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// start starts sb on the node and waits until its agent, and its template's server if
// it has one, answer. On error nothing of the sandbox is left on the node.
func (s *Service) start(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template) (*agent, error) {
	h, addr, err := s.cfg.Node.Start(ctx, sb, tpl)
	if err != nil {
		return nil, err
	}
	sb.RuntimeHandle, _ = json.Marshal(h)
	sb.Address = addr
	agent := s.cfg.dial(addr, sb.AccessToken)
	tReady := time.Now()
	err = agent.conn.WaitReady(ctx)
	if err == nil && tpl.ReadyPort > 0 {
		err = agent.conn.WaitPortReady(ctx, tpl.ReadyPort)
	}
	s.log.Debug("agent ready", logkey.SandboxID, sb.ID, "wait", time.Since(tReady), "since_create", time.Since(sb.CreatedAt))
	if err != nil {
		agent.conn.Close()
		_ = s.cfg.Node.Stop(context.WithoutCancel(ctx), sb.ID, sb.Slot, &h)
		return nil, err
	}
	return agent, nil
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
