package server

import (
	"context"
	"log/slog"
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
		if tpls, err := store.ListTemplates(ctx, ""); err == nil {
			for _, t := range tpls {
				if t.Ready {
					n.Templates = append(n.Templates, t.ID)
				}
			}
		}
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
