package metering

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// Run samples every running sandbox that live returns, every Interval, until ctx ends.
// Up to Parallel sandboxes are sampled at once, each bounded by Interval; a sandbox
// that fails is logged and retried at the next tick (its counters are cumulative, so
// nothing is lost meanwhile).
func (m *Meter) Run(ctx context.Context, live func(ctx context.Context) ([]*domain.Sandbox, error)) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	m.lastTick.Store(time.Now().UnixNano())
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.sampleAll(ctx, live)
		}
	}
}

// sampleAll is one tick of Run.
func (m *Meter) sampleAll(ctx context.Context, live func(ctx context.Context) ([]*domain.Sandbox, error)) {
	sbs, err := live(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Error("listing the sandboxes to meter", logkey.Err, err)
		}
		return
	}
	sem := make(chan struct{}, m.cfg.Parallel)
	var wg sync.WaitGroup
	listed := make(map[string]bool, len(sbs))
	for _, sb := range sbs {
		listed[sb.ID] = true
		if sb.State != domain.StateRunning {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			sctx, cancel := context.WithTimeout(ctx, m.cfg.Interval)
			defer cancel()
			err := m.Sample(sctx, sb)
			switch {
			case err == nil, ctx.Err() != nil:
			case domain.IsKind(err, domain.KindNotFound):
				// Ended between the listing and the reading; End books the rest.
				m.log.Debug("sandbox gone before its sample", logkey.SandboxID, sb.ID, logkey.Err, err)
			default:
				m.log.Warn("sampling sandbox usage", logkey.SandboxID, sb.ID, logkey.Err, err)
			}
		}()
	}
	wg.Wait()
	m.prune(listed)
	m.lastTick.Store(time.Now().UnixNano())
}

// LastTick is when Run last completed a tick (when it started, before the first one);
// zero before Run. The metrics report the time since as the metering loop's lag.
func (m *Meter) LastTick() time.Time {
	if ns := m.lastTick.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// prune drops cached meters of sandboxes that are no longer listed (those ended without
// End, or through another server path). Only the carried sub-MB·s remainders are lost;
// the store keeps the meter. Entries in use are left for the next tick.
func (m *Meter) prune(listed map[string]bool) {
	m.mu.Lock()
	var stale []string
	for id := range m.entries {
		if !listed[id] {
			stale = append(stale, id)
		}
	}
	m.mu.Unlock()
	for _, id := range stale {
		m.mu.Lock()
		e := m.entries[id]
		m.mu.Unlock()
		if e != nil && e.mu.TryLock() {
			m.drop(id, e)
			e.mu.Unlock()
		}
	}
}

// RecoverReport says what Recover did.
type RecoverReport struct {
	Closed    int // meters of sandboxes that ended (or vanished) while the server was down
	Continued int // meters of sandboxes still alive, left for Run
}

// Recover closes, after a restart, the open meters of sandboxes that are no longer
// alive; get returns a sandbox by id (KindNotFound when it is gone). Call it after the
// sandbox service's own recovery, so that sandboxes that died while the server was
// down are terminal by then.
//
//   - A terminal sandbox's meter is ended at its StoppedAt (or, if unset, at the last
//     sample). The source is read one last time: if the sandbox's accounting is still
//     there its final counters are booked; if not, only the wall time up to StoppedAt
//     is, and the CPU and traffic since the last durable sample (at most one Interval
//     before the server went down) are lost.
//   - A sandbox that is gone from the store is closed at its meter's last sample: up to
//     one Interval of its wall time and counters is lost.
//   - A live sandbox's meter is left open: the next Sample computes its deltas against
//     the stored counters, so what it used while the server was down is booked.
//
// Recover goes on past a sandbox it cannot close and returns those errors joined.
func (m *Meter) Recover(ctx context.Context, get func(ctx context.Context, id string) (*domain.Sandbox, error)) (RecoverReport, error) {
	var rep RecoverReport
	open, err := m.cfg.Store.OpenMeters(ctx)
	if err != nil {
		return rep, fmt.Errorf("listing open meters: %w", err)
	}
	var errs []error
	for _, om := range open {
		sb, err := get(ctx, om.SandboxID)
		gone := domain.IsKind(err, domain.KindNotFound)
		switch {
		case gone:
			sb = &domain.Sandbox{ID: om.SandboxID, TeamID: om.TeamID}
		case err != nil:
			errs = append(errs, fmt.Errorf("looking up metered sandbox %s: %w", om.SandboxID, err))
			continue
		case sb.State.Live():
			rep.Continued++
			continue
		}
		at := sb.StoppedAt
		if sb.State == domain.StatePaused {
			at = sb.PausedAt
		}
		if at.IsZero() {
			at = om.SampledAt
		}
		if err := m.end(ctx, sb, at, !gone); err != nil {
			errs = append(errs, fmt.Errorf("closing the meter of sandbox %s: %w", om.SandboxID, err))
			continue
		}
		rep.Closed++
		m.log.Info("closed the meter of a sandbox that ended while the server was down", logkey.SandboxID, sb.ID, "at", at, "gone", gone)
	}
	return rep, errors.Join(errs...)
}
