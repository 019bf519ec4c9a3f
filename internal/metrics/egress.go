package metrics

import "github.com/prometheus/client_golang/prometheus"

// Egress records the egress proxy's and resolver's decisions (egress.Recorder).
type Egress struct {
	decisions *prometheus.CounterVec
}

func newEgress(m *Metrics) *Egress {
	return &Egress{decisions: m.counterVec("warren_egress_decisions_total",
		"Egress policy decisions of the egress proxy and resolver, by action (allow, deny) and kind (sni, host, cidr, dns).", "action", "kind")}
}

// Decision counts one decision.
func (e *Egress) Decision(action, kind string) { e.decisions.WithLabelValues(action, kind).Inc() }
