package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// Snapshots saves running sandboxes and starts new ones from what it saved
// (domain.SnapshotService): named snapshots, which the team keeps (counted against
// max_snapshots) until it deletes them, and forks, which save their sandbox once,
// start their copies from it and drop it. A snapshot is a directory under
// Config.SnapshotDir (the node's Snapshot: image and files) and, when named, a row.
//
// A sandbox started from a snapshot has its own copy of the snapshot's files, and its
// memory is read from the image while it is restored, so deleting a snapshot never
// touches the sandboxes started from it: only a restore under way delays the removal
// of the files until it is done.
type Snapshots struct {
	sandboxes *Service
	log       *slog.Logger
	dir       string
	uses      dirUses
	tpl       templateSnaps
}

var _ domain.SnapshotService = (*Snapshots)(nil)

// Bounds of a fork.
const (
	maxForks = 20
	// forkParallelism bounds the copies of a fork started at once: each restore reads
	// the image and copies the files, and more at once only queue for the same disk and
	// cores.
	forkParallelism = 4
	// forkDirPrefix names a fork's own snapshot directory, which never has a row.
	forkDirPrefix = "fork-"
)

// newSnapshots makes the Service's snapshots, creating Config.SnapshotDir.
func newSnapshots(s *Service) (*Snapshots, error) {
	sn := &Snapshots{sandboxes: s, log: s.log, dir: s.cfg.SnapshotDir, uses: dirUses{log: s.log}}
	if sn.dir != "" {
		if err := os.MkdirAll(sn.dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating the snapshot directory: %w", err)
		}
	}
	return sn, nil
}

// NewSnapshots returns the snapshots of s's sandboxes (there is one per Service: a
// create from a snapshot goes through it as well).
func NewSnapshots(s *Service) *Snapshots { return s.snaps }

// path is where the files of the snapshot id live.
func (sn *Snapshots) path(id string) string { return filepath.Join(sn.dir, id) }

// enabled refuses when the server keeps no snapshots.
func (sn *Snapshots) enabled() error {
	if sn.dir == "" {
		return domain.Errorf(domain.KindUnavailable, "this server keeps no snapshots (it has no snapshot directory), so it cannot fork or snapshot sandboxes")
	}
	return nil
}

// running returns the running sandbox id of p's team as the registry has it: forks
// and snapshots are taken of running sandboxes only.
func (sn *Snapshots) running(ctx context.Context, p domain.Principal, id, doing string) (*domain.Sandbox, error) {
	row, err := sn.sandboxes.getHere(ctx, p, id)
	if err != nil {
		return nil, err
	}
	ls, ending, ok := sn.sandboxes.reg.get(id)
	switch {
	case row.State == domain.StatePaused:
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is paused: resume it first (POST /v1/sandboxes/%s/resume, or connect to it with the E2B SDK), then it can be %s", id, id, doing)
	case !ok || row.State != domain.StateRunning:
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is %s: only a running sandbox can be %s; resume a paused one first", id, row.State, doing)
	case ending:
		return nil, domain.Errorf(domain.KindConflict, "sandbox %q is being stopped: it can no longer be %s", id, doing)
	}
	sb := *ls.sb
	return &sb, nil
}

// save saves the running sb into dst with the node's Snapshot (sb runs on). A runtime
// that cannot save is the node's KindConflict; any other failure is logged and
// reported without its cause.
func (sn *Snapshots) save(ctx context.Context, sb *domain.Sandbox, dst string) error {
	t0 := time.Now()
	// Saving must finish (or clean up) even if the client goes away.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	err := sn.sandboxes.cfg.Node.Snapshot(sctx, sb, dst)
	if err == nil {
		sn.log.Debug("sandbox saved", logkey.SandboxID, sb.ID, "took", time.Since(t0))
		return nil
	}
	if domain.KindOf(err) != domain.KindInternal {
		return err
	}
	sn.log.ErrorContext(ctx, "saving sandbox", logkey.SandboxID, sb.ID, logkey.Err, err)
	return domain.Errorf(domain.KindUnavailable, "sandbox %s could not be saved (it runs on as before); retry, and if it keeps failing, ask the operator to look it up in the server log", sb.ID)
}

