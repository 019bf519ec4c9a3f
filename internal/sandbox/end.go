package sandbox

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// track registers a running sandbox (with its template's private ports) and arms its
// timeout, which ends it, or pauses it when its lifecycle says so. A timeout that fires
// after Close does nothing: the sandbox keeps running, and the next server's Recover
// ends (or pauses) it once it is due.
func (s *Service) track(sb *domain.Sandbox, agent *agent, privatePorts []int) {
	id := sb.ID
	pauseAtTimeout := sb.Lifecycle.OnTimeout == domain.OnTimeoutPause
	expire := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if pauseAtTimeout {
			_, err := s.pause(ctx, id)
			if err == nil {
				return
			}
			// A sandbox that cannot be paused ends as any other would at its timeout.
			s.log.Error("pausing sandbox at its timeout failed; ending it", logkey.SandboxID, id, logkey.Err, err)
		}
		if err := s.end(ctx, id, "timeout", "timeout"); err != nil && !domain.IsKind(err, domain.KindNotFound) {
			s.log.Error("ending sandbox at its timeout", logkey.SandboxID, id, logkey.Err, err)
		}
	}
	s.reg.add(sb, agent, privatePorts, sb.EndsAt.Sub(s.cfg.Now()), func() { s.reg.spawn(expire) })
}

// Kill implements domain.SandboxService.
func (s *Service) Kill(ctx context.Context, p domain.Principal, id string) (err error) {
	ctx, span := startSpan(ctx, "sandbox.kill", attrSandboxID.String(id))
	defer func() { endSpan(span, err) }()
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return err
	}
	sb, err := s.getHere(ctx, p, id)
	if err != nil {
		return err
	}
	if sb.State.Terminal() {
		return domain.Errorf(domain.KindNotFound, "sandbox %q is not running (it is %s)", id, sb.State)
	}
	if sb.State == domain.StatePaused {
		return s.discardPaused(ctx, sb, "killed", "request")
	}
	return s.end(ctx, id, "killed", "request")
}

// endLabel is how the metrics count an end for reason: a kill reason (request,
// timeout, retention, error) or, for a sandbox that ended by itself, "lost:" and why.
func endLabel(reason string) string {
	switch {
	case reason == "killed":
		return "request"
	case reason == "timeout":
		return "timeout"
	case reason == "paused retention ended":
		return "retention"
	case strings.HasPrefix(reason, "lost: the sandbox stopped unexpectedly"):
		return "lost:stopped_unexpectedly"
	case strings.HasPrefix(reason, "lost: the sandbox stopped while the server was down"):
		return "lost:stopped_while_down"
	case strings.HasPrefix(reason, "lost: node "):
		return "lost:node_down"
	case strings.HasPrefix(reason, "lost:"):
		return "lost:other"
	}
	return "error"
}

// countEnd records an end counted as label (endLabel, or "shutdown") in rec.
func countEnd(rec Recorder, label string) {
	if lost, ok := strings.CutPrefix(label, "lost:"); ok {
		rec.Lost(lost)
		return
	}
	rec.Killed(label)
}

// end stops a live sandbox and records why; the metrics count it as label (endLabel of
// the reason, or "shutdown"). The sandbox is halted at once (processes killed, network
// removed); the node removes the rest in the background.
func (s *Service) end(ctx context.Context, id, reason, label string) error {
	sb, ok := s.halt(ctx, id, reason, label)
	if !ok {
		return domain.Errorf(domain.KindNotFound, "sandbox %q is not running", id)
	}
	sb.State, sb.EndReason, sb.StoppedAt = domain.StateStopped, reason, s.cfg.Now().UTC()
	if err := s.cfg.Store.UpdateSandbox(context.WithoutCancel(ctx), &sb); err != nil {
		return fmt.Errorf("recording stopped sandbox: %w", err)
	}
	s.log.InfoContext(ctx, "sandbox stopped", logkey.SandboxID, id, "reason", reason)
	return nil
}

// recordLifecycle records the operation op (pause, resume, fork, snapshot) begun at t0 that
// ended with *err in the metrics, unless it was refused (the caller's error: a scope,
// a state, a quota, a bad request), which is no operation.
func recordLifecycle(rec Recorder, op string, t0 time.Time, err *error) {
	if *err != nil {
		switch domain.KindOf(*err) {
		case domain.KindInvalid, domain.KindNotFound, domain.KindForbidden, domain.KindUnauthorized,
			domain.KindConflict, domain.KindQuotaExceeded:
			return
		}
	}
	rec.Lifecycle(op, time.Since(t0), *err == nil)
}
