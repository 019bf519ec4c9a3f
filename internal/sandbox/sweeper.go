package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/runtime"
)

// Sweeper keeps this server's sandboxes and the host in agreement. After a restart it
// re-attaches to the sandboxes a previous server left running and reaps those that
// died (Recover); then, and every interval (Run), it ends the sandboxes that stopped on
// their own (CheckLive) and removes runtime leftovers that have no live row (Sweep).
type Sweeper struct {
	sandboxes *Service
	log       *slog.Logger
}

// NewSweeper returns the sweeper of s's sandboxes.
func NewSweeper(s *Service) *Sweeper { return &Sweeper{sandboxes: s, log: s.log} }

// RecoverReport says what Recover found.
type RecoverReport struct {
	Reattached int // running sandboxes taken back
	Reaped     int // sandboxes that died while the server was down
	Orphans    int // runtime leftovers without a live row, removed
}

// activeSandboxes returns every sandbox of every team that is not terminal.
func activeSandboxes(ctx context.Context, store Store) ([]*domain.Sandbox, error) {
	var out []*domain.Sandbox
	cursor := ""
	for {
		page, next, err := store.ListSandboxes(ctx, domain.SandboxFilter{
			TeamID: domain.AnyTeam,
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
func (sw *Sweeper) Recover(ctx context.Context) (RecoverReport, error) {
	s := sw.sandboxes
	var rep RecoverReport
	active, err := activeSandboxes(ctx, s.cfg.Store)
	if err != nil {
		return rep, err
	}
	for _, sb := range active {
		var h runtime.Handle
		_ = json.Unmarshal(sb.RuntimeHandle, &h)
		if sb.State == domain.StateStarting {
			sw.reap(ctx, sb, &h, domain.StateError, "error: interrupted by a server restart while starting")
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
		if alive(ctx, s.cfg.Node, h, agent.conn) {
			if err := s.cfg.Node.Reattach(ctx, sb.Slot, sb.Internet); err != nil {
				sw.log.Error("restoring internet access", logkey.SandboxID, sb.ID, logkey.Err, err)
			}
			s.track(sb, agent, private)
			rep.Reattached++
			sw.log.Info("re-attached sandbox", logkey.SandboxID, sb.ID)
			continue
		}
		agent.conn.Close()
		sw.reap(ctx, sb, &h, domain.StateStopped, "lost: the sandbox stopped while the server was down")
		rep.Reaped++
	}
	n, err := sw.Sweep(ctx)
	rep.Orphans = n
	return rep, err
}

// alive reports whether the sandbox behind h still runs on n and its agent answers.
func alive(ctx context.Context, n Node, h runtime.Handle, agent lifecycleAgent) bool {
	drv, ok := n.DriverFor(h.Driver)
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

// reap removes a sandbox that is no longer wanted from the node and records why.
func (sw *Sweeper) reap(ctx context.Context, sb *domain.Sandbox, h *runtime.Handle, state domain.SandboxState, reason string) {
	s := sw.sandboxes
	if s.cfg.Meter != nil && !sb.StartedAt.IsZero() {
		// A dead sandbox's accounting and link survive until Stop: book them first.
		if err := s.cfg.Meter.End(ctx, sb, s.cfg.Now().UTC()); err != nil {
			sw.log.Error("closing metering of a reaped sandbox", logkey.SandboxID, sb.ID, logkey.Err, err)
		}
	}
	if err := s.cfg.Node.Stop(ctx, sb.ID, sb.Slot, h); err != nil {
		sw.log.Error("reaping sandbox", logkey.SandboxID, sb.ID, logkey.Err, err)
	}
	sb.State, sb.EndReason, sb.StoppedAt = state, reason, s.cfg.Now().UTC()
	if err := s.cfg.Store.UpdateSandbox(ctx, sb); err != nil {
		sw.log.Error("recording reaped sandbox", logkey.SandboxID, sb.ID, logkey.Err, err)
	}
	sw.log.Info("reaped sandbox", logkey.SandboxID, sb.ID, "reason", reason)
}

// Sweep removes runtime leftovers (runsc state, namespaces, directories) of sandboxes that
// are not live, and returns how many it removed.
func (sw *Sweeper) Sweep(ctx context.Context) (int, error) {
	s := sw.sandboxes
	s.startMu.Lock()
	defer s.startMu.Unlock()
	active, err := activeSandboxes(ctx, s.cfg.Store)
	if err != nil {
		return 0, err
	}
	live := map[string]bool{}
	for _, sb := range active {
		live[sb.ID] = true
	}
	s.reg.present(live)
	orphans, err := s.cfg.Node.Orphans(ctx, live)
	if err != nil {
		return 0, err
	}
	for _, id := range orphans {
		sw.log.Info("removing runtime leftovers", logkey.SandboxID, id)
		if err := s.cfg.Node.StopOrphan(ctx, id); err != nil {
			sw.log.Error("removing leftovers", logkey.SandboxID, id, logkey.Err, err)
		}
	}
	return len(orphans), nil
}

// CheckLive ends the tracked sandboxes whose runtime says they are no longer running
// (killed behind Warren's back, or, on gVisor, over their memory limit), so that their
// rows do not claim "running" until the timeout. It returns how many it ended.
func (sw *Sweeper) CheckLive(ctx context.Context) int {
	s := sw.sandboxes
	n := 0
	for _, sb := range s.reg.rows() {
		var h runtime.Handle
		_ = json.Unmarshal(sb.RuntimeHandle, &h)
		drv, ok := s.cfg.Node.DriverFor(h.Driver)
		if !ok {
			continue
		}
		st, err := drv.Status(ctx, h)
		if err != nil || st == runtime.StatusRunning || st == runtime.StatusUnknown {
			continue
		}
		if err := s.end(ctx, sb.ID, "lost: the sandbox stopped unexpectedly (killed, or over its memory or process limit)"); err == nil {
			n++
		}
	}
	return n
}

// Run checks live sandboxes and sweeps leftovers every interval until ctx ends.
func (sw *Sweeper) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n := sw.CheckLive(ctx); n > 0 {
				sw.log.Info("ended sandboxes that stopped on their own", "count", n)
			}
			if _, err := sw.Sweep(ctx); err != nil && ctx.Err() == nil {
				sw.log.Error("sweep", logkey.Err, err)
			}
		}
	}
}