// template returns sb's template, or a bare one naming it when it is gone.
func (sn *Snapshots) template(ctx context.Context, teamID, id string) (*domain.Template, error) {
	tpl, err := sn.sandboxes.cfg.Store.GetTemplate(ctx, teamID, id)
	if domain.IsKind(err, domain.KindNotFound) {
		return &domain.Template{ID: id}, nil
	}
	return tpl, err
}

// Fork implements domain.SnapshotService: it saves the running sandbox id once and
// starts count new sandboxes from it, forkParallelism at a time, each through the
// same admission as a create (node room, quota, its own slot, row, token and
// hostname). The sandbox runs on. Results come in order, one per sandbox asked for;
// the saved files are removed once every copy has started or failed.
func (sn *Snapshots) Fork(ctx context.Context, p domain.Principal, id string, count int, timeout time.Duration) (_ []domain.ForkResult, err error) {
	ctx, span := startSpan(ctx, "sandbox.fork", attrSandboxID.String(id), attrForkCount.Int(count))
	defer func() { endSpan(span, err) }()
	s := sn.sandboxes
	defer recordLifecycle(s.cfg.Recorder, "fork", time.Now(), &err)
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return nil, err
	}
	if count < 1 || count > maxForks {
		return nil, domain.Invalid("count", "count must be between 1 and %d, not %d", maxForks, count)
	}
	timeout, err = resolveTimeout(timeout, s.cfg.DefaultTimeout, s.cfg.MaxTimeout)
	if err != nil {
		return nil, err
	}
	parent, err := sn.running(ctx, p, id, "forked")
	if err != nil {
		return nil, err
	}
	if err := sn.enabled(); err != nil {
		return nil, err
	}
	_, quota, err := admitTeam(ctx, &s.cfg, p.TeamID)
	if err != nil {
		return nil, err
	}
	// Each copy is a new live sandbox: refuse before saving when not even one fits.
	used, err := s.cfg.Store.TeamUsage(ctx, p.TeamID)
	if err != nil {
		return nil, err
	}
	if err := domain.CheckSandboxQuota(quota, used, parent.Limits); err != nil {
		return nil, err
	}
	tpl, err := sn.template(ctx, parent.TeamID, parent.TemplateID)
	if err != nil {
		return nil, err
	}
	dir := sn.path(forkDirPrefix + domain.NewID(16))
	if err := sn.save(ctx, parent, dir); err != nil {
		return nil, err
	}
	release, _ := sn.uses.acquire(dir)
	defer func() {
		release()
		if err := sn.uses.remove(dir); err != nil {
			sn.log.Error("removing a fork's snapshot", "dir", dir, logkey.Err, err)
		}
	}()
	results := make([]domain.ForkResult, count)
	sem := make(chan struct{}, forkParallelism)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			child := forkOf(parent, s.cfg.Now().UTC(), timeout)
			results[i].Sandbox, results[i].Err = s.launch(ctx, quota, child, tpl, &origin{dir: dir, token: parent.AccessToken})
		}()
	}
	wg.Wait()
	started := 0
	for _, r := range results {
		if r.Err == nil {
			started++
		}
	}
	sn.log.InfoContext(ctx, "sandbox forked", logkey.SandboxID, id, "asked", count, "started", started)
	return results, nil
}

// forkOf is the row of a new copy of parent: its own id, token (and traffic token if
// the parent's traffic is private), timeout; the parent's template, runtime, limits,
// env, metadata, internet access, egress policy and lifecycle.
func forkOf(parent *domain.Sandbox, now time.Time, timeout time.Duration) *domain.Sandbox {
	traffic := ""
	if parent.TrafficToken != "" {
		traffic = newToken()
	}
	return &domain.Sandbox{
		ID: domain.NewID(20), TeamID: parent.TeamID, TemplateID: parent.TemplateID, State: domain.StateStarting,
		Metadata: maps.Clone(parent.Metadata), Env: maps.Clone(parent.Env), Limits: parent.Limits, Internet: parent.Internet,
		Network: parent.Network, RuntimeName: parent.RuntimeName, AccessToken: newToken(), TrafficToken: traffic,
		CreatedAt: now, EndsAt: now.Add(timeout), Lifecycle: parent.Lifecycle,
	}
}

