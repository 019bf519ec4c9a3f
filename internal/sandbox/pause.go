package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/runtime"
)

// Pause and resume. A paused sandbox is a row in state paused and its directory on
// the node (checkpoint image and files): it runs nothing, holds no address slot
// (its row's Slot is -1) and counts against no quota. Its meter is closed at the
// pause and opened afresh at the resume; meanwhile its storage is booked as disk
// MB·s (meterPaused), by the sweeper every pausedMeterGap and at the resume or removal.

// pausing is the Service's job of pausing and resuming (its methods are the
// Service's).
type pausing struct{ *Service }

// pauseTimeout bounds a checkpoint (the sandbox's memory written to disk).
const pauseTimeout = 2 * time.Minute

// pausedMeterGap is how often the sweeper books a paused sandbox's storage (measuring
// it walks its files); a resume or a removal books the rest.
const pausedMeterGap = 15 * time.Minute

// meterPaused books the storage the paused sandbox sb has held since it was last
// booked, unless that was less than minGap ago.
func (s *Service) meterPaused(ctx context.Context, sb *domain.Sandbox, minGap time.Duration) {
	if s.cfg.Meter == nil {
		return
	}
	bytes := func() int64 { return s.cfg.Node.PausedBytes(sb.ID) }
	if err := s.cfg.Meter.SamplePaused(ctx, sb, s.cfg.Now().UTC(), minGap, bytes); err != nil {
		s.log.Error("metering a paused sandbox's storage", logkey.SandboxID, sb.ID, logkey.Err, err)
	}
}

// Pause implements domain.SandboxService.
func (s *pausing) Pause(ctx context.Context, p domain.Principal, id string) (_ *domain.Sandbox, err error) {
	ctx, span := startSpan(ctx, "sandbox.pause", attrSandboxID.String(id))
	defer func() { endSpan(span, err) }()
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return nil, err
	}
	row, err := s.getHere(ctx, p, id)
	if err != nil {
		return nil, err
	}
	switch row.State {
	case domain.StateRunning:
	case domain.StatePaused:
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is already paused; resume it with POST /v1/sandboxes/%s/resume", id, id)
	default:
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is %s; only a running sandbox can be paused", id, row.State)
	}
	if err := s.checkpointable(row); err != nil {
		return nil, err
	}
	return s.pause(ctx, id)
}

// checkpointable refuses a sandbox whose runtime cannot checkpoint (runc).
func (s *pausing) checkpointable(sb *domain.Sandbox) error {
	drv, ok := s.cfg.Node.DriverFor(sb.RuntimeName)
	if !ok {
		return domain.Errorf(domain.KindConflict, "sandbox %q runs on runtime %s, which this server no longer offers", sb.ID, sb.RuntimeName)
	}
	if _, ok := drv.(runtime.Checkpointer); !ok {
		return domain.Errorf(domain.KindConflict, "sandbox %q runs on runtime %s, which cannot pause, fork or snapshot a sandbox; create it with runtime gvisor for that", sb.ID, sb.RuntimeName)
	}
	return nil
}

// pause checkpoints the live sandbox id and records it paused. No new work starts in
// it meanwhile; what runs in it ends only once the checkpoint succeeded. A failed
// checkpoint leaves it running as before (its meter and timer too).
func (s *pausing) pause(ctx context.Context, id string) (_ *domain.Sandbox, err error) {
	defer recordLifecycle(s.cfg.Recorder, "pause", time.Now(), &err)
	ls, ok := s.reg.beginPause(id)
	if !ok {
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is being stopped or paused", id)
	}
	sb := *ls.sb
	now := s.cfg.Now().UTC()
	if s.cfg.Meter != nil {
		// The last reading must be taken while the sandbox still exists.
		if err := s.cfg.Meter.End(ctx, &sb, now); err != nil {
			s.log.Error("closing metering at pause", logkey.SandboxID, id, logkey.Err, err)
		}
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pauseTimeout)
	defer cancel()
	t0 := time.Now()
	if err := s.cfg.Node.Pause(pctx, &sb); err != nil {
		s.log.ErrorContext(ctx, "pausing sandbox failed; it keeps running", logkey.SandboxID, id, logkey.Err, err)
		s.reg.abortPause(ls, sb.EndsAt.Sub(s.cfg.Now()))
		if s.cfg.Meter != nil {
			again := sb
			again.StartedAt = s.cfg.Now().UTC()
			if merr := s.cfg.Meter.Begin(context.WithoutCancel(ctx), &again); merr != nil {
				s.log.Error("metering again after a failed pause", logkey.SandboxID, id, logkey.Err, merr)
			}
		}
		if domain.IsKind(err, domain.KindConflict) {
			return nil, err
		}
		if errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "no space left on device") {
			return nil, domain.Errorf(domain.KindUnavailable, "sandbox %s could not be paused: the node's disk is full, so its memory cannot be saved; it keeps running. Free disk space on the node (or kill sandboxes) and pause it again", id)
		}
		return nil, fmt.Errorf("pausing sandbox %s (it keeps running): %w", id, err)
	}
	ls.agent.conn.Close()
	s.reg.paused(ls, domain.Errorf(domain.KindConflict, "sandbox %s was paused while the request ran; resume it (POST /v1/sandboxes/%s/resume) and retry", id, id))
	sb.State, sb.PausedAt, sb.Address, sb.Slot = domain.StatePaused, now, "", -1
	if err := s.cfg.Store.UpdateSandbox(context.WithoutCancel(ctx), &sb); err != nil {
		return nil, fmt.Errorf("recording paused sandbox: %w", err)
	}
	s.log.InfoContext(ctx, "sandbox paused", logkey.SandboxID, id, "took", time.Since(t0))
	return &sb, nil
}

