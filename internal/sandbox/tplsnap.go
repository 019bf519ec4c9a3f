package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/agentclient"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/runtime"
)

// Snapshot-started templates. A template with a start command and a ready port (the
// code interpreter, whose server and Python kernel take seconds to boot in gVisor) or,
// for a team's built template, a ready check (its build's ready.*; E2B's waitFor*) is
// booted once: a sandbox of it with the default limits, no row and no team, whose ready
// port answers (or ready check passes) and whose default Python context has run a cell
// (the code interpreter's), is saved with the node's Snapshot next to the template's
// root filesystem (<template cache>/<name>-<hash>/snapshot-<key>/; a team's template
// under team-snapshots/<team>-<id>/ there). Creates of the template that fit the
// snapshot (default limits, its runtime, no env of their own, which the template's
// server would not see) are restored from it instead of booting; any other create, or
// a restore that fails, starts cold as before (logged). The key hashes the template
// (hash and root filesystem), the runtime (its name and build: runsc restores only its
// own version's images), the limits and Config.SnapshotKey (the agent binary), so a
// rebuilt template, another runsc or a new agent gets a new snapshot.

// templateSnapMeta is the file beside a template snapshot's image and files.
const templateSnapMeta = "warren-template-snapshot.json"

// templateSnap is a template's snapshot.
type templateSnap struct {
	Key     string        `json:"key"`
	Token   string        `json:"token"` // the saved agent's access token
	Runtime string        `json:"runtime"`
	Limits  domain.Limits `json:"limits"`
	dir     string
	broken  bool // a restore from it failed: creates start cold
}

// templateSnaps are the template snapshots this server knows, by template id.
type templateSnaps struct {
	mu   sync.Mutex
	byID map[string]*templateSnap
	// tried counts failed boots by key, so a template that cannot be saved is not
	// booted over and over.
	tried map[string]int
}

// maxTemplateSnapTries bounds the boots of one template snapshot that fail.
const maxTemplateSnapTries = 3

