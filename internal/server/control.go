package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/billing"
	"github.com/warren-sh/warren/internal/cluster"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/ledger"
	"github.com/warren-sh/warren/internal/metrics"
	"github.com/warren-sh/warren/internal/templates"
)

// runControl serves a control replica (--role control): the APIs, the console and the
// sandbox proxy, reading the shared database and forwarding what acts on sandboxes
// (and creates, placed on a node, and template builds) to the nodes. It runs no
// sandbox, builds nothing and holds nothing a restart would lose: any number of
// replicas serve one cluster.
func runControl(ctx context.Context, c Config, out io.Writer, log *slog.Logger, mx *metrics.Metrics, store domain.Store, catalog *billing.Catalog) error {
	s := &services{metrics: mx, usage: store, locks: store, log: log, control: cluster.NewSandboxes(store),
		controlSnaps: cluster.NewSnapshots(store)}
	var err error
	if s.ledger, err = ledger.New(store, catalog, nil, log); err != nil {
		return err
	}
	mon, err := cluster.NewMonitor(store, "", c.NodeTimeout, nil, log)
	if err != nil {
		return err
	}
	mon.WithProbe(probeNode)
	s.nodes = &nodeParts{monitor: mon, service: cluster.NewNodes(store), every: min(cluster.DefaultHeartbeat, c.NodeTimeout/3)}
	// The node table names the runtimes the cluster offers (team settings are checked
	// against them); a control on a cluster without nodes yet accepts the known ones.
	if err := s.startShared(c, store, catalog, clusterRuntimes(ctx, store), log); err != nil {
		return err
	}
	defer s.closeLimiter()
	defer s.forward.Close()
	// Templates are read and deleted here; builds go to the build node (forwarded).
	if s.templates, err = templates.New(templates.Config{Store: store, Images: NewImagePuller(c, log, nil), FilesDir: filepath.Join(c.DataDir, "template-files"),
		MaxLimits: c.MaxLimits, Log: log}); err != nil {
		return err
	}
	defer s.templates.Close()
	ls, err := listen(c, s, log)
	if err != nil {
		return err
	}
	bg, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	// The monitor (one server at a time) marks silent nodes down; template storage is
	// booked by one server at a time too.
	go func() { defer wg.Done(); mon.Run(bg, s.nodes.every) }()
	go func() {
		defer wg.Done()
		cluster.Singleton(bg, s.locks, "template-storage-meter", time.Minute, func(ctx context.Context) error {
			return s.templates.MeterStorage(ctx, s.usage, time.Now())
		}, log)
	}()
	defer func() { cancel(); wg.Wait() }()
	s.ready.Store(true)
	fmt.Fprintf(out, "warren (--role control) is serving %s; sandboxes run on the nodes\n", ls.addrs(c))
	if err := ls.wait(ctx, out, log); err != nil {
		return err
	}
	shutCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	ls.drain(shutCtx)
	return nil
}

// clusterRuntimes are the runtimes the nodes offer; every known runtime while none is
// registered.
func clusterRuntimes(ctx context.Context, store domain.NodeStore) []string {
	nodes, err := store.ListNodes(ctx)
	seen := map[string]bool{}
	var out []string
	if err == nil {
		for _, n := range nodes {
			for _, r := range n.Runtimes {
				if !seen[r] {
					seen[r] = true
					out = append(out, r)
				}
			}
		}
	}
	if len(out) == 0 {
		return []string{"gvisor", "runc", "microvm"}
	}
	return out
}
