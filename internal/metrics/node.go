package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// This file holds the metrics read at each scrape from the server's state: the warm
// pools, the node's capacity and use, and the metering loop's lag.

// PoolCount is one warm pool's state and counters, as the pool reports them.
type PoolCount struct {
	Template      string
	Ready, Target int
	// Claims and Misses count since the server started.
	Claims, Misses int64
}

// NodeFigures are the node's capacity and use by resource (cpu_cores, memory_bytes,
// disk_bytes, slots).
type NodeFigures struct {
	Capacity, Used map[string]float64
}

// scraped are the collectors of this file, each reading a function set once wiring
// is done (nil: it reports nothing).
type scraped struct {
	pools    atomic.Pointer[func() []PoolCount]
	node     atomic.Pointer[func() NodeFigures]
	lastTick atomic.Pointer[func() time.Time]

	poolSize, poolClaims, capacity, used, lag *prometheus.Desc
}

func newScraped(m *Metrics) *scraped {
	s := &scraped{
		poolSize:   prometheus.NewDesc("warren_pool_size", "Warm pool members by template: ready now, and the target size.", []string{"template", "state"}, nil),
		poolClaims: prometheus.NewDesc("warren_pool_claims_total", "Creates of a pooled template: served by a member (hit) or started otherwise (miss).", []string{"template", "result"}, nil),
		capacity:   prometheus.NewDesc("warren_node_capacity", "The node's capacity by resource: cpu_cores, memory_bytes, disk_bytes (the data directory's file system), slots (sandbox addresses).", []string{"resource"}, nil),
		used:       prometheus.NewDesc("warren_node_used", "What the node uses of each resource: CPU cores allotted to running sandboxes, memory and disk in use on the host, slots held.", []string{"resource"}, nil),
		lag:        prometheus.NewDesc("warren_metering_lag_seconds", "Time since the metering loop last completed a tick.", nil, nil),
	}
	m.reg.MustRegister(s)
	return s
}

// Describe implements prometheus.Collector.
func (s *scraped) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.poolSize, s.poolClaims, s.capacity, s.used, s.lag} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *scraped) Collect(ch chan<- prometheus.Metric) {
	if f := s.pools.Load(); f != nil {
		for _, p := range (*f)() {
			ch <- prometheus.MustNewConstMetric(s.poolSize, prometheus.GaugeValue, float64(p.Ready), p.Template, "ready")
			ch <- prometheus.MustNewConstMetric(s.poolSize, prometheus.GaugeValue, float64(p.Target), p.Template, "target")
			ch <- prometheus.MustNewConstMetric(s.poolClaims, prometheus.CounterValue, float64(p.Claims), p.Template, "hit")
			ch <- prometheus.MustNewConstMetric(s.poolClaims, prometheus.CounterValue, float64(p.Misses), p.Template, "miss")
		}
	}
	if f := s.node.Load(); f != nil {
		n := (*f)()
		for r, v := range n.Capacity {
			ch <- prometheus.MustNewConstMetric(s.capacity, prometheus.GaugeValue, v, r)
		}
		for r, v := range n.Used {
			ch <- prometheus.MustNewConstMetric(s.used, prometheus.GaugeValue, v, r)
		}
	}
	if f := s.lastTick.Load(); f != nil {
		if at := (*f)(); !at.IsZero() {
			ch <- prometheus.MustNewConstMetric(s.lag, prometheus.GaugeValue, time.Since(at).Seconds())
		}
	}
}

// Pools makes warren_pool_size and warren_pool_claims_total report what pools returns
// at each scrape.
func (m *Metrics) Pools(pools func() []PoolCount) { m.scraped.pools.Store(&pools) }

// Node makes warren_node_capacity and warren_node_used report what figures returns at
// each scrape.
func (m *Metrics) Node(figures func() NodeFigures) { m.scraped.node.Store(&figures) }

// MeteringLag makes warren_metering_lag_seconds the time since lastTick() (zero: no
// tick yet, nothing reported).
func (m *Metrics) MeteringLag(lastTick func() time.Time) { m.scraped.lastTick.Store(&lastTick) }
