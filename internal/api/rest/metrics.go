package rest

import (
	"fmt"
	"net/http"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

type metricsJSON struct {
	Timestamp  time.Time `json:"timestamp"`
	CPUCount   int       `json:"cpu_count"`
	CPUUsedPct float64   `json:"cpu_used_pct"`
	MemUsed    int64     `json:"mem_used"`
	MemTotal   int64     `json:"mem_total"`
	DiskUsed   int64     `json:"disk_used"`
	DiskTotal  int64     `json:"disk_total"`
}

func toMetricsJSON(m *domain.SandboxMetrics) metricsJSON {
	return metricsJSON{Timestamp: m.Timestamp.UTC(), CPUCount: m.CPUCount, CPUUsedPct: m.CPUUsedPct,
		MemUsed: m.MemUsed, MemTotal: m.MemTotal, DiskUsed: m.DiskUsed, DiskTotal: m.DiskTotal}
}

// metrics answers the sandbox's current CPU, memory and disk use, read inside it.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	p, id, err := edge.SandboxTarget(r)
	if err != nil {
		return err
	}
	m, err := s.svc.Metrics(r.Context(), p, id)
	if err != nil {
		return err
	}
	if m == nil {
		return fmt.Errorf("metrics of sandbox %s: service returned none", id)
	}
	s.edge.WriteJSON(w, r, http.StatusOK, toMetricsJSON(m))
	return nil
}
