package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	goruntime "runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/cluster"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// nodeParts are this server's part of the node table: its registrar (its row, its
// heartbeat, its admission), the monitor of the other nodes and the admins' service.
type nodeParts struct {
	registrar *cluster.Registrar
	monitor   *cluster.Monitor
	service   *cluster.Nodes
	// every is how often the node heartbeats and the monitor checks.
	every time.Duration
}

// newNodeParts builds the node's registrar, monitor and service. The registrar reads
// its figures from s at each heartbeat (s.sandboxes is set before the first).
func newNodeParts(c Config, store domain.Store, h *host, s *services, log *slog.Logger) (*nodeParts, error) {
	every := min(cluster.DefaultHeartbeat, c.NodeTimeout/3)
	reg, err := cluster.NewRegistrar(cluster.RegistrarConfig{Store: store, Name: c.NodeName, Address: c.Advertise,
		Runtimes: h.runtimes, Measure: measureNode(c, store, h, s), Interval: every, Log: log,
		Back: func(ctx context.Context) {
			if n := s.sandboxes.sweeper.DropEnded(ctx); n > 0 {
				log.Warn("stopped the sandboxes marked lost while this node was down", logkey.Node, c.NodeName, "count", n)
			}
		}})
	if err != nil {
		return nil, err
	}
	mon, err := cluster.NewMonitor(store, c.NodeName, c.NodeTimeout, nil, log)
	if err != nil {
		return nil, err
	}
	mon.WithProbe(probeNode)
	return &nodeParts{registrar: reg, monitor: mon, service: cluster.NewNodes(store), every: every}, nil
}

// measureNode returns the registrar's Measure: the host's cores, memory and the data
// directory's disk, the node's slots, and what the running sandboxes and warm pool
// members hold of them.
func measureNode(c Config, store domain.Store, h *host, s *services) func(context.Context, *domain.Node) {
	cores := float64(goruntime.NumCPU())
	return func(ctx context.Context, n *domain.Node) {
		n.Capacity = domain.NodeCapacity{CPUCores: cores, Slots: h.node.Slots()}
		n.Free = n.Capacity
		if total, avail, err := readMemory(); err == nil {
			n.Capacity.MemoryMB, n.Free.MemoryMB = total>>20, avail>>20
		}
		var st unix.Statfs_t
		if err := unix.Statfs(c.DataDir, &st); err == nil {
			n.Capacity.DiskMB = int64(st.Blocks) * st.Bsize >> 20
			n.Free.DiskMB = int64(st.Bavail) * st.Bsize >> 20
		}
		n.Templates = localTemplates(ctx, store)
		sbs := s.sandboxes
		if sbs == nil {
			return
		}
		rows, _ := sbs.service.Running(ctx)
		for _, sb := range rows {
			n.Free.CPUCores -= sb.Limits.CPUCores
		}
		n.Free.CPUCores = max(0, n.Free.CPUCores)
		n.Sandboxes = sbs.service.Live()
		held := n.Sandboxes
		n.WarmPools = map[string]int{}
		if sbs.pool != nil {
			pools, _ := sbs.pool.Pools(ctx, domain.Principal{Admin: true})
			for _, p := range pools {
				n.WarmPools[p.TemplateID] = p.Ready
				held += p.Ready + p.Starting
			}
		}
		n.Free.Slots = max(0, n.Free.Slots-held)
	}
}

// localTemplates are the ready templates (built-ins and teams' own, by id) whose root
// filesystem is on this node's disk: placement sends a create only to a node that has
// its template (a team template is built on the build node alone, unless the nodes
// share the template cache).
func localTemplates(ctx context.Context, store domain.TemplateStore) []string {
	tpls, err := store.ListTemplates(ctx, domain.AnyTeam)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, t := range tpls {
		if !t.Ready || t.RootFS == "" || seen[t.ID] {
			continue
		}
		if _, err := os.Stat(t.RootFS); err == nil {
			seen[t.ID] = true
			out = append(out, t.ID)
		}
	}
	return out
}

// probeNode asks a node whose heartbeat is late whether it is alive: its advertised
// address answers GET /healthz with 200 (a node's internal listener and a lone
// server's API both serve it without credentials).
func probeNode(ctx context.Context, n *domain.Node) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.Address+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /healthz answered %d", resp.StatusCode)
	}
	return nil
}
