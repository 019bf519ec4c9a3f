package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// tplWorld is a world with a code-interpreter-like template (a start command and a
// ready port, its root filesystem in a template cache directory) and template
// snapshots on.
func tplWorld(t *testing.T) (*world, *Snapshots, *domain.Template) {
	t.Helper()
	w := newWorld(t)
	entry := filepath.Join(t.TempDir(), "code-interpreter-0123456789abcdef")
	if err := os.MkdirAll(filepath.Join(entry, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	tpl := &domain.Template{ID: "code-interpreter", Hash: "0123456789abcdef", RootFS: filepath.Join(entry, "rootfs"), Ready: true,
		StartCmd: "server", ReadyPort: 49999}
	w.templates[tpl.ID] = tpl
	w.svc.cfg.SnapshotKey = "agent-1"
	return w, NewSnapshots(w.svc), tpl
}

func TestTemplateSnapshot(t *testing.T) {
	w, sn, tpl := tplWorld(t)
	ctx := context.Background()
	n, err := sn.PrepareTemplates(ctx)
	if err != nil || n != 1 {
		t.Fatalf("PrepareTemplates = %d, %v; want 1", n, err)
	}
	boots := w.called("node.start ")
	saves := w.called("node.snapshot ")
	if len(boots) != 1 || len(saves) != 1 || len(w.called("node.stop ")) != 1 {
		t.Fatalf("boots %q, saves %q, stops %q: want one of each", boots, saves, w.called("node.stop "))
	}
	if w.rowCount() != 0 || w.reservedSlots() != 0 {
		t.Errorf("the boot left %d rows and %d reserved slots", w.rowCount(), w.reservedSlots())
	}
	ents, _ := filepath.Glob(filepath.Join(filepath.Dir(tpl.RootFS), "snapshot-*", templateSnapMeta))
	if len(ents) != 1 {
		t.Fatalf("template snapshot files: %v", ents)
	}
	dir := filepath.Dir(ents[0])
	// Again: nothing to do.
	if n, err := sn.PrepareTemplates(ctx); err != nil || n != 1 || len(w.called("node.start ")) != 1 {
		t.Errorf("a second PrepareTemplates booted again: %d, %v, %q", n, err, w.called("node.start "))
	}

	// A create that fits is restored from it and takes its identity.
	sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{TemplateID: tpl.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.called("node.startfrom " + sb.ID); len(got) != 1 || !strings.Contains(got[0], " "+filepath.Base(dir)+" ") {
		t.Errorf("restores: %q, want one from %s", got, dir)
	}
	if got := w.called("agent.init " + sb.Address + " "); len(got) != 1 || !strings.Contains(got[0], "new="+sb.AccessToken+" hostname="+sb.ID) {
		t.Errorf("identity: %q", got)
	}
	if got := w.called("agent.port"); len(got) < 2 {
		t.Errorf("the template's ready port was not awaited after the restore: %q", got)
	}
	// Env of its own (the template's server would not see it) or other limits: cold.
	for _, req := range []domain.CreateSandbox{
		{TemplateID: tpl.ID, Env: map[string]string{"A": "1"}},
		{TemplateID: tpl.ID, Limits: domain.Limits{MemoryMB: 1024}},
	} {
		sb, err := w.svc.Create(ctx, writer, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(w.called("node.start "+sb.ID)) != 1 || len(w.called("node.startfrom "+sb.ID)) != 0 {
			t.Errorf("%+v: not a cold start", req)
		}
		if err := w.svc.Kill(ctx, writer, sb.ID); err != nil {
			t.Fatal(err)
		}
	}

	// Another server on the same cache reads the snapshot instead of booting.
	w2 := newWorld(t)
	w2.templates[tpl.ID] = tpl
	w2.svc.cfg.SnapshotKey = "agent-1"
	if n, err := NewSnapshots(w2.svc).PrepareTemplates(ctx); err != nil || n != 1 || len(w2.called("node.start ")) != 0 {
		t.Errorf("a second server: %d, %v, boots %q", n, err, w2.called("node.start "))
	}
	// Another agent binary: another snapshot, which replaces the old one.
	w3 := newWorld(t)
	w3.templates[tpl.ID] = tpl
	w3.svc.cfg.SnapshotKey = "agent-2"
	if n, err := NewSnapshots(w3.svc).PrepareTemplates(ctx); err != nil || n != 1 || len(w3.called("node.start ")) != 1 {
		t.Errorf("another agent: %d, %v, boots %q", n, err, w3.called("node.start "))
	}
	if got, _ := filepath.Glob(filepath.Join(filepath.Dir(tpl.RootFS), "snapshot-*")); len(got) != 1 || got[0] == dir {
		t.Errorf("template snapshots after the new one: %v (the old was %s)", got, dir)
	}
}

// TestTemplateSnapshotFallback: a restore that fails starts the sandbox cold (the
// create succeeds), and the template's next sandboxes start cold too.
func TestTemplateSnapshotFallback(t *testing.T) {
	w, sn, tpl := tplWorld(t)
	ctx := context.Background()
	if _, err := sn.PrepareTemplates(ctx); err != nil {
		t.Fatal(err)
	}
	w.node.startFrom = func(context.Context, *domain.Sandbox, *domain.Template, string) (runtime.Handle, string, error) {
		return runtime.Handle{}, "", errors.New("runsc restore: incompatible image")
	}
	for i := range 2 {
		sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{TemplateID: tpl.ID})
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		if len(w.called("node.start "+sb.ID)) != 1 {
			t.Errorf("create %d did not start cold", i)
		}
		if err := w.svc.Kill(ctx, writer, sb.ID); err != nil {
			t.Fatal(err)
		}
	}
	// Off: nothing is made.
	w2, sn2, _ := tplWorld(t)
	w2.svc.cfg.SnapshotKey = ""
	if n, err := sn2.PrepareTemplates(ctx); n != 0 || err != nil || len(w2.called("node.")) != 0 {
		t.Errorf("with template snapshots off: %d, %v, %q", n, err, w2.called("node."))
	}
	// A boot that fails is retried a few times, then left.
	w3, sn3, _ := tplWorld(t)
	w3.node.snapshot = func(context.Context, *domain.Sandbox, string) error { return errors.New("disk full") }
	for range 5 {
		if n, err := sn3.PrepareTemplates(ctx); n != 0 || err != nil {
			t.Fatalf("PrepareTemplates with failing saves: %d, %v", n, err)
		}
	}
	if got := w3.called("node.start "); len(got) != maxTemplateSnapTries {
		t.Errorf("%d boots, want %d", len(got), maxTemplateSnapTries)
	}
	if got := w3.called("node.stop "); len(got) != maxTemplateSnapTries || w3.reservedSlots() != 0 {
		t.Errorf("stops %q, reserved %d: every boot must be removed", got, w3.reservedSlots())
	}
}

// execAgent answers Exec with exec; the rest of processAgent is not used.
type execAgent struct {
	processAgent
	exec func(req domain.ExecRequest) (*domain.ExecResult, error)
}

func (e execAgent) Exec(_ context.Context, req domain.ExecRequest, _ func(domain.ExecEvent) error) (*domain.ExecResult, error) {
	return e.exec(req)
}

// TestTeamTemplateSnapshot: a team's built template with a start command and a ready
// check gets a snapshot made once its check passes in the booted sandbox; two teams'
// templates on one shared root filesystem keep theirs apart; creates restore from it;
// a deleted template's snapshot goes.
func TestTeamTemplateSnapshot(t *testing.T) {
	w, sn, _ := tplWorld(t)
	ctx := context.Background()
	shared := filepath.Join(t.TempDir(), "layers", "r", "key1", "rootfs") // the layer cache shares roots
	if err := os.MkdirAll(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	app := &domain.Template{ID: "app", TeamID: "team1", Hash: "b1", RootFS: shared, Ready: true, StartCmd: "srv",
		ReadyCheck: domain.ReadyCheck{File: "/tmp/ready"}}
	web := &domain.Template{ID: "web", TeamID: "team2", Hash: "b2", RootFS: shared, Ready: true, StartCmd: "srv",
		ReadyCheck: domain.ReadyCheck{URL: "http://localhost:8080/"}}
	cold := &domain.Template{ID: "nocheck", TeamID: "team1", Hash: "b3", RootFS: shared, Ready: true, StartCmd: "srv"}
	w.templates[app.ID], w.templates[web.ID], w.templates[cold.ID] = app, web, cold
	base := w.svc.cfg.dial
	var checks []string
	w.svc.cfg.dial = func(address, token string) *agent {
		a := base(address, token)
		a.procs = execAgent{exec: func(req domain.ExecRequest) (*domain.ExecResult, error) {
			w.mu.Lock()
			checks = append(checks, req.Cmd)
			w.mu.Unlock()
			return &domain.ExecResult{}, nil
		}}
		return a
	}
	if n, err := sn.PrepareTemplates(ctx); err != nil || n != 3 {
		t.Fatalf("PrepareTemplates = %d, %v; want 3 (the code interpreter and two team templates)", n, err)
	}
	if len(checks) != 2 || !strings.Contains(strings.Join(checks, "\n"), "[ -e '/tmp/ready' ]") {
		t.Errorf("ready checks run in the booted sandboxes: %q", checks)
	}
	for _, tpl := range []*domain.Template{app, web} {
		if got, _ := filepath.Glob(filepath.Join(snapEntry(tpl), "snapshot-*", templateSnapMeta)); len(got) != 1 {
			t.Errorf("%s: snapshots %v, want one in %s", tpl.ID, got, snapEntry(tpl))
		}
	}
	if got, _ := filepath.Glob(filepath.Join(filepath.Dir(shared), "snapshot-*")); len(got) != 0 {
		t.Errorf("team snapshots beside the shared root: %v", got)
	}

	sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{TemplateID: app.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.called("node.startfrom "+sb.ID)) != 1 {
		t.Errorf("a create of %s did not restore from its snapshot", app.ID)
	}
	sb2, err := w.svc.Create(ctx, writer, domain.CreateSandbox{TemplateID: cold.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.called("node.start "+sb2.ID)) != 1 {
		t.Errorf("a template without a ready check did not start cold")
	}

	// app is deleted: its snapshot goes once no restore reads it; web's stays.
	w.mu.Lock()
	delete(w.templates, app.ID)
	w.mu.Unlock()
	if n, err := sn.PrepareTemplates(ctx); err != nil || n != 2 {
		t.Fatalf("PrepareTemplates after a delete = %d, %v; want 2", n, err)
	}
	if got, _ := filepath.Glob(filepath.Join(snapEntry(app), "snapshot-*")); len(got) != 0 {
		t.Errorf("the deleted template's snapshot is left: %v", got)
	}
	if got, _ := filepath.Glob(filepath.Join(snapEntry(web), "snapshot-*", templateSnapMeta)); len(got) != 1 {
		t.Errorf("the other team's snapshot went too: %v", got)
	}
}

// TestPoolFromTemplateSnapshot: a warm pool of a template with a snapshot restores its
// members from it (the code interpreter's kernel then needs no boot), and gives each
// its own identity before it waits.
func TestPoolFromTemplateSnapshot(t *testing.T) {
	w, sn, tpl := tplWorld(t)
	ctx := context.Background()
	if n, err := sn.PrepareTemplates(ctx); err != nil || n != 1 {
		t.Fatalf("PrepareTemplates = %d, %v; want 1", n, err)
	}
	p, err := NewPool(w.svc, PoolConfig{Sizes: []PoolSize{{tpl.ID, 2}}, Retry: 20 * time.Millisecond, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Errorf("closing the pool: %v", err)
		}
	})
	var ids []string
	waitFor(t, "two ready members", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		ids = ids[:0]
		for _, m := range p.ready[tpl.ID] {
			ids = append(ids, m.sb.ID)
		}
		return len(ids) == 2
	})
	for _, id := range ids {
		if got := w.called("node.startfrom " + id); len(got) != 1 {
			t.Errorf("member %s: restores %q, want one from the template snapshot", id, got)
		}
		if got := w.called("node.start " + id); len(got) != 0 {
			t.Errorf("member %s was booted: %q", id, got)
		}
	}
	if got := w.called("agent.init "); len(got) != 2 {
		t.Errorf("identities given: %q, want one per member", got)
	}
	sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{TemplateID: tpl.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ids, sb.ID) {
		t.Errorf("create got %s, not a pool member (%v)", sb.ID, ids)
	}
}

// TestTemplateSnapshotRuntimeBuild: runsc restores only images of its own version, so
// a snapshot made under one runtime build is not restored under another (creates start
// cold, none fails), and the next PrepareTemplates makes one for the new build in its
// place.
func TestTemplateSnapshotRuntimeBuild(t *testing.T) {
	w, sn, tpl := tplWorld(t)
	ctx := context.Background()
	build := func(b string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		drv := checkpointDriver{gvisorFake}
		drv.caps.Build = b
		w.node.drivers = []runtime.Driver{drv}
	}
	build("runsc-1")
	if n, err := sn.PrepareTemplates(ctx); err != nil || n != 1 {
		t.Fatalf("PrepareTemplates = %d, %v; want 1", n, err)
	}
	first, _ := filepath.Glob(filepath.Join(filepath.Dir(tpl.RootFS), "snapshot-*"))
	create := func() *domain.Sandbox {
		t.Helper()
		sb, err := w.svc.Create(ctx, writer, domain.CreateSandbox{TemplateID: tpl.ID})
		if err != nil {
			t.Fatal(err)
		}
		return sb
	}
	if sb := create(); len(w.called("node.startfrom "+sb.ID)) != 1 {
		t.Fatalf("under the build that made it, the create was not restored: %q", w.called("node.start"))
	}
	build("runsc-2")
	if sb := create(); len(w.called("node.startfrom "+sb.ID)) != 0 || len(w.called("node.start "+sb.ID)) != 1 {
		t.Errorf("under another build: restores %q, boots %q; want a cold start", w.called("node.startfrom "+sb.ID), w.called("node.start "+sb.ID))
	}
	if n, err := sn.PrepareTemplates(ctx); err != nil || n != 1 {
		t.Fatalf("PrepareTemplates under the new build = %d, %v; want 1", n, err)
	}
	second, _ := filepath.Glob(filepath.Join(filepath.Dir(tpl.RootFS), "snapshot-*"))
	if len(first) != 1 || len(second) != 1 || first[0] == second[0] {
		t.Errorf("snapshot directories %v, then %v: want the first replaced by another", first, second)
	}
	if sb := create(); len(w.called("node.startfrom "+sb.ID)) != 1 {
		t.Errorf("the new build's snapshot was not restored from")
	}
}
