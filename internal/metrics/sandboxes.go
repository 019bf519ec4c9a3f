package metrics

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-sh/warren/internal/logkey"
)

// SandboxCount is how many sandboxes are in one state with one template, runtime and
// team: a row of the census that warren_sandboxes reports at each scrape.
type SandboxCount struct {
	State, Template, Runtime, TeamID string
	N                                int
}

// Census returns the sandboxes of this node by state (starting, running, paused).
type Census func(ctx context.Context) ([]SandboxCount, error)

// Sandboxes records sandbox creates, starts, ends and lifecycle operations
// (sandbox.Recorder), and reports the census (Watch) as warren_sandboxes.
type Sandboxes struct {
	m         *Metrics
	creates   *prometheus.CounterVec
	createDur *prometheus.HistogramVec
	phases    *prometheus.HistogramVec
	kills     *prometheus.CounterVec
	lost      *prometheus.CounterVec
	lifecycle *prometheus.HistogramVec

	census atomic.Pointer[Census]
	log    atomic.Pointer[slog.Logger]
	gauge  *prometheus.Desc
}

func newSandboxes(m *Metrics) *Sandboxes {
	s := &Sandboxes{m: m,
		creates: m.counterVec("warren_sandbox_creates_total", "Sandbox creates by template, path (cold, warm: a pool claim, restore: a snapshot) and outcome (ok, error).",
			m.withTeam("template", "path", "outcome")...),
		createDur: m.histogramVec("warren_sandbox_create_duration_seconds", "Time from a create request's admission to its sandbox running, by template and path.",
			createBuckets, "template", "path"),
		phases: m.histogramVec("warren_sandbox_start_phase_duration_seconds", "Time of each phase of a sandbox start: prepare (root filesystem and network), runtime_start, agent_ready.",
			createBuckets, "phase", "runtime"),
		kills: m.counterVec("warren_sandbox_kills_total", "Sandboxes ended, by reason (request, timeout, shutdown, error, retention).", "reason"),
		lost:  m.counterVec("warren_sandboxes_lost_total", "Sandboxes that ended without being asked to, by reason.", "reason"),
		lifecycle: m.histogramVec("warren_sandbox_lifecycle_duration_seconds", "Duration of pause, resume, fork and snapshot, by outcome.",
			[]float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60}, "op", "outcome"),
		gauge: prometheus.NewDesc("warren_sandboxes", "Sandboxes on this node by state (starting, running, paused), template and runtime.",
			m.withTeam("state", "template", "runtime"), nil),
	}
	m.reg.MustRegister(s)
	return s
}

// Watch makes warren_sandboxes report what census returns at each scrape; log
// receives census errors.
func (s *Sandboxes) Watch(census Census, log *slog.Logger) {
	s.census.Store(&census)
	if log != nil {
		s.log.Store(log)
	}
}

// Describe implements prometheus.Collector for warren_sandboxes.
func (s *Sandboxes) Describe(ch chan<- *prometheus.Desc) { ch <- s.gauge }

// Collect implements prometheus.Collector: it takes the census (bounded to 5 s).
func (s *Sandboxes) Collect(ch chan<- prometheus.Metric) {
	c := s.census.Load()
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := (*c)(ctx)
	if err != nil {
		if log := s.log.Load(); log != nil {
			log.Warn("counting sandboxes for metrics", logkey.Err, err)
		}
		ch <- prometheus.NewInvalidMetric(s.gauge, err)
		return
	}
	sum := map[[4]string]int{}
	for _, n := range counts {
		k := [4]string{n.State, n.Template, n.Runtime, ""}
		if s.m.teamLabels {
			k[3] = n.TeamID
		}
		sum[k] += n.N
	}
	for k, n := range sum {
		ch <- prometheus.MustNewConstMetric(s.gauge, prometheus.GaugeValue, float64(n), s.m.teamValues(k[3], k[0], k[1], k[2])...)
	}
}

// Created records a create by path (cold, warm, restore): ok says whether it ended
// with a running sandbox; d, its duration, is observed only then.
func (s *Sandboxes) Created(template, path, teamID string, d time.Duration, ok bool) {
	outcome := "ok"
	if !ok {
		outcome = "error"
	}
	s.creates.WithLabelValues(s.m.teamValues(teamID, template, path, outcome)...).Inc()
	if ok {
		s.createDur.WithLabelValues(template, path).Observe(d.Seconds())
	}
}

// StartPhase records one phase of a start (prepare, runtime_start, agent_ready).
func (s *Sandboxes) StartPhase(phase, runtime string, d time.Duration) {
	s.phases.WithLabelValues(phase, runtime).Observe(d.Seconds())
}

// Killed counts a sandbox ended for reason (request, timeout, shutdown, error, retention).
func (s *Sandboxes) Killed(reason string) { s.kills.WithLabelValues(reason).Inc() }

// Lost counts a sandbox that ended by itself, for reason.
func (s *Sandboxes) Lost(reason string) { s.lost.WithLabelValues(reason).Inc() }

// Lifecycle records an operation (pause, resume, fork, snapshot) that took d.
func (s *Sandboxes) Lifecycle(op string, d time.Duration, ok bool) {
	outcome := "ok"
	if !ok {
		outcome = "error"
	}
	s.lifecycle.WithLabelValues(op, outcome).Observe(d.Seconds())
}