// Resume implements domain.SandboxService.
func (s *pausing) Resume(ctx context.Context, p domain.Principal, id string, d time.Duration) (_ *domain.Sandbox, err error) {
	ctx, span := startSpan(ctx, "sandbox.resume", attrSandboxID.String(id))
	defer func() { endSpan(span, err) }()
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
	if d < 0 {
		return nil, domain.Invalid("timeout", "timeout must not be negative")
	}
	switch row.State {
	case domain.StatePaused:
	case domain.StateRunning, domain.StateStarting:
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is already %s; only a paused sandbox can be resumed", id, row.State)
	default:
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is %s; only a paused sandbox can be resumed", id, row.State)
	}
	return s.resume(ctx, id, d)
}

// resume starts the paused sandbox id again, to end d from now (0: the default
// timeout). Calls for the same sandbox at once wait for the first one's outcome.
func (s *pausing) resume(ctx context.Context, id string, d time.Duration) (_ *domain.Sandbox, err error) {
	defer recordLifecycle(s.cfg.Recorder, "resume", time.Now(), &err)
	done, first := s.reg.beginResume(id)
	if !first {
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		row, err := s.cfg.Store.GetSandbox(ctx, domain.AnyTeam, id)
		if err != nil {
			return nil, err
		}
		if row.State != domain.StateRunning {
			return nil, domain.Errorf(domain.KindConflict, "sandbox %q could not be resumed (it is %s)", id, row.State)
		}
		return row, nil
	}
	defer s.reg.endResume(id)
	row, err := s.cfg.Store.GetSandbox(ctx, domain.AnyTeam, id)
	if err != nil {
		return nil, err
	}
	if row.State != domain.StatePaused {
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is %s; only a paused sandbox can be resumed", id, row.State)
	}
	s.meterPaused(ctx, row, 0)
	team, err := s.cfg.Store.GetTeam(ctx, row.TeamID)
	if err != nil {
		return nil, fmt.Errorf("reading team: %w", err)
	}
	quota := team.Quota
	if s.cfg.Admit != nil {
		if quota, err = s.cfg.Admit(ctx, team); err != nil {
			return nil, err
		}
	}
	tpl, err := s.cfg.Store.GetTemplate(ctx, row.TeamID, row.TemplateID)
	if err != nil {
		// The node resumes on the root filesystem the sandbox ran on; the template row
		// gives only its start command and ports.
		if !domain.IsKind(err, domain.KindNotFound) {
			return nil, err
		}
		tpl = &domain.Template{ID: row.TemplateID}
	}
	if s.cfg.Room != nil {
		if err := s.cfg.Room(ctx, row.Limits); err != nil {
			return nil, err
		}
	}
	if d <= 0 {
		d = s.cfg.DefaultTimeout
	}

	s.startMu.RLock()
	defer s.startMu.RUnlock()
	used, err := s.cfg.Store.UsedSlots(ctx, s.nodeScope())
	if err != nil {
		return nil, err
	}
	sb := *row
	if sb.Slot, err = s.reg.reserveSlot(used, s.cfg.Node.Slots()); err != nil {
		return nil, err
	}
	defer s.reg.releaseSlot(sb.Slot)
	sb.State, sb.EndsAt = domain.StateStarting, s.cfg.Now().UTC().Add(d)
	if err := s.cfg.Store.ResumeSandboxWithinQuota(ctx, &sb, quota); err != nil {
		if domain.IsKind(err, domain.KindQuotaExceeded) {
			return nil, err
		}
		return nil, fmt.Errorf("recording resuming sandbox: %w", err)
	}
	// Not bounded by Config.Life: a resume cut short would be marked lost, though its
	// checkpoint is sound; KillAll waits for it (a resume is quick) and then ends it.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.StartTimeout)
	defer cancel()
	t0 := time.Now()
	agent, err := s.restore(sctx, &sb, tpl)
	if err != nil {
		s.log.ErrorContext(ctx, "sandbox failed to resume; it is lost", logkey.SandboxID, id, logkey.Err, err)
		s.cfg.Recorder.Lost("resume_failed")
		sb.State, sb.StoppedAt = domain.StateError, s.cfg.Now().UTC()
		sb.EndReason = "lost: the sandbox could not be resumed from its checkpoint; its image is kept on the node for the operator to inspect"
		if uerr := s.cfg.Store.UpdateSandbox(context.WithoutCancel(ctx), &sb); uerr != nil {
			s.log.Error("recording failed resume", logkey.SandboxID, id, logkey.Err, uerr)
		}
		return nil, fmt.Errorf("resuming sandbox %s: %w", id, err)
	}
	s.log.InfoContext(ctx, "sandbox resumed", logkey.SandboxID, id, "took", time.Since(t0))
	return s.markRunning(ctx, &sb, agent, tpl.PrivatePorts)
}