// CreateSnapshot implements domain.SnapshotService: it saves the running sandbox as a
// snapshot the team keeps, within its max_snapshots quota. The sandbox runs on.
func (sn *Snapshots) CreateSnapshot(ctx context.Context, p domain.Principal, sandboxID, name string) (_ *domain.Snapshot, err error) {
	ctx, span := startSpan(ctx, "sandbox.snapshot", attrSandboxID.String(sandboxID))
	defer func() { endSpan(span, err) }()
	s := sn.sandboxes
	defer recordLifecycle(s.cfg.Recorder, "snapshot", time.Now(), &err)
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return nil, err
	}
	if err := validSnapshotName(name); err != nil {
		return nil, err
	}
	sb, err := sn.running(ctx, p, sandboxID, "snapshotted")
	if err != nil {
		return nil, err
	}
	if err := sn.enabled(); err != nil {
		return nil, err
	}
	if name != "" {
		if _, err := s.cfg.Store.GetTemplate(ctx, p.TeamID, name); err == nil {
			return nil, domain.Invalid("name", "%q is the name of a template; choose another name for the snapshot", name)
		}
		if _, err := s.cfg.Store.GetSnapshot(ctx, p.TeamID, name); err == nil {
			return nil, domain.Errorf(domain.KindConflict, "the team already has a snapshot named %q; choose another name, or delete that snapshot first", name)
		}
	}
	team, err := s.cfg.Store.GetTeam(ctx, p.TeamID)
	if err != nil {
		return nil, fmt.Errorf("reading team: %w", err)
	}
	used, err := s.cfg.Store.TeamUsage(ctx, p.TeamID)
	if err != nil {
		return nil, err
	}
	if err := domain.CheckSnapshotQuota(team.Quota.MaxSnapshots, used.Snapshots); err != nil {
		return nil, err
	}
	tpl, err := sn.template(ctx, sb.TeamID, sb.TemplateID)
	if err != nil {
		return nil, err
	}
	snap := &domain.Snapshot{
		ID: domain.NewSnapshotID(), TeamID: p.TeamID, Name: name, SandboxID: sb.ID, TemplateID: sb.TemplateID,
		TemplateRootFS: tpl.RootFS, RuntimeName: sb.RuntimeName, Limits: sb.Limits, Env: maps.Clone(sb.Env),
		Internet: sb.Internet, Network: sb.Network, AccessToken: sb.AccessToken,
	}
	dir := sn.path(snap.ID)
	if err := sn.save(ctx, sb, dir); err != nil {
		return nil, err
	}
	snap.SizeBytes, snap.CreatedAt = diskBytes(dir), s.cfg.Now().UTC()
	// The files come first and the row after, within the quota: a crash in between
	// leaves files without a row, which Recover removes.
	if err := s.cfg.Store.CreateSnapshotWithinQuota(context.WithoutCancel(ctx), snap, team.Quota.MaxSnapshots); err != nil {
		if rerr := os.RemoveAll(dir); rerr != nil {
			sn.log.Error("removing an unrecorded snapshot", "dir", dir, logkey.Err, rerr)
		}
		return nil, err
	}
	sn.log.InfoContext(ctx, "snapshot created", logkey.SandboxID, sb.ID, "snapshot", snap.ID, "bytes", snap.SizeBytes)
	return snap, nil
}

// ListSnapshots implements domain.SnapshotService.
func (sn *Snapshots) ListSnapshots(ctx context.Context, p domain.Principal, f domain.SnapshotFilter) ([]*domain.Snapshot, string, error) {
	if err := p.Need(domain.ScopeSandboxesRead); err != nil {
		return nil, "", err
	}
	f.TeamID = p.TeamID
	return sn.sandboxes.cfg.Store.ListSnapshots(ctx, f)
}

// GetSnapshot implements domain.SnapshotService.
func (sn *Snapshots) GetSnapshot(ctx context.Context, p domain.Principal, ref string) (*domain.Snapshot, error) {
	if err := p.Need(domain.ScopeSandboxesRead); err != nil {
		return nil, err
	}
	return sn.find(ctx, p.TeamID, ref)
}

// find returns the team's snapshot by id or name.
func (sn *Snapshots) find(ctx context.Context, teamID, ref string) (*domain.Snapshot, error) {
	if ref == "" || len(ref) > 128 {
		return nil, domain.NotFound("snapshot", ref)
	}
	return sn.sandboxes.cfg.Store.GetSnapshot(ctx, teamID, ref)
}

