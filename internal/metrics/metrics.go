// Package metrics is Warren's Prometheus instrumentation: one Registry per server (never
// the global default), holding the Go and process collectors, warren_build_info and the
// warren_* metrics of docs/ARCHITECTURE.md (Metrics). It is the only package that
// imports prometheus/client_golang: the packages it measures declare small recorder
// interfaces of their own (sandbox.Recorder, edge.Metrics, proxy.Metrics, ...), which
// the types here implement, and the server wires them together. With metrics off the
// server hands them nothing and they record nothing.
//
// No label ever takes a sandbox id or a raw path. The per-team label (team) exists only
// when Options.TeamLabels is set, on warren_sandboxes, warren_sandbox_creates_total,
// warren_http_requests_total and warren_refusals_total.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configures a Metrics.
type Options struct {
	// Version is reported by warren_build_info.
	Version string
	// TeamLabels adds the team label where it is allowed (--metrics-team-labels). Off by
	// default: every team then multiplies those series.
	TeamLabels bool
}

// Metrics holds one server's registry and its metrics. Create it with New; it is safe
// for concurrent use.
type Metrics struct {
	reg        *prometheus.Registry
	teamLabels bool

	sandboxes *Sandboxes
	http      *httpMetrics
	proxy     *Proxy
	egress    *Egress
	refusals  *prometheus.CounterVec
	templates *Templates
	store     *Store
	scraped   *scraped
}

// createBuckets span 5 ms (a warm claim) to 30 s (a cold start on a busy host).
var createBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30}

// New returns a Metrics with a fresh registry holding the Go, process and build
// collectors and every warren_* metric.
func New(o Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), teamLabels: o.TeamLabels}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	version := o.Version
	if version == "" {
		version = "unknown"
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "warren_build_info", Help: "Always 1; the version label names the running warren.",
		ConstLabels: prometheus.Labels{"version": version},
	}, func() float64 { return 1 }))
	m.sandboxes = newSandboxes(m)
	m.http = newHTTP(m)
	m.proxy = newProxy(m)
	m.egress = newEgress(m)
	m.refusals = m.counterVec("warren_refusals_total", "Requests refused by a rate limit, a quota or node admission.",
		m.withTeam("kind", "reason")...)
	m.templates = newTemplates(m)
	m.store = newStore(m)
	m.scraped = newScraped(m)
	return m
}

// Handler serves the registry in the Prometheus exposition formats (GET /metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
}

// Gatherer is the registry, for tests and for other packages that register their
// collectors on it.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Register adds a collector of another package (the egress decisions) to the registry.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// Sandboxes is the sandbox services' recorder (sandbox.Recorder).
func (m *Metrics) Sandboxes() *Sandboxes { return m.sandboxes }

// Proxy is the sandbox proxy's recorder (proxy.Metrics).
func (m *Metrics) Proxy() *Proxy { return m.proxy }

// Egress is the egress proxy's and resolver's recorder (egress.Recorder).
func (m *Metrics) Egress() *Egress { return m.egress }

// Templates is the template builds' recorder; nil (recording nothing) for a nil m.
func (m *Metrics) Templates() *Templates {
	if m == nil {
		return nil
	}
	return m.templates
}

// Store is the store's recorder (its query durations).
func (m *Metrics) Store() *Store { return m.store }

// Refused counts a refusal: kind rate_limit, quota or admission; reason what ran out
// (requests_per_minute, sandboxes, cores, memory, node_full...). teamID is used only
// with team labels.
func (m *Metrics) Refused(kind, reason, teamID string) {
	m.refusals.WithLabelValues(m.teamValues(teamID, kind, reason)...).Inc()
}

// withTeam returns labels, with team appended when team labels are on.
func (m *Metrics) withTeam(labels ...string) []string {
	if m.teamLabels {
		return append(labels, "team")
	}
	return labels
}

// teamValues returns values, with the team appended when team labels are on.
func (m *Metrics) teamValues(teamID string, values ...string) []string {
	if m.teamLabels {
		if teamID == "" {
			teamID = "none"
		}
		return append(values, teamID)
	}
	return values
}

func (m *Metrics) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	m.reg.MustRegister(c)
	return c
}

func (m *Metrics) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	m.reg.MustRegister(h)
	return h
}

func (m *Metrics) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	m.reg.MustRegister(g)
	return g
}