// restore resumes sb on the node and waits until its agent (and its template's
// server) answer. On error nothing of it runs; its checkpoint image is moved aside for
// inspection (Node.KeepLost) and the rest is removed.
func (s *pausing) restore(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template) (*agent, error) {
	lost := func(h *runtime.Handle, err error) error {
		if where, kerr := s.cfg.Node.KeepLost(sb.ID); kerr != nil {
			err = fmt.Errorf("%w (keeping its checkpoint image failed: %v)", err, kerr)
		} else if where != "" {
			err = fmt.Errorf("%w (its checkpoint image is kept in %s)", err, where)
		}
		_ = s.cfg.Node.Stop(context.WithoutCancel(ctx), sb.ID, sb.Slot, h)
		return err
	}
	h, addr, err := s.cfg.Node.Resume(ctx, sb, tpl)
	if err != nil {
		return nil, lost(nil, err)
	}
	sb.RuntimeHandle, _ = json.Marshal(h)
	sb.Address = addr
	agent := s.cfg.dial(addr, sb.AccessToken)
	wctx, unwatch := watchExit(ctx, h.PID, s.cfg.running)
	err = agent.conn.WaitReady(wctx)
	if err == nil && tpl.ReadyPort > 0 {
		err = agent.conn.WaitPortReady(wctx, tpl.ReadyPort)
	}
	err = exitedErr(wctx, s.cfg.Node, sb.ID, err)
	unwatch()
	if err != nil {
		agent.conn.Close()
		return nil, lost(&h, fmt.Errorf("the resumed sandbox's agent did not answer: %w", err))
	}
	return agent, nil
}

// discardPaused removes the paused sandbox row from the node (its directory) and
// records it stopped with reason, counted in the metrics as label. A sandbox being
// resumed is a conflict.
func (s *pausing) discardPaused(ctx context.Context, row *domain.Sandbox, reason, label string) error {
	if _, first := s.reg.beginResume(row.ID); !first {
		return domain.Errorf(domain.KindConflict, "sandbox %q is being resumed; try again in a moment", row.ID)
	}
	defer s.reg.endResume(row.ID)
	cur, err := s.cfg.Store.GetSandbox(ctx, domain.AnyTeam, row.ID)
	if err != nil {
		return err
	}
	if cur.State != domain.StatePaused {
		return domain.Errorf(domain.KindConflict, "sandbox %q is %s now, no longer paused", row.ID, cur.State)
	}
	s.meterPaused(ctx, cur, 0)
	if err := s.cfg.Node.Stop(context.WithoutCancel(ctx), cur.ID, -1, nil); err != nil {
		s.log.Error("removing a paused sandbox; the sweeper will retry", logkey.SandboxID, cur.ID, logkey.Err, err)
	}
	cur.State, cur.EndReason, cur.StoppedAt = domain.StateStopped, reason, s.cfg.Now().UTC()
	if err := s.cfg.Store.UpdateSandbox(context.WithoutCancel(ctx), cur); err != nil {
		return fmt.Errorf("recording stopped sandbox: %w", err)
	}
	s.log.InfoContext(ctx, "paused sandbox removed", logkey.SandboxID, cur.ID, "reason", reason)
	countEnd(s.cfg.Recorder, label)
	return nil
}
