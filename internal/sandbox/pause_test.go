package sandbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// TestPauseResume pauses a running sandbox and resumes it: paused, it holds no slot,
// is not routed, refuses work with what to do, and its meter is closed; resumed, it
// runs at a fresh slot, metered again.
func TestPauseResume(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Pause(ctx, reader, sb.ID); !domain.IsKind(err, domain.KindForbidden) {
		t.Errorf("pause with a read-only key: %v, want forbidden", err)
	}
	if _, err := w.svc.Pause(ctx, domain.Principal{TeamID: "team_b", Scopes: writer.Scopes}, sb.ID); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("pause from another team: %v, want not found", err)
	}
	if _, err := w.svc.Resume(ctx, writer, sb.ID, 0); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("resume of a running sandbox: %v, want a conflict", err)
	}
	p, err := w.svc.Pause(ctx, writer, sb.ID)
	if err != nil {
		t.Fatalf("pause: %v", err)
	}
	row := w.row(sb.ID)
	if p.State != domain.StatePaused || row.State != domain.StatePaused || row.Slot != -1 || row.Address != "" || row.PausedAt.IsZero() {
		t.Errorf("paused row: %+v", row)
	}
	if got := w.called("node.pause"); len(got) != 1 || got[0] != fmt.Sprintf("node.pause %s %d", sb.ID, sb.Slot) {
		t.Errorf("node pauses: %q", got)
	}
	if got := w.called("meter."); strings.Join(got, ",") != "meter.begin "+sb.ID+",meter.end "+sb.ID {
		t.Errorf("meter calls: %q", got)
	}
	if w.svc.Live() != 0 || w.reservedSlots() != 0 {
		t.Errorf("live %d, reserved %d after pause; want 0 and 0", w.svc.Live(), w.reservedSlots())
	}
	if r, err := w.svc.Route(ctx, sb.ID); err != nil || r.Running {
		t.Errorf("route of a paused sandbox: %+v %v", r, err)
	}
	if _, err := w.svc.lookup(ctx, writer, sb.ID, domain.ScopeSandboxesWrite); !domain.IsKind(err, domain.KindConflict) || !strings.Contains(err.Error(), "resume") {
		t.Errorf("work in a paused sandbox: %v, want a conflict saying to resume", err)
	}
	if _, err := w.svc.Pause(ctx, writer, sb.ID); !domain.IsKind(err, domain.KindConflict) || !strings.Contains(err.Error(), "already paused") {
		t.Errorf("pausing twice: %v, want a conflict", err)
	}
	if _, err := w.svc.SetTimeout(ctx, writer, sb.ID, time.Minute); !domain.IsKind(err, domain.KindConflict) || !strings.Contains(err.Error(), "resume") {
		t.Errorf("timeout of a paused sandbox: %v, want a conflict saying to resume it", err)
	}
	if _, err := w.svc.Resume(ctx, writer, sb.ID, 48*time.Hour); !domain.IsKind(err, domain.KindInvalid) {
		t.Errorf("resume past the max timeout: %v, want invalid", err)
	}

	w.meter.paused = func(_ context.Context, sb *domain.Sandbox, _ time.Time, gap time.Duration, _ func() int64) error {
		w.record(fmt.Sprintf("meter.paused %s %s", sb.ID, gap))
		return nil
	}
	r, err := w.svc.Resume(ctx, writer, sb.ID, time.Minute)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got := w.called("meter.paused"); len(got) != 1 || got[0] != "meter.paused "+sb.ID+" 0s" {
		t.Errorf("storage booked at the resume: %q", got)
	}
	if r.State != domain.StateRunning || r.Slot < 0 || r.Address == "" || time.Until(r.EndsAt) > time.Minute {
		t.Errorf("resumed: %+v", r)
	}
	if got := w.called("node.resume"); len(got) != 1 {
		t.Errorf("node resumes: %q", got)
	}
	if got := w.called("meter.begin"); len(got) != 2 {
		t.Errorf("meter begins: %q, want 2 (create, resume)", got)
	}
	if rt, err := w.svc.Route(ctx, sb.ID); err != nil || !rt.Running || rt.Address != r.Address {
		t.Errorf("route after resume: %+v %v", rt, err)
	}
	if _, err := w.svc.Resume(ctx, writer, sb.ID, 0); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("resuming twice: %v, want a conflict", err)
	}
}

