package cli

import (
	"strings"
	"testing"
)

func TestSandboxFork(t *testing.T) {
	e := newTestEnv(t)
	id := e.createSandbox("--metadata", "owner=alice")
	forks := decode[[]map[string]any](t, e.ok("sandbox", "fork", id, "--count", "3", "-o", "json").stdout)
	if len(forks) != 3 {
		t.Fatalf("fork --count 3 -o json: %v", forks)
	}
	seen := map[any]bool{id: true}
	for _, f := range forks {
		if seen[f["id"]] || f["state"] != "running" {
			t.Errorf("fork %v: repeated id or not running", f)
		}
		seen[f["id"]] = true
	}
	r := e.ok("sandbox", "fork", id)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") {
		t.Errorf("fork table:\n%s", r.stdout)
	}

	// Some copies start and others do not: those that did are printed, exit 1.
	e.svc.forkMax = 2
	r = e.run("sandbox", "fork", id, "--count", "4", "-o", "json")
	if got := decode[[]map[string]any](t, r.stdout); r.code != 1 || len(got) != 2 {
		t.Errorf("partial fork: exit %d, %d printed", r.code, len(got))
	}
	if !strings.Contains(r.stderr, "copy 3 did not start: quota max_sandboxes exceeded") || !strings.Contains(r.stderr, "error: 2 of 4 copies did not start; the 2 listed run") {
		t.Errorf("partial fork stderr: %q", r.stderr)
	}
	e.svc.forkMax = 0

	e.ok("sandbox", "pause", id)
	if r := e.run("sandbox", "fork", id); r.code != 1 || !strings.Contains(r.stderr, "only a running sandbox can be forked; resume it first (request req_") {
		t.Errorf("fork of a paused sandbox: %+v", r)
	}
	if r := e.run("--api-key", keyB, "sandbox", "fork", id); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("fork as another team: %+v", r)
	}
}

func TestSnapshots(t *testing.T) {
	e := newTestEnv(t)
	id := e.createSandbox("--template", "python")
	r := e.ok("snapshot", "create", id, "--name", "warm")
	if !strings.Contains(r.stdout, "name      warm") || !strings.Contains(r.stdout, "3.0 MiB") || !strings.Contains(r.stderr, "warren sandbox create --snapshot warm") {
		t.Errorf("snapshot create: %q / %q", r.stdout, r.stderr)
	}
	snap := decode[map[string]any](t, e.ok("snapshot", "create", id, "-o", "json").stdout)
	snapID, _ := snap["id"].(string)
	if !strings.HasPrefix(snapID, "snap_") || snap["sandbox_id"] != id || snap["template_id"] != "python" {
		t.Errorf("snapshot create -o json: %v", snap)
	}
	if r := e.run("snapshot", "create", id, "--name", "warm"); r.code != 1 || !strings.Contains(r.stderr, `a snapshot named "warm" already`) {
		t.Errorf("a taken name: %+v", r)
	}

	// A sandbox from the snapshot runs on its template; --snapshot sends no template.
	from := e.createSandbox("--snapshot", "warm")
	if e.svc.lastReq.Snapshot != "warm" || e.svc.lastReq.TemplateID != "" || from == id {
		t.Errorf("create --snapshot sent %+v", e.svc.lastReq)
	}
	if sb := decode[map[string]any](t, e.ok("sandbox", "get", from, "-o", "json").stdout); sb["template"] != "python" {
		t.Errorf("sandbox from the snapshot: %v", sb)
	}
	if r := e.run("sandbox", "create", "--snapshot", "nope"); r.code != 1 || !strings.Contains(r.stderr, `snapshot "nope" not found`) {
		t.Errorf("unknown snapshot: %+v", r)
	}

	list := decode[[]map[string]any](t, e.ok("snapshot", "list", "-o", "json").stdout)
	if len(list) != 2 || list[0]["id"] != snapID {
		t.Errorf("snapshot list -o json: %v", list)
	}
	other := e.createSandbox()
	if l := decode[[]map[string]any](t, e.ok("snapshot", "list", "--sandbox", other, "-o", "json").stdout); len(l) != 0 {
		t.Errorf("list --sandbox of a sandbox without snapshots: %v", l)
	}
	r = e.ok("snapshot", "list")
	if !strings.HasPrefix(r.stdout, "ID") || !strings.Contains(r.stdout, "warm") || !strings.Contains(r.stdout, snapID) {
		t.Errorf("snapshot list:\n%s", r.stdout)
	}
	if g := decode[map[string]any](t, e.ok("snapshot", "get", "warm", "-o", "json").stdout); g["name"] != "warm" {
		t.Errorf("snapshot get by name: %v", g)
	}
	if r := e.run("--api-key", keyB, "snapshot", "get", "warm"); r.code != 1 || !strings.Contains(r.stderr, `snapshot "warm" not found`) {
		t.Errorf("another team's snapshot: %+v", r)
	}
	if r := e.ok("snapshot", "delete", "warm"); r.stdout != "deleted snapshot warm\n" {
		t.Errorf("snapshot delete: %q", r.stdout)
	}
	if d := decode[map[string]any](t, e.ok("snapshot", "delete", snapID, "-o", "json").stdout); d["deleted"] != true {
		t.Errorf("snapshot delete -o json: %v", d)
	}
	if r := e.run("snapshot", "delete", snapID); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("delete twice: %+v", r)
	}
	if l := e.ok("snapshot", "list", "-o", "json").stdout; strings.TrimSpace(l) != "[]" {
		t.Errorf("empty list = %q, want []", l)
	}
	e.ok("sandbox", "pause", id)
	if r := e.run("snapshot", "create", id); r.code != 1 || !strings.Contains(r.stderr, "only a running sandbox can be saved") {
		t.Errorf("snapshot of a paused sandbox: %+v", r)
	}
}
