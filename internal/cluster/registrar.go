package cluster

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// RegistrarStore is what a Registrar keeps in the store.
type RegistrarStore interface {
	UpsertNode(ctx context.Context, n *domain.Node) (wasDown bool, err error)
	GetNode(ctx context.Context, name string) (*domain.Node, error)
}

// RegistrarConfig configures a node's Registrar.
type RegistrarConfig struct {
	Store RegistrarStore
	// Name is the node's name; Address where control replicas reach it; Runtimes the
	// runtimes it offers.
	Name, Address string
	Runtimes      []string
	// Measure fills in the node's figures at each heartbeat: Capacity, Free, Sandboxes,
	// WarmPools and Templates.
	Measure func(ctx context.Context, n *domain.Node)
	// Back, when set, is called when a heartbeat finds that the monitor had marked the
	// node down: the node stops what it still runs of the sandboxes it lost.
	Back func(ctx context.Context)
	// Interval is the heartbeat period (DefaultHeartbeat).
	Interval time.Duration
	Now      func() time.Time
	Log      *slog.Logger
}

// Registrar writes this node's row and heartbeats it.
type Registrar struct {
	cfg     RegistrarConfig
	log     *slog.Logger
	started time.Time
}

// NewRegistrar returns the registrar of the node cfg describes.
func NewRegistrar(cfg RegistrarConfig) (*Registrar, error) {
	if cfg.Store == nil || cfg.Name == "" || cfg.Measure == nil {
		return nil, errors.New("cluster: a registrar needs a store, a node name and a Measure")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultHeartbeat
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Registrar{cfg: cfg, log: cfg.Log.With(logkey.Subsystem, "cluster", logkey.Node, cfg.Name), started: cfg.Now().UTC()}, nil
}

// Name is the node's name.
func (r *Registrar) Name() string { return r.cfg.Name }

// Heartbeat writes the node's report. The first one registers the node (it is ready,
// or stays draining); one that finds the node marked down brings it back to ready and
// calls Back.
func (r *Registrar) Heartbeat(ctx context.Context) error {
	n := &domain.Node{Name: r.cfg.Name, Address: r.cfg.Address, Runtimes: r.cfg.Runtimes,
		StartedAt: r.started, HeartbeatAt: r.cfg.Now().UTC()}
	r.cfg.Measure(ctx, n)
	wasDown, err := r.cfg.Store.UpsertNode(ctx, n)
	if err != nil {
		return err
	}
	if wasDown {
		r.log.WarnContext(ctx, "this node had been marked down (no heartbeat within the node timeout); it is ready again, and its sandboxes marked lost are stopped")
		if r.cfg.Back != nil {
			r.cfg.Back(ctx)
		}
	}
	return nil
}

// Run heartbeats every interval until ctx ends.
func (r *Registrar) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Heartbeat(ctx); err != nil && ctx.Err() == nil {
				r.log.WarnContext(ctx, "node heartbeat", logkey.Err, err)
			}
		}
	}
}

// Open is the node's admission (sandbox.Config.NodeOpen): a drained node takes no new
// sandboxes. It reads the node's row, so a drain through any server holds at once.
func (r *Registrar) Open(ctx context.Context) error {
	n, err := r.cfg.Store.GetNode(ctx, r.cfg.Name)
	if domain.IsKind(err, domain.KindNotFound) {
		return nil // not registered yet: nobody can have drained it
	}
	if err != nil {
		return err
	}
	if n.State == domain.NodeDraining {
		return domain.Errorf(domain.KindUnavailable, "node %q is draining and takes no new sandboxes (its sandboxes run to their end); undrain it with 'warren nodes undrain %s' (POST /v1/nodes/%s/undrain)",
			n.Name, n.Name, n.Name)
	}
	return nil
}