// TestPauseFailureKeepsRunning: a checkpoint that fails leaves the sandbox running,
// usable and metered, and the caller gets an internal error (a 500 with a request id).
func TestPauseFailureKeepsRunning(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.node.pause = func(context.Context, *domain.Sandbox) error { return errors.New("runsc checkpoint: encoding error") }
	sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.Pause(ctx, writer, sb.ID)
	if err == nil || domain.KindOf(err) != domain.KindInternal {
		t.Fatalf("failed pause: %v (kind %v), want an internal error", err, domain.KindOf(err))
	}
	if row := w.row(sb.ID); row.State != domain.StateRunning {
		t.Errorf("row after a failed pause: %s", row.State)
	}
	if _, err := w.svc.lookup(ctx, writer, sb.ID, domain.ScopeSandboxesWrite); err != nil {
		t.Errorf("work after a failed pause: %v", err)
	}
	if got := w.called("meter.begin"); len(got) != 2 {
		t.Errorf("meter begins %q: want it begun again after the failed pause", got)
	}
	// A full disk says so (503), and the sandbox runs on.
	w.node.pause = func(context.Context, *domain.Sandbox) error {
		return errors.New("runsc checkpoint: closing state file failed: no space left on device")
	}
	if _, err := w.svc.Pause(ctx, writer, sb.ID); !domain.IsKind(err, domain.KindUnavailable) || !strings.Contains(err.Error(), "disk is full") {
		t.Errorf("pause on a full disk: %v, want unavailable saying the disk is full", err)
	}
	if row := w.row(sb.ID); row.State != domain.StateRunning {
		t.Errorf("row after a pause on a full disk: %s", row.State)
	}
	// The timer still runs: the sandbox still ends.
	if err := w.svc.Kill(ctx, writer, sb.ID); err != nil {
		t.Errorf("kill after a failed pause: %v", err)
	}
}

// TestResumeFailureIsLost: a restore that fails marks the sandbox lost (error, with the
// reason) and removes the rest from the node.
func TestResumeFailureIsLost(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Pause(ctx, writer, sb.ID); err != nil {
		t.Fatal(err)
	}
	w.node.resume = func(context.Context, *domain.Sandbox, *domain.Template) (runtime.Handle, string, error) {
		return runtime.Handle{}, "", errors.New("restore failed")
	}
	w.node.keepLost = func(id string) (string, error) { w.record("node.keeplost " + id); return "/lost/" + id, nil }
	if _, err := w.svc.Resume(ctx, writer, sb.ID, 0); err == nil || domain.KindOf(err) != domain.KindInternal {
		t.Fatalf("failed resume: %v, want an internal error", err)
	}
	row := w.row(sb.ID)
	if row.State != domain.StateError || !strings.HasPrefix(row.EndReason, "lost:") || row.StoppedAt.IsZero() {
		t.Errorf("row after a failed resume: %s %q", row.State, row.EndReason)
	}
	if w.reservedSlots() != 0 || len(w.called("node.stop "+sb.ID)) != 1 || len(w.called("node.keeplost "+sb.ID)) != 1 {
		t.Errorf("reserved %d, stops %q, images kept %q", w.reservedSlots(), w.called("node.stop"), w.called("node.keeplost"))
	}
}

