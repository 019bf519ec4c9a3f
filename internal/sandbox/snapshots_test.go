package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// These tests drive forks and snapshots on the fakes of lifecycle_test.go: the node's
// Snapshot writes a directory, StartFrom checks it and records what it restored.

// snapWorld is a world whose base template's root filesystem exists (a restore checks
// it) and whose team may hold quota sandboxes, with one running sandbox.
func snapWorld(t *testing.T, quota int64) (*world, *Snapshots, *domain.Sandbox) {
	t.Helper()
	w := newWorld(t)
	w.templates["base"].RootFS = t.TempDir()
	w.team.Quota = domain.Quota{MaxSandboxes: quota, MaxSnapshots: 2}
	parent, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{
		Metadata: map[string]string{"k": "v"}, Env: map[string]string{"E": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	return w, NewSnapshots(w.svc), parent
}

// snapDirs lists what the snapshot directory holds.
func snapDirs(t *testing.T, sn *Snapshots) []string {
	t.Helper()
	ents, err := os.ReadDir(sn.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestFork(t *testing.T) {
	w, sn, parent := snapWorld(t, 10)
	res, err := sn.Fork(context.Background(), writer, parent.ID, 3, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("%d results, want 3", len(res))
	}
	saves := w.called("node.snapshot")
	if len(saves) != 1 || !strings.HasPrefix(saves[0], "node.snapshot "+parent.ID+" "+forkDirPrefix) {
		t.Fatalf("saves: %q; want the parent saved once", saves)
	}
	forkDir := strings.Fields(saves[0])[2]
	ids, slots, tokens := map[string]bool{parent.ID: true}, map[int]bool{parent.Slot: true}, map[string]bool{parent.AccessToken: true}
	for i, r := range res {
		sb := r.Sandbox
		if r.Err != nil || sb == nil {
			t.Fatalf("fork %d: %v", i, r.Err)
		}
		if ids[sb.ID] || slots[sb.Slot] || tokens[sb.AccessToken] {
			t.Errorf("fork %d shares its id, slot or token with another sandbox: %+v", i, sb)
		}
		ids[sb.ID], slots[sb.Slot], tokens[sb.AccessToken] = true, true, true
		if sb.State != domain.StateRunning || sb.TemplateID != "base" || sb.Limits != parent.Limits || sb.Metadata["k"] != "v" ||
			sb.Env["E"] != "1" || sb.EndsAt.Sub(sb.CreatedAt) != time.Minute {
			t.Errorf("fork %d: %+v", i, sb)
		}
		// Restored from the fork's snapshot on the template, then given its identity by
		// an agent client that proves the parent's token.
		if got := w.called("node.startfrom " + sb.ID); !slices.Equal(got, []string{"node.startfrom " + sb.ID + " " + forkDir + " " + w.templates["base"].RootFS}) {
			t.Errorf("fork %d restores: %q", i, got)
		}
		wantInit := fmt.Sprintf("agent.init %s token=%s new=%s hostname=%s", sb.Address, parent.AccessToken, sb.AccessToken, sb.ID)
		if got := w.called("agent.init " + sb.Address + " "); len(got) != 1 || !strings.HasPrefix(got[0], wantInit) {
			t.Errorf("fork %d identity: %q, want %q", i, got, wantInit)
		}
	}
	if w.svc.Live() != 4 || w.row(parent.ID).State != domain.StateRunning {
		t.Errorf("live %d (want the parent and 3 forks), parent %s", w.svc.Live(), w.row(parent.ID).State)
	}
	if d := snapDirs(t, sn); len(d) != 0 {
		t.Errorf("the fork's snapshot stays: %v", d)
	}
	if n := w.reservedSlots(); n != 0 {
		t.Errorf("%d slots still reserved", n)
	}
}

// TestForkPartial: each fork is a create of its own: one over the quota or failing to
// start fails alone, and the others run.
func TestForkPartial(t *testing.T) {
	kindsOf := func(res []domain.ForkResult) (ok int, kinds []string) {
		for _, r := range res {
			if r.Err == nil {
				ok++
				continue
			}
			kinds = append(kinds, domain.KindOf(r.Err).String())
			if strings.Contains(r.Err.Error(), "boom") {
				t.Errorf("a fork's error shows the cause: %v", r.Err)
			}
		}
		return ok, kinds
	}
	// Quota 3: the parent and two forks.
	w, sn, parent := snapWorld(t, 3)
	res, err := sn.Fork(context.Background(), writer, parent.ID, 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ok, kinds := kindsOf(res); ok != 2 || !slices.Equal(kinds, []string{"quota_exceeded", "quota_exceeded"}) {
		t.Errorf("%d forks started, errors %v; want 2 and two quota refusals", ok, kinds)
	}
	if w.svc.Live() != 3 || w.reservedSlots() != 0 || len(snapDirs(t, sn)) != 0 {
		t.Errorf("live %d, reserved %d, snapshot dirs %v", w.svc.Live(), w.reservedSlots(), snapDirs(t, sn))
	}

	// One restore fails: its row is an error, the others run.
	w, sn, parent = snapWorld(t, 10)
	restores := 0
	start := w.node.startFrom
	w.node.startFrom = func(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template, src string) (runtime.Handle, string, error) {
		w.mu.Lock()
		restores++
		first := restores == 1
		w.mu.Unlock()
		if first {
			return runtime.Handle{}, "", errors.New("runsc restore: boom")
		}
		return start(ctx, sb, tpl, src)
	}
	if res, err = sn.Fork(context.Background(), writer, parent.ID, 3, 0); err != nil {
		t.Fatal(err)
	}
	if ok, kinds := kindsOf(res); ok != 2 || !slices.Equal(kinds, []string{"unavailable"}) {
		t.Errorf("%d forks started, errors %v; want 2 and one unavailable", ok, kinds)
	}
	if w.svc.Live() != 3 || w.reservedSlots() != 0 || len(snapDirs(t, sn)) != 0 {
		t.Errorf("live %d, reserved %d, snapshot dirs %v", w.svc.Live(), w.reservedSlots(), snapDirs(t, sn))
	}
}

func TestForkRefused(t *testing.T) {
	other := domain.Principal{TeamID: "team_b", Scopes: writer.Scopes}
	cases := []struct {
		name  string
		p     domain.Principal
		id    func(parent *domain.Sandbox) string
		count int
		setup func(w *world, parent *domain.Sandbox)
		kind  domain.Kind
		msg   string
	}{
		{name: "no write scope", p: reader, count: 1, kind: domain.KindForbidden, msg: "sandboxes:write"},
		{name: "count 0", p: writer, count: 0, kind: domain.KindInvalid, msg: "count must be between 1 and 20, not 0"},
		{name: "count 21", p: writer, count: 21, kind: domain.KindInvalid, msg: "between 1 and 20"},
		{name: "unknown sandbox", p: writer, count: 1, id: func(*domain.Sandbox) string { return domain.NewID(20) }, kind: domain.KindNotFound},
		{name: "another team's sandbox", p: other, count: 1, kind: domain.KindNotFound},
		{name: "stopped", p: writer, count: 1, kind: domain.KindConflict, msg: "only a running sandbox can be forked",
			setup: func(w *world, parent *domain.Sandbox) {
				if err := w.svc.Kill(context.Background(), writer, parent.ID); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "paused", p: writer, count: 1, kind: domain.KindConflict, msg: "resume it first",
			setup: func(w *world, parent *domain.Sandbox) {
				w.mu.Lock()
				w.rows[parent.ID].State = domain.StatePaused
				w.mu.Unlock()
			}},
		{name: "quota full", p: writer, count: 1, kind: domain.KindQuotaExceeded, msg: "max_sandboxes",
			setup: func(w *world, _ *domain.Sandbox) { w.team.Quota.MaxSandboxes = 1 }},
		{name: "runtime cannot save", p: writer, count: 1, kind: domain.KindConflict, msg: "runtime gvisor",
			setup: func(w *world, _ *domain.Sandbox) {
				w.node.snapshot = func(context.Context, *domain.Sandbox, string) error {
					return domain.Errorf(domain.KindConflict, "the runc runtime cannot pause, fork or snapshot a sandbox; create the sandbox with runtime gvisor for that")
				}
			}},
		{name: "save fails", p: writer, count: 1, kind: domain.KindUnavailable, msg: "could not be saved",
			setup: func(w *world, _ *domain.Sandbox) {
				w.node.snapshot = func(context.Context, *domain.Sandbox, string) error { return errors.New("disk full") }
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, sn, parent := snapWorld(t, 10)
			if c.setup != nil {
				c.setup(w, parent)
			}
			id := parent.ID
			if c.id != nil {
				id = c.id(parent)
			}
			res, err := sn.Fork(context.Background(), c.p, id, c.count, 0)
			if res != nil || !domain.IsKind(err, c.kind) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Fork = %v, %v; want a %s error mentioning %q", res, err, c.kind, c.msg)
			}
			if got := w.called("node.startfrom"); len(got) != 0 {
				t.Errorf("forks were started: %q", got)
			}
			if d := snapDirs(t, sn); len(d) != 0 {
				t.Errorf("snapshot files left: %v", d)
			}
		})
	}
}

func TestSnapshotCreateRestoreDelete(t *testing.T) {
	w, sn, parent := snapWorld(t, 10)
	ctx := context.Background()
	snap, err := sn.CreateSnapshot(ctx, writer, parent.ID, "my-snap")
	if err != nil {
		t.Fatal(err)
	}
	if !domain.IsSnapshotID(snap.ID) || snap.Name != "my-snap" || snap.SandboxID != parent.ID || snap.TemplateID != "base" ||
		snap.RuntimeName != "gvisor" || snap.Limits != parent.Limits || snap.AccessToken != parent.AccessToken ||
		snap.TemplateRootFS != w.templates["base"].RootFS || snap.SizeBytes <= 0 || snap.CreatedAt.IsZero() {
		t.Errorf("snapshot: %+v", snap)
	}
	if d := snapDirs(t, sn); !slices.Equal(d, []string{snap.ID}) {
		t.Errorf("snapshot files: %v, want %s", d, snap.ID)
	}
	for _, ref := range []string{snap.ID, "my-snap"} {
		if got, err := sn.GetSnapshot(ctx, reader, ref); err != nil || got.ID != snap.ID {
			t.Errorf("GetSnapshot(%s) = %v, %v", ref, got, err)
		}
	}
	if list, _, err := sn.ListSnapshots(ctx, reader, domain.SnapshotFilter{}); err != nil || len(list) != 1 {
		t.Errorf("ListSnapshots = %v, %v", list, err)
	}

	// Started from it, by name, by id as the template (E2B), with env added.
	for _, req := range []domain.CreateSandbox{
		{Snapshot: "my-snap", Env: map[string]string{"F": "2"}, Metadata: map[string]string{"m": "1"}},
		{TemplateID: snap.ID},
		{TemplateID: "my-snap", Limits: parent.Limits, Runtime: "gvisor"},
	} {
		sb, err := w.svc.Create(ctx, writer, req)
		if err != nil {
			t.Fatalf("create from the snapshot (%+v): %v", req, err)
		}
		if sb.TemplateID != "base" || sb.Limits != parent.Limits || sb.Env["E"] != "1" || sb.AccessToken == parent.AccessToken {
			t.Errorf("sandbox from the snapshot: %+v", sb)
		}
		if req.Env != nil && (sb.Env["F"] != "2" || sb.Metadata["m"] != "1") {
			t.Errorf("env and metadata of the request: %+v", sb)
		}
		if got := w.called("node.startfrom " + sb.ID); len(got) != 1 || !strings.Contains(got[0], " "+snap.ID+" ") {
			t.Errorf("restores: %q", got)
		}
		if got := w.called("agent.init " + sb.Address + " token=" + parent.AccessToken + " new=" + sb.AccessToken + " hostname=" + sb.ID); len(got) != 1 {
			t.Errorf("identity: %q", w.called("agent.init"))
		}
	}

	// Deleted: the row and the files go; sandboxes started from it run on.
	if err := sn.DeleteSnapshot(ctx, writer, "my-snap"); err != nil {
		t.Fatal(err)
	}
	if d := snapDirs(t, sn); len(d) != 0 {
		t.Errorf("files left after delete: %v", d)
	}
	if _, err := sn.GetSnapshot(ctx, reader, snap.ID); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("deleted snapshot found: %v", err)
	}
	if err := sn.DeleteSnapshot(ctx, writer, snap.ID); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if _, err := w.svc.Create(ctx, writer, domain.CreateSandbox{Snapshot: snap.ID}); !domain.IsKind(err, domain.KindInvalid) || domain.FieldOf(err) != "snapshot" {
		t.Errorf("create from a deleted snapshot: %v", err)
	}
	if w.svc.Live() != 4 {
		t.Errorf("live %d, want the parent and 3 sandboxes from the snapshot", w.svc.Live())
	}
}

func TestSnapshotRefused(t *testing.T) {
	ctx := context.Background()
	w, sn, parent := snapWorld(t, 10)
	other := domain.Principal{TeamID: "team_b", Scopes: writer.Scopes}
	for _, c := range []struct {
		name string
		p    domain.Principal
		id   string
		snap string
		kind domain.Kind
		msg  string
	}{
		{"reader", reader, parent.ID, "", domain.KindForbidden, "sandboxes:write"},
		{"bad name", writer, parent.ID, "Has Space", domain.KindInvalid, "not valid"},
		{"name like an id", writer, parent.ID, "snap_x", domain.KindInvalid, "not valid"},
		{"a template's name", writer, parent.ID, "base", domain.KindInvalid, "name of a template"},
		{"another team's sandbox", other, parent.ID, "", domain.KindNotFound, "not found"},
	} {
		if _, err := sn.CreateSnapshot(ctx, c.p, c.id, c.snap); !domain.IsKind(err, c.kind) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v; want a %s error mentioning %q", c.name, err, c.kind, c.msg)
		}
	}
	if got := w.called("node.snapshot"); len(got) != 0 {
		t.Fatalf("refused snapshots were taken: %q", got)
	}
	// The quota (2 here) is checked before saving; a name is unique in the team.
	for i := range 2 {
		if _, err := sn.CreateSnapshot(ctx, writer, parent.ID, fmt.Sprintf("s%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sn.CreateSnapshot(ctx, writer, parent.ID, "s0"); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("a taken name: %v", err)
	}
	_, err := sn.CreateSnapshot(ctx, writer, parent.ID, "")
	var qe *domain.QuotaError
	if !errors.As(err, &qe) || qe.Quota != "max_snapshots" || qe.Limit != 2 || qe.Used != 2 {
		t.Errorf("over the quota: %v", err)
	}
	if got := w.called("node.snapshot"); len(got) != 2 {
		t.Errorf("saves: %q, want 2", got)
	}
	// Another team sees none of them.
	if _, err := sn.GetSnapshot(ctx, other, "s0"); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("another team's get: %v", err)
	}
	if err := sn.DeleteSnapshot(ctx, other, "s0"); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("another team's delete: %v", err)
	}

	// Restores that cannot be.
	s0, _ := sn.GetSnapshot(ctx, reader, "s0")
	for _, c := range []struct {
		name  string
		req   domain.CreateSandbox
		field string
	}{
		{"other limits", domain.CreateSandbox{Snapshot: "s0", Limits: domain.Limits{MemoryMB: 2048}}, "limits"},
		{"other runtime", domain.CreateSandbox{Snapshot: "s0", Runtime: "runc"}, "runtime"},
		{"other template", domain.CreateSandbox{Snapshot: "s0", TemplateID: "code-interpreter"}, "template"},
		{"unknown snapshot", domain.CreateSandbox{Snapshot: "nope"}, "snapshot"},
	} {
		if _, err := w.svc.Create(ctx, writer, c.req); !domain.IsKind(err, domain.KindInvalid) || domain.FieldOf(err) != c.field {
			t.Errorf("%s: %v; want invalid %s", c.name, err, c.field)
		}
	}
	if _, err := w.svc.Create(ctx, domain.Principal{TeamID: "team_b", Scopes: writer.Scopes}, domain.CreateSandbox{Snapshot: s0.ID}); err == nil {
		t.Errorf("another team started a sandbox from team a's snapshot")
	}
	w.templates["base"].RootFS = "/gone"
	s0.TemplateRootFS = "/gone"
	w.snaps[s0.ID] = s0
	if _, err := w.svc.Create(ctx, writer, domain.CreateSandbox{Snapshot: "s0"}); !domain.IsKind(err, domain.KindConflict) || !strings.Contains(err.Error(), "can no longer be restored") {
		t.Errorf("template gone: %v", err)
	}
}

// TestSnapshotDeleteDuringRestore: a snapshot deleted while a sandbox is restored from
// it keeps its files until that restore is done.
func TestSnapshotDeleteDuringRestore(t *testing.T) {
	w, sn, parent := snapWorld(t, 10)
	ctx := context.Background()
	snap, err := sn.CreateSnapshot(ctx, writer, parent.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	start := w.node.startFrom
	entered, proceed := make(chan struct{}), make(chan struct{})
	w.node.startFrom = func(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template, src string) (runtime.Handle, string, error) {
		close(entered)
		<-proceed
		return start(ctx, sb, tpl, src)
	}
	done := make(chan error, 1)
	go func() {
		_, err := w.svc.Create(ctx, writer, domain.CreateSandbox{Snapshot: snap.ID})
		done <- err
	}()
	<-entered
	if err := sn.DeleteSnapshot(ctx, writer, snap.ID); err != nil {
		t.Fatal(err)
	}
	if d := snapDirs(t, sn); len(d) != 1 {
		t.Errorf("files removed under a restore: %v", d)
	}
	close(proceed)
	if err := <-done; err != nil {
		t.Fatalf("restore: %v", err)
	}
	if d := snapDirs(t, sn); len(d) != 0 {
		t.Errorf("files left after the restore: %v", d)
	}
}

// TestSnapshotRecover: files without a row (an interrupted fork or snapshot) go at
// start-up; a snapshot's stay.
func TestSnapshotRecover(t *testing.T) {
	w, sn, parent := snapWorld(t, 10)
	snap, err := sn.CreateSnapshot(context.Background(), writer, parent.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{forkDirPrefix + "abc", domain.NewSnapshotID()} {
		if err := os.MkdirAll(filepath.Join(sn.dir, d, "upper"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	n, err := sn.Recover(context.Background())
	if err != nil || n != 2 {
		t.Errorf("Recover = %d, %v; want 2 removed", n, err)
	}
	if d := snapDirs(t, sn); !slices.Equal(d, []string{snap.ID}) {
		t.Errorf("left: %v, want %s", d, snap.ID)
	}
	_ = w
}

// freezableDriver is a fakeDriver that is a runtime.Freezer.
type freezableDriver struct {
	fakeDriver
	thaw func(h runtime.Handle) error
}

func (f freezableDriver) Freeze(context.Context, runtime.Handle) error { return errNotSet }
func (f freezableDriver) Thaw(_ context.Context, h runtime.Handle) error {
	return f.thaw(h)
}

// TestRecoverThawsFrozen: a server killed while it saved a sandbox (a fork or a
// snapshot under way) leaves it frozen; the next start thaws it and re-attaches it
// instead of reaping it as lost.
func TestRecoverThawsFrozen(t *testing.T) {
	w := newWorld(t)
	id := domain.NewID(20)
	w.addRow(&domain.Sandbox{ID: id, TeamID: teamID, TemplateID: "base", State: domain.StateRunning, Slot: 1,
		RuntimeName: "gvisor", Address: "10.0.0.1", AccessToken: "tok", Limits: domain.Limits{MemoryMB: 512},
		RuntimeHandle: []byte(`{"id":"` + id + `","driver":"gvisor"}`), CreatedAt: time.Now(), StartedAt: time.Now(),
		EndsAt: time.Now().Add(time.Hour)})
	frozen := true
	drv := freezableDriver{fakeDriver: gvisorFake, thaw: func(h runtime.Handle) error {
		w.record("driver.thaw " + h.ID)
		frozen = false
		return nil
	}}
	drv.status = func(context.Context, runtime.Handle) (runtime.Status, error) { return runtime.StatusRunning, nil }
	w.node.drivers = []runtime.Driver{drv}
	w.svc.cfg.dial = func(address, token string) *agent {
		return &agent{conn: &fakeAgent{
			waitReady: func(context.Context) error {
				if frozen {
					return errors.New("no answer")
				}
				return nil
			},
			metrics: func(context.Context) (*domain.SandboxMetrics, error) { return &domain.SandboxMetrics{}, nil },
			closed:  func() {},
		}}
	}
	rep, err := w.sweeper.Recover(context.Background())
	if err != nil || rep.Reattached != 1 || rep.Reaped != 0 {
		t.Fatalf("Recover = %+v, %v; want the frozen sandbox re-attached", rep, err)
	}
	if got := w.called("driver.thaw"); len(got) != 1 {
		t.Errorf("thaws: %q", got)
	}
	if err := w.svc.Kill(context.Background(), writer, id); err != nil {
		t.Fatal(err)
	}
}