// DeleteSnapshot implements domain.SnapshotService: the row goes at once, the files as
// soon as no restore reads them.
func (sn *Snapshots) DeleteSnapshot(ctx context.Context, p domain.Principal, ref string) (err error) {
	ctx, span := startSpan(ctx, "sandbox.delete_snapshot")
	defer func() { endSpan(span, err) }()
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return err
	}
	snap, err := sn.find(ctx, p.TeamID, ref)
	if err != nil {
		return err
	}
	if err := sn.sandboxes.cfg.Store.DeleteSnapshot(ctx, p.TeamID, snap.ID); err != nil {
		return err
	}
	if sn.dir != "" {
		if err := sn.uses.remove(sn.path(snap.ID)); err != nil {
			// The row is gone: Recover removes the files at the next start.
			sn.log.Error("removing a deleted snapshot's files", "snapshot", snap.ID, logkey.Err, err)
		}
	}
	sn.log.InfoContext(ctx, "snapshot deleted", "snapshot", snap.ID)
	return nil
}

// Recover removes the snapshot files that have no row: forks' and snapshots' that a
// crash interrupted, and those of snapshots deleted while their removal failed. Call
// it once at start-up, before serving. It returns how many it removed.
func (sn *Snapshots) Recover(ctx context.Context) (int, error) {
	if sn.dir == "" {
		return 0, nil
	}
	keep := map[string]bool{}
	cursor := ""
	for {
		page, next, err := sn.sandboxes.cfg.Store.ListSnapshots(ctx, domain.SnapshotFilter{TeamID: domain.AnyTeam, Cursor: cursor, Limit: 500})
		if err != nil {
			return 0, err
		}
		for _, snap := range page {
			keep[snap.ID] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	ents, err := os.ReadDir(sn.dir)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range ents {
		if keep[e.Name()] {
			continue
		}
		if err := os.RemoveAll(sn.path(e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		sn.log.Info("removed snapshot files without a snapshot", "dir", e.Name())
		n++
	}
	return n, errors.Join(errs...)
}

// validSnapshotName checks a snapshot's name: 1 to 63 of a-z, 0-9, '.', '-' and '_',
// starting with a letter or digit, and not shaped like a snapshot id. "" is no name.
func validSnapshotName(name string) error {
	if name == "" {
		return nil
	}
	bad := len(name) > 63 || strings.HasPrefix(name, domain.SnapshotIDPrefix)
	for i := 0; i < len(name) && !bad; i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		bad = !alnum && (i == 0 || c != '.' && c != '-' && c != '_')
	}
	if bad {
		return domain.Invalid("name", "snapshot name %q is not valid: use 1 to 63 of a-z, 0-9, '.', '-' and '_', starting with a letter or digit (and not with %q)", name, domain.SnapshotIDPrefix)
	}
	return nil
}

// diskBytes sums the disk blocks the files below dir hold.
func diskBytes(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				total += st.Blocks * 512
			} else {
				total += fi.Size()
			}
		}
		return nil
	})
	return total
}

// dirUses counts the restores reading each snapshot directory, so that a deleted
// snapshot's files are removed only once none does.
type dirUses struct {
	log    *slog.Logger
	mu     sync.Mutex
	n      map[string]int
	doomed map[string]bool
}

// acquire marks dir as read by one more restore until release; false when dir is
// being removed.
func (u *dirUses) acquire(dir string) (release func(), ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.doomed[dir] {
		return func() {}, false
	}
	if u.n == nil {
		u.n = map[string]int{}
	}
	u.n[dir]++
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			u.n[dir]--
			last := u.n[dir] == 0
			if last {
				delete(u.n, dir)
			}
			doomed := last && u.doomed[dir]
			u.mu.Unlock()
			if doomed {
				u.removeNow(dir)
			}
		})
	}, true
}

// remove removes dir now when no restore reads it, else once the last one is done.
func (u *dirUses) remove(dir string) error {
	u.mu.Lock()
	if u.n[dir] > 0 {
		if u.doomed == nil {
			u.doomed = map[string]bool{}
		}
		u.doomed[dir] = true
		u.mu.Unlock()
		return nil
	}
	u.mu.Unlock()
	return os.RemoveAll(dir)
}

// removeNow removes a doomed dir whose last reader is done.
func (u *dirUses) removeNow(dir string) {
	err := os.RemoveAll(dir)
	u.mu.Lock()
	delete(u.doomed, dir)
	u.mu.Unlock()
	if err != nil {
		u.log.Error("removing a deleted snapshot's files", "dir", dir, logkey.Err, err)
	}
}
