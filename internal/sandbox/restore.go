package sandbox

import (
	"context"
	"maps"
	"os"

	"github.com/warren-sh/warren/internal/domain"
)

// origin is the saved sandbox a new one is restored from: a snapshot directory of the
// node (image and files) and the access token its saved agent holds, which the server
// proves to give the restored agent its own identity.
type origin struct {
	dir   string
	token string
	// release, when set, ends the restore's use of dir (a deleted snapshot's files are
	// removed only after it).
	release func()
	// coldFallback starts the sandbox cold when the restore fails (a template's own
	// snapshot); failed is then told why.
	coldFallback bool
	failed       func(error)
}

// done ends the use of the origin's directory.
func (o *origin) done() {
	if o.release != nil {
		o.release()
	}
}

// prepareCreate returns what a create that names a snapshot of the team starts: the
// row, its template (with the root filesystem the snapshot was taken on) and the
// origin; all nil when the request names no snapshot. Snapshot names it, or
// TemplateID does when no template has that name (E2B's Sandbox.create(snapshotId)).
func (sn *Snapshots) prepareCreate(ctx context.Context, p domain.Principal, team *domain.Team, req domain.CreateSandbox) (*domain.Sandbox, *domain.Template, *origin, error) {
	st := sn.sandboxes.cfg.Store
	ref := req.Snapshot
	if ref == "" {
		if req.TemplateID == "" {
			return nil, nil, nil, nil
		}
		if _, err := st.GetTemplate(ctx, p.TeamID, req.TemplateID); !domain.IsKind(err, domain.KindNotFound) {
			return nil, nil, nil, nil // a template (or an error prepare reports)
		}
		if _, err := sn.find(ctx, p.TeamID, req.TemplateID); err != nil {
			return nil, nil, nil, nil // prepare says the template does not exist
		}
		ref, req.TemplateID = req.TemplateID, ""
	}
	snap, err := sn.find(ctx, p.TeamID, ref)
	if domain.IsKind(err, domain.KindNotFound) {
		return nil, nil, nil, domain.Invalid("snapshot", "snapshot %q does not exist; list the team's snapshots with GET /v1/snapshots", ref)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	sb, tpl, err := sn.restoreRow(ctx, p, team, req, snap)
	if err != nil {
		return nil, nil, nil, err
	}
	dir := sn.path(snap.ID)
	release, ok := sn.uses.acquire(dir)
	if _, err := os.Stat(dir); !ok || err != nil {
		release()
		return nil, nil, nil, domain.Errorf(domain.KindConflict, "snapshot %q has no files on this node (deleted meanwhile, or lost); it cannot be restored", ref)
	}
	return sb, tpl, &origin{dir: dir, token: snap.AccessToken, release: release}, nil
}

// restoreRow validates a create from snap and returns the new sandbox's row (without
// its slot) and template. The snapshot fixes the template, runtime and limits: a
// request may name them only as the snapshot has them. Env adds to the snapshot's.
func (sn *Snapshots) restoreRow(ctx context.Context, p domain.Principal, team *domain.Team, req domain.CreateSandbox, snap *domain.Snapshot) (*domain.Sandbox, *domain.Template, error) {
	s := sn.sandboxes
	if err := sn.enabled(); err != nil {
		return nil, nil, err
	}
	if req.TemplateID != "" && req.TemplateID != snap.TemplateID {
		return nil, nil, domain.Invalid("template", "snapshot %s was taken of a %s sandbox: leave template out, or name %s", snap.ID, snap.TemplateID, snap.TemplateID)
	}
	if req.Runtime != "" && req.Runtime != snap.RuntimeName {
		return nil, nil, domain.Invalid("runtime", "snapshot %s was taken on runtime %s and restores only there: leave runtime out, or name %s", snap.ID, snap.RuntimeName, snap.RuntimeName)
	}
	if err := sameLimits(req.Limits, snap.Limits); err != nil {
		return nil, nil, err
	}
	tpl, err := sn.template(ctx, snap.TeamID, snap.TemplateID)
	if err != nil {
		return nil, nil, err
	}
	if snap.TemplateRootFS != "" {
		tpl.RootFS = snap.TemplateRootFS // the lower layer the files were written over
	}
	if _, err := os.Stat(tpl.RootFS); tpl.RootFS == "" || err != nil {
		return nil, nil, domain.Errorf(domain.KindConflict, "the root filesystem of template %s that snapshot %s was taken on is gone from this node; the snapshot can no longer be restored: delete it", snap.TemplateID, snap.ID)
	}
	timeout, err := resolveTimeout(req.Timeout, s.cfg.DefaultTimeout, s.cfg.MaxTimeout)
	if err != nil {
		return nil, nil, err
	}
	drv, err := checkRequest(&s.cfg, team, req, snap.RuntimeName)
	if err != nil {
		return nil, nil, err
	}
	env := maps.Clone(snap.Env)
	if len(req.Env) > 0 {
		if env == nil {
			env = map[string]string{}
		}
		maps.Copy(env, req.Env)
	}
	internet := snap.Internet
	if req.Internet != nil {
		internet = *req.Internet
	}
	network, err := requestedNetwork(req, snap.Network)
	if err != nil {
		return nil, nil, err
	}
	now := s.cfg.Now().UTC()
	return &domain.Sandbox{
		ID: domain.NewID(20), TeamID: p.TeamID, TemplateID: snap.TemplateID, State: domain.StateStarting,
		Metadata: req.Metadata, Env: env, Limits: snap.Limits, Internet: internet, Network: network,
		RuntimeName: drv.Capabilities().Name, AccessToken: newToken(), TrafficToken: trafficToken(req.AllowPublicTraffic),
		CreatedAt: now, EndsAt: now.Add(timeout), Lifecycle: req.Lifecycle,
	}, tpl, nil
}

// sameLimits refuses asked limits that differ from a snapshot's (zero fields ask for
// nothing): the restored memory was laid out for the snapshot's.
func sameLimits(asked, snap domain.Limits) error {
	differs := func(a, b float64) bool { return a != 0 && a != b }
	if differs(asked.CPUCores, snap.CPUCores) || differs(float64(asked.MemoryMB), float64(snap.MemoryMB)) ||
		differs(float64(asked.DiskMB), float64(snap.DiskMB)) || differs(float64(asked.MaxProcesses), float64(snap.MaxProcesses)) {
		return domain.Invalid("limits", "a sandbox started from a snapshot has the snapshot's limits (cpu_cores %s, memory_mb %d, disk_mb %d, max_processes %d): leave limits out",
			trim(snap.CPUCores), snap.MemoryMB, snap.DiskMB, snap.MaxProcesses)
	}
	return nil
}
