package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
