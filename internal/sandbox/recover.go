package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// RecoverReport says what Recover found.
type RecoverReport struct {
	Reattached int // running sandboxes taken back
	Reaped     int // sandboxes that died while the server was down
	Orphans    int // runtime leftovers without a live row, removed
}

// activeSandboxes returns every sandbox of every team that is not terminal.
func (s *Service) activeSandboxes(ctx context.Context) ([]*domain.Sandbox, error) {
	var out []*domain.Sandbox
	cursor := ""
	for {
		page, next, err := s.cfg.Store.ListSandboxes(ctx, domain.SandboxFilter{
			States: []domain.SandboxState{domain.StateStarting, domain.StateRunning},
			Cursor: cursor, Limit: 500,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

// Recover re-attaches to the sandboxes a previous server left running, reaps those that
// died meanwhile, and removes runtime leftovers that have no live row. Call it once at
// start-up, before serving.
func (s *Service) Recover(ctx context.Context) (RecoverReport, error) {
	var rep RecoverReport
	active, err := s.activeSandboxes(ctx)
	if err != nil {
		return rep, err
	}
	for _, sb := range active {
		var h runtime.Handle
		_ = json.Unmarshal(sb.RuntimeHandle, &h)
		if sb.State == domain.StateStarting {
			s.reap(ctx, sb, &h, domain.StateError, "error: interrupted by a server restart while starting")
			rep.Reaped++
			continue
		}
		// The template's private ports must be known before the sandbox is routed again:
		// without them the proxy would leave its services open.
		tpl, err := s.cfg.Store.GetTemplate(ctx, sb.TemplateID)
		var private []int
		switch {
		case err == nil:
			private = tpl.PrivatePorts
		case !domain.IsKind(err, domain.KindNotFound): // a template that is gone declares nothing
			return rep, fmt.Errorf("reading template %s of sandbox %s: %w", sb.TemplateID, sb.ID, err)
		}
		agent := s.cfg.dial(sb.Address, sb.AccessToken)
		if s.alive(ctx, h, agent) {
			if err := s.cfg.Node.Reattach(ctx, sb.Slot, sb.Internet); err != nil {
				s.log.Error("restoring internet access", "sandbox", sb.ID, "err", err)
			}
			s.track(sb, agent, private)
			rep.Reattached++
			s.log.Info("re-attached sandbox", "sandbox", sb.ID)
			continue
		}
		agent.Close()
		s.reap(ctx, sb, &h, domain.StateStopped, "lost: the sandbox stopped while the server was down")
		rep.Reaped++
	}
	n, err := s.Sweep(ctx)
	rep.Orphans = n
	return rep, err
}

func (s *Service) alive(ctx context.Context, h runtime.Handle, agent agent) bool {
	drv, ok := s.cfg.Node.DriverFor(h.Driver)
	if !ok {
		return false // started by a runtime this server no longer offers
	}
	st, err := drv.Status(ctx, h)
	if err != nil || st != runtime.StatusRunning {
		return false
	}
	hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return agent.WaitReady(hctx) == nil
}

func (s *Service) reap(ctx context.Context, sb *domain.Sandbox, h *runtime.Handle, state domain.SandboxState, reason string) {
	if s.cfg.Meter != nil && !sb.StartedAt.IsZero() {
		// A dead sandbox's accounting and link survive until Stop: book them first.
		if err := s.cfg.Meter.End(ctx, sb, s.cfg.Now().UTC()); err != nil {
			s.log.Error("closing metering of a reaped sandbox", "sandbox", sb.ID, "err", err)
		}
	}
	if err := s.cfg.Node.Stop(ctx, sb.ID, sb.Slot, h); err != nil {
		s.log.Error("reaping sandbox", "sandbox", sb.ID, "err", err)
	}
	sb.State, sb.EndReason, sb.StoppedAt = state, reason, s.cfg.Now().UTC()
	if err := s.cfg.Store.UpdateSandbox(ctx, sb); err != nil {
		s.log.Error("recording reaped sandbox", "sandbox", sb.ID, "err", err)
	}
	s.log.Info("reaped sandbox", "sandbox", sb.ID, "reason", reason)
}

// Sweep removes runtime leftovers (runsc state, namespaces, directories) of sandboxes that
// are not live, and returns how many it removed.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	active, err := s.activeSandboxes(ctx)
	if err != nil {
		return 0, err
	}
	live := map[string]bool{}
	for _, sb := range active {
		live[sb.ID] = true
	}
	s.mu.Lock()
	for id := range s.live {
		live[id] = true
	}
	for id := range s.tearing {
		live[id] = true
	}
	s.mu.Unlock()
	orphans, err := s.cfg.Node.Orphans(ctx, live)
	if err != nil {
		return 0, err
	}
	for _, id := range orphans {
		s.log.Info("removing runtime leftovers", "sandbox", id)
		if err := s.cfg.Node.StopOrphan(ctx, id); err != nil {
			s.log.Error("removing leftovers", "sandbox", id, "err", err)
		}
	}
	return len(orphans), nil
}

// CheckLive ends the tracked sandboxes whose runtime says they are no longer running
// (killed behind Warren's back, or, on gVisor, over their memory limit), so that their
// rows do not claim "running" until the timeout. It returns how many it ended.
func (s *Service) CheckLive(ctx context.Context) int {
	s.mu.Lock()
	type item struct {
		id string
		h  runtime.Handle
	}
	var items []item
	for id, ls := range s.live {
		if ls.ending {
			continue
		}
		var h runtime.Handle
		_ = json.Unmarshal(ls.sb.RuntimeHandle, &h)
		items = append(items, item{id, h})
	}
	s.mu.Unlock()
	n := 0
	for _, it := range items {
		drv, ok := s.cfg.Node.DriverFor(it.h.Driver)
		if !ok {
			continue
		}
		st, err := drv.Status(ctx, it.h)
		if err != nil || st == runtime.StatusRunning || st == runtime.StatusUnknown {
			continue
		}
		if err := s.end(ctx, it.id, "lost: the sandbox stopped unexpectedly (killed, or over its memory or process limit)"); err == nil {
			n++
		}
	}
	return n
}

// RunSweeper checks live sandboxes and sweeps leftovers every interval until ctx ends.
func (s *Service) RunSweeper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n := s.CheckLive(ctx); n > 0 {
				s.log.Info("ended sandboxes that stopped on their own", "count", n)
			}
			if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("sweep", "err", err)
			}
		}
	}
}
