package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/metrics"
	"github.com/warren-sh/warren/internal/sandbox"
)

// This file wires the Prometheus metrics (package metrics) into the server: the
// registry, its listener, and what the metrics read at each scrape.

// newMetrics returns the server's metrics, or nil when they are off (--metrics-listen "").
func newMetrics(c Config) *metrics.Metrics {
	if c.MetricsListen == "" {
		return nil
	}
	return metrics.New(metrics.Options{Version: c.Version, TeamLabels: c.MetricsTeamLabels})
}

// metricsServer serves GET /metrics of mx, without authentication, on its own
// listener: scrapes never meet the API's rate limits or keys.
func metricsServer(mx *metrics.Metrics, c Config) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", mx.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not found: Prometheus metrics are at GET /metrics", http.StatusNotFound)
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: c.IdleTimeout}
}

// watch makes the metrics read the sandboxes' census at each scrape.
func (s *services) watch(log *slog.Logger) {
	if s.metrics == nil {
		return
	}
	svc := s.sandboxes.service
	s.metrics.Sandboxes().Watch(func(ctx context.Context) ([]metrics.SandboxCount, error) {
		counts, err := sandbox.Census(ctx, svc)
		if err != nil {
			return nil, err
		}
		out := make([]metrics.SandboxCount, len(counts))
		for i, n := range counts {
			out[i] = metrics.SandboxCount{State: string(n.State), Template: n.TemplateID, Runtime: n.Runtime, TeamID: n.Team, N: n.N}
		}
		return out, nil
	}, log)
}

// watchHost makes the metrics read the warm pools, the node's capacity and use, and
// the metering loop's last tick at each scrape.
func (s *services) watchHost(c Config, h *host) {
	if s.metrics == nil {
		return
	}
	svc, pool := s.sandboxes.service, s.sandboxes.pool
	admin := domain.Principal{Admin: true}
	poolStats := func() []domain.PoolStats {
		if pool == nil {
			return nil
		}
		st, _ := pool.Pools(context.Background(), admin)
		return st
	}
	if pool != nil {
		s.metrics.Pools(func() []metrics.PoolCount {
			var out []metrics.PoolCount
			for _, p := range poolStats() {
				out = append(out, metrics.PoolCount{Template: p.TemplateID, Ready: p.Ready, Target: p.Size, Claims: p.Claims, Misses: p.Misses})
			}
			return out
		})
	}
	cores := float64(goruntime.NumCPU())
	s.metrics.Node(func() metrics.NodeFigures {
		f := metrics.NodeFigures{
			Capacity: map[string]float64{"cpu_cores": cores, "slots": float64(h.node.Slots())},
			Used:     map[string]float64{},
		}
		var allotted float64
		rows, _ := svc.Running(context.Background())
		for _, sb := range rows {
			allotted += sb.Limits.CPUCores
		}
		f.Used["cpu_cores"] = allotted
		held := svc.Live()
		for _, p := range poolStats() {
			held += p.Ready + p.Starting
		}
		f.Used["slots"] = float64(held)
		if total, avail, err := readMemory(); err == nil {
			f.Capacity["memory_bytes"], f.Used["memory_bytes"] = float64(total), float64(total-avail)
		}
		var st unix.Statfs_t
		if err := unix.Statfs(c.DataDir, &st); err == nil {
			f.Capacity["disk_bytes"] = float64(st.Blocks) * float64(st.Bsize)
			f.Used["disk_bytes"] = float64(st.Blocks-st.Bfree) * float64(st.Bsize)
		}
		return f
	})
	s.metrics.MeteringLag(s.meter.LastTick)
}

// readMemory reads MemTotal and MemAvailable from /proc/meminfo, in bytes.
func readMemory() (total, avail int64, err error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "MemTotal:":
			total = kb << 10
		case "MemAvailable:":
			avail = kb << 10
		}
	}
	if total == 0 {
		return 0, 0, errors.New("/proc/meminfo has no MemTotal")
	}
	return total, avail, nil
}
