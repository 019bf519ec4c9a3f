package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/warren-sh/warren/internal/agentclient"
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
	Paused     int // paused sandboxes kept (those whose resume a restart cut off included)
	Orphans    int // runtime leftovers without a live row, removed
}

// activeSandboxes returns every sandbox of every team on nodes (nil: every node) that
// is not terminal: live ones and paused ones (whose directories the sweeper must keep).
func activeSandboxes(ctx context.Context, store Store, nodes []string) ([]*domain.Sandbox, error) {
	var out []*domain.Sandbox
	cursor := ""
	for {
		page, next, err := store.ListSandboxes(ctx, domain.SandboxFilter{
			TeamID: domain.AnyTeam, Nodes: nodes,
			States: []domain.SandboxState{domain.StateStarting, domain.StateRunning, domain.StatePaused},
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
	active, err := activeSandboxes(ctx, s.cfg.Store, s.nodeScope())
	if err != nil {
		return rep, err
	}
	for _, sb := range active {
		var h runtime.Handle
		_ = json.Unmarshal(sb.RuntimeHandle, &h)
		if sb.State == domain.StatePaused {
			rep.Paused++
			continue
		}
		if sb.State == domain.StateStarting && !sb.PausedAt.IsZero() {
			// A resume cut off by the restart: the sandbox goes back to paused, its
			// directory (image and files) as the pause left it.
			sw.unresume(ctx, sb)
			rep.Paused++
			continue
		}
		if sb.State == domain.StateStarting {
			// A start cut off before its handle was recorded has none: the node then
			// removes what it has of the id (a zero handle would name no sandbox, and
			// the driver's cleanup of "" reaches every sandbox's cgroup parent).
			hp := &h
			if h.ID == "" {
				hp = nil
			}
			sw.reap(ctx, sb, hp, domain.StateError, "error: interrupted by a server restart while starting")
			rep.Reaped++
			continue
		}
		// The template's private ports must be known before the sandbox is routed again:
		// without them the proxy would leave its services open.
		tpl, err := s.cfg.Store.GetTemplate(ctx, sb.TeamID, sb.TemplateID)
		var private []int
		switch {
		case err == nil:
			private = tpl.PrivatePorts
		case !domain.IsKind(err, domain.KindNotFound): // a template that is gone declares nothing
			return rep, fmt.Errorf("reading template %s of sandbox %s: %w", sb.TemplateID, sb.ID, err)
		}
		agent := s.cfg.dial(sb.Address, sb.AccessToken)
		thaw(ctx, s.cfg.Node, h)
		if alive(ctx, s.cfg.Node, h, agent.conn) {
			if err := s.cfg.Node.Reattach(ctx, sb); err != nil {
				sw.log.Error("restoring internet access and egress policy", logkey.SandboxID, sb.ID, logkey.Err, err)
			}
			s.track(sb, agent, private)
			rep.Reattached++
			sw.log.Info("re-attached sandbox", logkey.SandboxID, sb.ID)
			continue
		}
		agent.conn.Close()
		if at := s.cfg.Node.ImageTime(sb.ID); !at.IsZero() && at.After(sb.StartedAt) {
			// The restart cut off a pause after its checkpoint: the sandbox is saved.
			sw.finishPause(ctx, sb, &h, at)
			rep.Paused++
			continue
		}
		sw.reap(ctx, sb, &h, domain.StateStopped, "lost: the sandbox stopped while the server was down")
		countEnd(s.cfg.Recorder, endLabel("lost: the sandbox stopped while the server was down"))
		rep.Reaped++
	}
	if n := sw.ExpirePaused(ctx); n > 0 {
		sw.log.Info("removed sandboxes past their paused retention", "count", n)
	}
	n, err := sw.Sweep(ctx)
	rep.Orphans = n
	return rep, err
}

// thaw lets a sandbox go on that a pause cut off by the restart left frozen (before or
// after its checkpoint: the checkpoint leaves it running, frozen). It does nothing to
// a sandbox that is not frozen.
func thaw(ctx context.Context, n Node, h runtime.Handle) {
	drv, ok := n.DriverFor(h.Driver)
	if !ok {
		return
	}
	if fr, ok := drv.(runtime.Freezer); ok {
		_ = fr.Thaw(ctx, h) // fails on a sandbox that is not frozen, as it should
	}
}

// finishPause records paused a sandbox whose pause the restart cut off once it was
// checkpointed (at at): what is left of it on the node but its directory is taken down.
func (sw *Sweeper) finishPause(ctx context.Context, sb *domain.Sandbox, h *runtime.Handle, at time.Time) {
	s := sw.sandboxes
	if err := s.cfg.Node.Release(ctx, sb.ID, sb.Slot, h); err != nil {
		sw.log.Error("taking down a cut-off pause", logkey.SandboxID, sb.ID, logkey.Err, err)
	}
	sb.State, sb.PausedAt, sb.Address, sb.Slot = domain.StatePaused, at.UTC(), "", -1
	if err := s.cfg.Store.UpdateSandbox(ctx, sb); err != nil {
		sw.log.Error("recording a cut-off pause as paused", logkey.SandboxID, sb.ID, logkey.Err, err)
	}
	sw.log.Info("a restart cut off the pause of a sandbox after its checkpoint; it is paused", logkey.SandboxID, sb.ID)
}

// unresume puts a sandbox whose resume a restart cut off back to paused: whatever the
// resume had started (runtime, network, mounts) is taken down, its directory kept.
func (sw *Sweeper) unresume(ctx context.Context, sb *domain.Sandbox) {
	s := sw.sandboxes
	if err := s.cfg.Node.Release(ctx, sb.ID, -1, nil); err != nil {
		sw.log.Error("taking down a cut-off resume", logkey.SandboxID, sb.ID, logkey.Err, err)
	}
	sb.State, sb.Slot, sb.Address = domain.StatePaused, -1, ""
	if err := s.cfg.Store.UpdateSandbox(ctx, sb); err != nil {
		sw.log.Error("recording a cut-off resume as paused", logkey.SandboxID, sb.ID, logkey.Err, err)
	}
	sw.log.Info("a restart cut off the resume of a sandbox; it is paused again", logkey.SandboxID, sb.ID)
}

// ExpirePaused books the storage of paused sandboxes (at most every pausedMeterGap),
// removes those paused for longer than the paused retention (Config.PausedRetention;
// 0: none), and the images of failed resumes kept as long, and returns how many
// sandboxes it removed.
func (sw *Sweeper) ExpirePaused(ctx context.Context) int {
	s := sw.sandboxes
	expire := s.cfg.PausedRetention > 0
	cutoff := s.cfg.Now().Add(-s.cfg.PausedRetention)
	if !expire {
		cutoff = time.Time{}
	} else if n, err := s.cfg.Node.RemoveLost(cutoff); err != nil {
		sw.log.Error("removing kept images of failed resumes", logkey.Err, err)
	} else if n > 0 {
		sw.log.Info("removed kept images of failed resumes past the paused retention", "count", n)
	}
	n := 0
	cursor := ""
	for {
		page, next, err := s.cfg.Store.ListSandboxes(ctx, domain.SandboxFilter{TeamID: domain.AnyTeam,
			States: []domain.SandboxState{domain.StatePaused}, Nodes: s.nodeScope(), Cursor: cursor, Limit: 500})
		if err != nil {
			sw.log.Error("listing paused sandboxes", logkey.Err, err)
			return n
		}
		for _, sb := range page {
			if !expire || sb.PausedAt.After(cutoff) {
				s.meterPaused(ctx, sb, pausedMeterGap)
				continue
			}
			if err := s.discardPaused(ctx, sb, "paused retention ended", "retention"); err != nil {
				sw.log.Error("removing a sandbox past its paused retention", logkey.SandboxID, sb.ID, logkey.Err, err)
				continue
			}
			n++
		}
		if next == "" {
			return n
		}
		cursor = next
	}
}

// alive reports whether the sandbox behind h still runs on n and its agent answers
// (and takes the server's token). A sandbox whose agent does not answer may be frozen:
// a server killed while it saved the sandbox (a snapshot, a fork, a pause under way)
// left it so; it is thawed and asked again.
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
	if agent.WaitReady(hctx) != nil {
		fr, ok := drv.(runtime.Freezer)
		if !ok || fr.Thaw(ctx, h) != nil {
			return false
		}
		cancel()
		hctx, cancel = context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if agent.WaitReady(hctx) != nil {
			return false
		}
	}
	// An agent that refuses the row's token is of no use: a server killed in the
	// middle of a warm pool claim wrote the row before the agent took its token.
	_, err = agent.Metrics(hctx)
	return !errors.Is(err, agentclient.ErrTokenRefused)
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
	active, err := activeSandboxes(ctx, s.cfg.Store, s.nodeScope())
	if err != nil {
		return 0, err
	}
	live := map[string]bool{}
	for _, sb := range active {
		live[sb.ID] = true // paused ones too: their directory is all they are
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
		const reason = "lost: the sandbox stopped unexpectedly (killed, or over its memory or process limit)"
		if err := s.end(ctx, sb.ID, reason, endLabel(reason)); err == nil {
			n++
		}
	}
	return n
}

// DropEnded stops the tracked sandboxes whose rows have ended behind this server's
// back, without writing their rows: the monitor of another server stopped them as lost
// while this node was down (it calls this when it is back). It returns how many it
// stopped; the sweep removes what the teardown leaves.
func (sw *Sweeper) DropEnded(ctx context.Context) int {
	s := sw.sandboxes
	n := 0
	for _, sb := range s.reg.rows() {
		row, err := s.cfg.Store.GetSandbox(ctx, domain.AnyTeam, sb.ID)
		if err != nil || !row.State.Terminal() {
			continue
		}
		if _, ok := s.halt(ctx, sb.ID, row.EndReason, endLabel(row.EndReason)); ok {
			sw.log.Info("stopped a sandbox that ended while this node was away", logkey.SandboxID, sb.ID, "reason", row.EndReason)
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
			if n := sw.ExpirePaused(ctx); n > 0 {
				sw.log.Info("removed sandboxes past their paused retention", "count", n)
			}
			if _, err := (idempotent{sw.sandboxes}).expireIdempotencyKeys(ctx); err != nil && ctx.Err() == nil {
				sw.log.Error("removing expired idempotency keys", logkey.Err, err)
			}
			if _, err := sw.Sweep(ctx); err != nil && ctx.Err() == nil {
				sw.log.Error("sweep", logkey.Err, err)
			}
		}
	}
}
