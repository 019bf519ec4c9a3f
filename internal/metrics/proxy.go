package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Proxy records the sandbox proxy's requests and the bytes it carries (proxy.Metrics).
type Proxy struct {
	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
}

func newProxy(m *Metrics) *Proxy {
	return &Proxy{
		requests: m.counterVec("warren_proxy_requests_total", "Requests through the sandbox proxy by status code.", "code"),
		bytes:    m.counterVec("warren_proxy_bytes_total", "Bytes through the sandbox proxy: in (from clients to sandboxes) and out.", "direction"),
	}
}

// Request counts one proxied request that ended with status.
func (p *Proxy) Request(status int) { p.requests.WithLabelValues(strconv.Itoa(status)).Inc() }

// Bytes adds in bytes carried to a sandbox and out bytes carried back.
func (p *Proxy) Bytes(in, out int64) {
	if in > 0 {
		p.bytes.WithLabelValues("in").Add(float64(in))
	}
	if out > 0 {
		p.bytes.WithLabelValues("out").Add(float64(out))
	}
}