// templateKey is the key of tpl's snapshot on the runtime of caps (its name and build:
// an image restores only on the runtime build that wrote it) with limits l.
func (sn *Snapshots) templateKey(tpl *domain.Template, caps runtime.Capabilities, l domain.Limits) string {
	lj, _ := json.Marshal(l)
	h := sha256.New()
	for _, part := range []string{tpl.TeamID, tpl.ID, tpl.Hash, tpl.RootFS, caps.Name, caps.Build, string(lj), sn.sandboxes.cfg.SnapshotKey} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// wantsSnapshot reports whether tpl is one whose sandboxes start from a snapshot: a
// ready template whose start command says when it is ready (a built-in's ready port, or
// a built template's ready check).
func wantsSnapshot(tpl *domain.Template) bool {
	return tpl.Ready && tpl.StartCmd != "" && (tpl.ReadyPort > 0 || !tpl.ReadyCheck.IsZero()) && tpl.RootFS != ""
}

// snapID names tpl among the templates with snapshots (ids are unique per team only).
func snapID(tpl *domain.Template) string { return tpl.TeamID + "/" + tpl.ID }

// snapEntry is the directory tpl's snapshots are kept in: beside a built-in's root
// filesystem, and in a directory of its own beside a team's (whose root filesystem the
// layer cache may share between templates, so their snapshots must not meet).
func snapEntry(tpl *domain.Template) string {
	if tpl.TeamID == "" {
		return filepath.Dir(tpl.RootFS)
	}
	return filepath.Join(filepath.Dir(tpl.RootFS), "team-snapshots", tpl.TeamID+"-"+tpl.ID)
}

// templateDefaults is what a snapshot of template tplID is made with: the node's default
// driver (if it can save sandboxes) and the template's default limits.
func (sn *Snapshots) templateDefaults(tpl *domain.Template) (runtime.Driver, domain.Limits, bool) {
	s := sn.sandboxes
	drv := s.cfg.Node.Drivers()[0]
	if _, ok := drv.(runtime.Checkpointer); !ok {
		return nil, domain.Limits{}, false
	}
	l, err := resolveLimits(domain.Limits{}, s.cfg.templateLimits(tpl), s.cfg.MaxLimits)
	return drv, l, err == nil
}

// PrepareTemplates makes sure every ready template with a start command has its
// snapshot: read from the template cache if it is there, else made (booted and saved).
// It returns how many templates have one. Call it after templates are built; it is
// cheap when nothing changed.
func (sn *Snapshots) PrepareTemplates(ctx context.Context) (int, error) {
	s := sn.sandboxes
	if s.cfg.SnapshotKey == "" {
		return 0, nil // template snapshots are off
	}
	tpls, err := s.cfg.Store.ListTemplates(ctx, domain.AnyTeam)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, dir := range sn.tpl.forgetGone(tpls) {
		if err := sn.uses.remove(dir); err != nil {
			sn.log.Warn("removing a deleted template's snapshot", "dir", dir, logkey.Err, err)
		}
	}
	for _, tpl := range tpls {
		if !wantsSnapshot(tpl) {
			continue
		}
		drv, limits, ok := sn.templateDefaults(tpl)
		if !ok {
			continue
		}
		key := sn.templateKey(tpl, drv.Capabilities(), limits)
		sn.tpl.mu.Lock()
		cur := sn.tpl.byID[snapID(tpl)]
		tries := sn.tpl.tried[key]
		sn.tpl.mu.Unlock()
		if cur != nil && cur.Key == key {
			n++
			continue
		}
		if tries >= maxTemplateSnapTries {
			continue
		}
		t0 := time.Now()
		ts, err := sn.makeTemplateSnap(ctx, tpl, drv, limits, key)
		sn.tpl.mu.Lock()
		if err != nil {
			if sn.tpl.tried == nil {
				sn.tpl.tried = map[string]int{}
			}
			sn.tpl.tried[key]++
		} else {
			if sn.tpl.byID == nil {
				sn.tpl.byID = map[string]*templateSnap{}
			}
			sn.tpl.byID[snapID(tpl)] = ts
			n++
		}
		sn.tpl.mu.Unlock()
		if err != nil {
			sn.log.Error("making the template's snapshot; its sandboxes start cold", logkey.Template, tpl.ID, logkey.Err, err)
			continue
		}
		sn.log.Info("template snapshot ready", logkey.Template, tpl.ID, "dir", ts.dir, "took", time.Since(t0))
	}
	return n, nil
}

// forgetGone drops the snapshots of team templates that are no longer in tpls (deleted,
// or rebuilt without a ready check) and returns their directories, for the caller to
// remove once no restore reads them. A built-in's snapshot stays: its template comes
// back with the next start.
func (sn *templateSnaps) forgetGone(tpls []*domain.Template) []string {
	live := map[string]bool{}
	for _, tpl := range tpls {
		if wantsSnapshot(tpl) {
			live[snapID(tpl)] = true
		}
	}
	var gone []string
	sn.mu.Lock()
	defer sn.mu.Unlock()
	for id, ts := range sn.byID {
		if !live[id] && !strings.HasPrefix(id, "/") {
			gone = append(gone, ts.dir)
			delete(sn.byID, id)
		}
	}
	return gone
}

// RunTemplates calls PrepareTemplates every interval until ctx ends (templates are
// built in the background after the server starts).
func (sn *Snapshots) RunTemplates(ctx context.Context, interval time.Duration) {
	for {
		if _, err := sn.PrepareTemplates(ctx); err != nil && ctx.Err() == nil {
			sn.log.Error("preparing template snapshots", logkey.Err, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// makeTemplateSnap returns tpl's snapshot of that key: the one in the template cache,
// or one made now by booting a sandbox of tpl (no row, no team: shielded from the
// sweeper like a pool member, on a reserved slot) and saving it. Servers sharing the
// cache each may make one; the first to rename its directory into place wins.
func (sn *Snapshots) makeTemplateSnap(ctx context.Context, tpl *domain.Template, drv runtime.Driver, limits domain.Limits, key string) (*templateSnap, error) {
	s := sn.sandboxes
	final := filepath.Join(snapEntry(tpl), "snapshot-"+key)
	if ts, err := readTemplateSnap(final); err == nil {
		return ts, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	used, err := s.cfg.Store.UsedSlots(ctx, s.nodeScope())
	if err != nil {
		return nil, err
	}
	slot, err := s.reg.reserveSlot(used, s.cfg.Node.Slots())
	if err != nil {
		return nil, err
	}
	defer s.reg.releaseSlot(slot)
	sb := &domain.Sandbox{ID: domain.NewID(20), TemplateID: tpl.ID, Limits: limits, RuntimeName: drv.Capabilities().Name,
		AccessToken: newToken(), Slot: slot, State: domain.StateStarting, CreatedAt: s.cfg.Now().UTC()}
	s.reg.setPooled(sb.ID, true) // before anything of it exists on the node
	defer s.reg.setPooled(sb.ID, false)
	h, addr, err := s.cfg.Node.Start(ctx, sb, tpl)
	if err != nil {
		return nil, fmt.Errorf("booting a sandbox of template %s: %w", tpl.ID, err)
	}
	defer func() {
		if err := s.cfg.Node.Stop(context.WithoutCancel(ctx), sb.ID, sb.Slot, &h); err != nil {
			sn.log.Error("removing the sandbox a template snapshot was made of", logkey.SandboxID, sb.ID, logkey.Err, err)
		}
	}()
	sb.RuntimeHandle, _ = json.Marshal(h)
	sb.Address = addr
	ag := s.cfg.dial(addr, sb.AccessToken)
	defer ag.conn.Close()
	wctx, unwatch := watchExit(ctx, h.PID, s.cfg.running)
	err = ag.conn.WaitReady(wctx)
	if err == nil && tpl.ReadyPort > 0 {
		err = ag.conn.WaitPortReady(wctx, tpl.ReadyPort)
	}
	if err = exitedErr(wctx, s.cfg.Node, sb.ID, err); err != nil {
		unwatch()
		return nil, err
	}
	unwatch()
	exec := func(ctx context.Context, req domain.ExecRequest) (*domain.ExecResult, error) {
		return ag.procs.Exec(ctx, req, func(domain.ExecEvent) error { return nil })
	}
	if err := waitReadyCheck(ctx, addr, exec, tpl.ReadyCheck); err != nil {
		return nil, err
	}
	if ag.code != nil && strconv.Itoa(tpl.ReadyPort) == agentclient.CodePort {
		// The code interpreter starts its default Python kernel in the background: a cell
		// run waits for it, so the snapshot holds a kernel that is ready. An empty cell,
		// as the warm pool's: IPython skips it, so a sandbox restored from the snapshot
		// gives its first cell execution_count 1 and keeps no "pass" in In.
		if err := ag.code.RunCode(ctx, domain.RunCode{Language: "python"}, func(domain.CodeEvent) error { return nil }); err != nil {
			return nil, fmt.Errorf("warming the code interpreter: %w", err)
		}
	}
	if err := os.MkdirAll(snapEntry(tpl), 0o700); err != nil {
		return nil, err
	}
	tmp := filepath.Join(snapEntry(tpl), ".snapshot-tmp-"+domain.NewID(8))
	if err := s.cfg.Node.Snapshot(ctx, sb, tmp); err != nil {
		return nil, fmt.Errorf("saving a sandbox of template %s: %w", tpl.ID, err)
	}
	ts := &templateSnap{Key: key, Token: sb.AccessToken, Runtime: sb.RuntimeName, Limits: limits}
	b, _ := json.Marshal(ts)
	if err := os.WriteFile(filepath.Join(tmp, templateSnapMeta), b, 0o600); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.RemoveAll(tmp)
		if other, rerr := readTemplateSnap(final); rerr == nil {
			return other, nil // another server made it meanwhile
		}
		return nil, err
	}
	ts.dir = final
	removeOtherTemplateSnaps(snapEntry(tpl), final, sn.log)
	return ts, nil
}

// removeOtherTemplateSnaps removes, from a template's cache entry, the snapshots of
// other keys (an older agent binary's, or another runtime's or limits') and temporary
// directories of saves a crash interrupted (older than an hour): a new snapshot
// replaces them. A server still holding one of them restores no more from it and
// starts its sandboxes cold.
func removeOtherTemplateSnaps(entry, keep string, log *slog.Logger) {
	old, _ := filepath.Glob(filepath.Join(entry, "snapshot-*"))
	tmps, _ := filepath.Glob(filepath.Join(entry, ".snapshot-tmp-*"))
	for _, dir := range tmps {
		if fi, err := os.Stat(dir); err == nil && time.Since(fi.ModTime()) > time.Hour {
			old = append(old, dir)
		}
	}
	for _, dir := range old {
		if dir == keep {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("removing an old template snapshot", "dir", dir, logkey.Err, err)
		}
	}
}

// readTemplateSnap reads the template snapshot in dir.
func readTemplateSnap(dir string) (*templateSnap, error) {
	b, err := os.ReadFile(filepath.Join(dir, templateSnapMeta))
	if err != nil {
		return nil, err
	}
	var ts templateSnap
	if err := json.Unmarshal(b, &ts); err != nil {
		return nil, fmt.Errorf("template snapshot %s: %w", dir, err)
	}
	ts.dir = dir
	return &ts, nil
}

// templateOrigin returns the template snapshot a cold create of sb on tpl (asked with
// req) can be restored from instead, or nil: none made yet, the template rebuilt since,
// other limits or runtime, env of its own (the template's server would not see it), or
// a restore from it failed before.
func (sn *Snapshots) templateOrigin(sb *domain.Sandbox, tpl *domain.Template, req domain.CreateSandbox) *origin {
	if !wantsSnapshot(tpl) || len(req.Env) > 0 {
		return nil
	}
	drv, _, ok := sn.templateDefaults(tpl)
	if !ok {
		return nil
	}
	sn.tpl.mu.Lock()
	ts := sn.tpl.byID[snapID(tpl)]
	sn.tpl.mu.Unlock()
	if ts == nil || ts.broken || ts.Runtime != sb.RuntimeName || ts.Limits != sb.Limits ||
		ts.Key != sn.templateKey(tpl, drv.Capabilities(), ts.Limits) {
		return nil
	}
	release, ok := sn.uses.acquire(ts.dir)
	if !ok {
		return nil
	}
	return &origin{dir: ts.dir, token: ts.Token, release: release, coldFallback: true, failed: func(err error) {
		sn.log.Warn("restoring a sandbox from its template's snapshot failed; it starts cold, and so will the template's next sandboxes",
			logkey.Template, tpl.ID, "dir", ts.dir, logkey.Err, err)
		sn.tpl.mu.Lock()
		ts.broken = true
		sn.tpl.mu.Unlock()
	}}
}