// TestPausedCountsAgainstNoQuota: a paused sandbox makes room for another; resuming
// it is then refused past the quota, and it stays paused.
func TestPausedCountsAgainstNoQuota(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.team.Quota = domain.Quota{MaxSandboxes: 1}
	sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Pause(ctx, writer, sb.ID); err != nil {
		t.Fatal(err)
	}
	other, err := w.svc.Create(ctx, writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatalf("create while the only other sandbox is paused: %v", err)
	}
	if _, err := w.svc.Resume(ctx, writer, sb.ID, 0); !domain.IsKind(err, domain.KindQuotaExceeded) {
		t.Fatalf("resume past the quota: %v, want quota exceeded", err)
	}
	if row := w.row(sb.ID); row.State != domain.StatePaused || row.Slot != -1 {
		t.Errorf("row after a refused resume: %+v", row)
	}
	if err := w.svc.Kill(ctx, writer, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Resume(ctx, writer, sb.ID, 0); err != nil {
		t.Fatalf("resume with room: %v", err)
	}
}

// TestPauseRefused: only a running sandbox on a runtime that can checkpoint pauses.
func TestPauseRefused(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	runc := runcFake
	w.node.drivers = append(w.node.drivers, runc)
	w.svc.cfg.Runtimes = []string{"gvisor", "runc"}
	sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{Runtime: "runc"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Pause(ctx, writer, sb.ID); !domain.IsKind(err, domain.KindConflict) || !strings.Contains(err.Error(), "gvisor") {
		t.Errorf("pausing a runc sandbox: %v, want a conflict naming gvisor", err)
	}
	if err := w.svc.Kill(ctx, writer, sb.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Pause(ctx, writer, sb.ID); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("pausing a stopped sandbox: %v, want a conflict", err)
	}
	if _, err := w.svc.Resume(ctx, writer, sb.ID, 0); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("resuming a stopped sandbox: %v, want a conflict", err)
	}
	for _, l := range []domain.Lifecycle{{OnTimeout: "sleep"}, {OnTimeout: "pause"}, {AutoResume: true}} {
		rt := "runc"
		if l.OnTimeout == "sleep" {
			rt = ""
		}
		if _, err := w.svc.Create(ctx, writer, domain.CreateSandbox{Runtime: rt, Lifecycle: l}); !domain.IsKind(err, domain.KindInvalid) {
			t.Errorf("create with lifecycle %+v on %q: %v, want invalid", l, rt, err)
		}
	}
}

// TestTimeoutPausesAndTrafficResumes: with on_timeout pause the timeout pauses the
// sandbox; with auto_resume, the proxy's route to it resumes it.
func TestTimeoutPausesAndTrafficResumes(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{Timeout: time.Second,
		Lifecycle: domain.Lifecycle{OnTimeout: domain.OnTimeoutPause, AutoResume: true}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the timeout to pause it", func() bool { return w.row(sb.ID).State == domain.StatePaused })
	r, err := w.svc.Route(ctx, sb.ID)
	if err != nil || !r.Running || r.Address == "" {
		t.Fatalf("route to a paused auto-resume sandbox: %+v %v, want it resumed", r, err)
	}
	if row := w.row(sb.ID); row.State != domain.StateRunning {
		t.Errorf("after traffic: %s", row.State)
	}

	plain, err := w.svc.Create(ctx, writer, domain.CreateSandbox{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Pause(ctx, writer, plain.ID); err != nil {
		t.Fatal(err)
	}
	if r, err := w.svc.Route(ctx, plain.ID); err != nil || r.Running {
		t.Errorf("route to a paused sandbox without auto-resume: %+v %v", r, err)
	}
	time.Sleep(1500 * time.Millisecond) // past the plain sandbox's old timeout
	if row := w.row(plain.ID); row.State != domain.StatePaused {
		t.Errorf("a paused sandbox's old timer changed it: %s", row.State)
	}
}

// TestRecoverKeepsPaused: after a restart a paused sandbox stays paused (its directory
// is not a leftover), one whose resume the restart cut off is paused again, and
// killing a paused one removes its directory.
func TestRecoverKeepsPaused(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	now := time.Now().UTC()
	paused := &domain.Sandbox{ID: "pausedpausedpaused01", TeamID: teamID, TemplateID: "base", State: domain.StatePaused,
		RuntimeName: "gvisor", Slot: -1, PausedAt: now.Add(-time.Hour), CreatedAt: now.Add(-2 * time.Hour)}
	cut := &domain.Sandbox{ID: "resumingresumingres1", TeamID: teamID, TemplateID: "base", State: domain.StateStarting,
		RuntimeName: "gvisor", Slot: 4, Address: "10.0.0.4", PausedAt: now.Add(-time.Hour), CreatedAt: now.Add(-2 * time.Hour)}
	w.addRow(paused)
	w.addRow(cut)
	var live map[string]bool
	w.node.orphans = func(_ context.Context, l map[string]bool) ([]string, error) { live = l; return nil, nil }
	rep, err := w.sweeper.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Paused != 2 || rep.Reaped != 0 {
		t.Errorf("recover report %+v, want 2 paused", rep)
	}
	if row := w.row(cut.ID); row.State != domain.StatePaused || row.Slot != -1 || row.Address != "" {
		t.Errorf("cut-off resume: %+v, want paused again", row)
	}
	if got := w.called("node.release " + cut.ID); len(got) != 1 || got[0] != "node.release "+cut.ID+" -1 <nil>" {
		t.Errorf("release of the cut-off resume: %q", got)
	}
	if !live[paused.ID] || !live[cut.ID] {
		t.Errorf("the sweep would take paused sandboxes for leftovers: live %v", live)
	}
	if len(w.called("node.stop")) != 0 {
		t.Errorf("recovery stopped sandboxes: %q", w.called("node.stop"))
	}
	// A restarted server resumes it.
	if _, err := w.svc.Resume(ctx, writer, cut.ID, 0); err != nil {
		t.Fatalf("resume after a restart: %v", err)
	}
	if err := w.svc.Kill(ctx, writer, paused.ID); err != nil {
		t.Fatalf("kill of a paused sandbox: %v", err)
	}
	if row := w.row(paused.ID); row.State != domain.StateStopped || row.EndReason != "killed" {
		t.Errorf("killed paused sandbox: %s %q", row.State, row.EndReason)
	}
	if got := w.called("node.stop " + paused.ID); len(got) != 1 {
		t.Errorf("node stops of the killed paused sandbox: %q", got)
	}
}

// TestPausedRetention: a sandbox paused longer than the retention is removed.
func TestPausedRetention(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.svc.cfg.PausedRetention = 24 * time.Hour
	now := time.Now().UTC()
	old := &domain.Sandbox{ID: "oldoldoldoldoldold01", TeamID: teamID, State: domain.StatePaused, Slot: -1, PausedAt: now.Add(-25 * time.Hour)}
	young := &domain.Sandbox{ID: "youngyoungyoungyou01", TeamID: teamID, State: domain.StatePaused, Slot: -1, PausedAt: now.Add(-23 * time.Hour)}
	w.addRow(old)
	w.addRow(young)
	if n := w.sweeper.ExpirePaused(ctx); n != 1 {
		t.Errorf("expired %d, want 1", n)
	}
	if row := w.row(old.ID); row.State != domain.StateStopped || row.EndReason != "paused retention ended" {
		t.Errorf("old paused sandbox: %s %q", row.State, row.EndReason)
	}
	if row := w.row(young.ID); row.State != domain.StatePaused {
		t.Errorf("young paused sandbox: %s", row.State)
	}
}

// TestRecoverFinishesCutPause: after a restart, a running row whose sandbox is gone but
// was checkpointed after its last start (a pause the crash cut off) is paused; one
// whose image is older (from an earlier pause) is reaped as lost.
func TestRecoverFinishesCutPause(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	gone := checkpointDriver{gvisorFake}
	gone.status = func(context.Context, runtime.Handle) (runtime.Status, error) { return runtime.StatusGone, nil }
	w.node.drivers = []runtime.Driver{gone}
	now := time.Now().UTC()
	cut := &domain.Sandbox{ID: "cutcutcutcutcutcut01", TeamID: teamID, TemplateID: "base", State: domain.StateRunning,
		RuntimeName: "gvisor", RuntimeHandle: []byte(`{"id":"cutcutcutcutcutcut01","driver":"gvisor"}`), Slot: 2, Address: "10.0.0.2",
		StartedAt: now.Add(-time.Hour)}
	dead := &domain.Sandbox{ID: "deaddeaddeaddeaddea1", TeamID: teamID, TemplateID: "base", State: domain.StateRunning,
		RuntimeName: "gvisor", RuntimeHandle: []byte(`{"id":"deaddeaddeaddeaddea1","driver":"gvisor"}`), Slot: 3, Address: "10.0.0.3",
		StartedAt: now.Add(-time.Hour)}
	w.addRow(cut)
	w.addRow(dead)
	w.node.imageTime = func(id string) time.Time {
		if id == cut.ID {
			return now.Add(-time.Minute) // after its start
		}
		return now.Add(-2 * time.Hour) // an earlier pause's
	}
	rep, err := w.sweeper.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Paused != 1 || rep.Reaped != 1 {
		t.Errorf("recover report %+v, want 1 paused and 1 reaped", rep)
	}
	if row := w.row(cut.ID); row.State != domain.StatePaused || row.Slot != -1 || row.PausedAt.IsZero() {
		t.Errorf("cut-off pause: %+v", row)
	}
	if got := w.called("node.release " + cut.ID); len(got) != 1 {
		t.Errorf("releases of the cut-off pause: %q", got)
	}
	if row := w.row(dead.ID); row.State != domain.StateStopped || !strings.HasPrefix(row.EndReason, "lost") {
		t.Errorf("dead sandbox: %s %q", row.State, row.EndReason)
	}
}
