package egress

import (
	"fmt"
	"sort"
	"testing"
	"time"
)

// BenchmarkEgressHTTP measures what the proxy adds to a connection: the p50 of one
// HTTP request on a new connection from a sandbox namespace to a fake host, direct
// (no policy: forwarded by nftables) and through the proxy (a policy allowing the
// name), in one run, and reports both and their ratio.
func BenchmarkEgressHTTP(b *testing.B) {
	f := newFakeNet(b, 202, 1, map[string]string{"allowed.test": "198.18.202.2"})
	n := newNode(b, f.dnsAt, 2)
	const web = "198.18.202.2:80"
	measure := func(k int) []time.Duration {
		var ds []time.Duration
		for i := 0; i < k; i++ {
			start := time.Now()
			code, _, err := n.cl.get(web, "allowed.test")
			if err != nil || code != 200 {
				b.Fatalf("request %d: %d %v", i, code, err)
			}
			ds = append(ds, time.Since(start))
		}
		return ds
	}
	p50 := func(ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	k := max(b.N, 200)
	b.ResetTimer()
	direct := measure(k)
	n.apply(b, []string{"allowed.test"}, []string{"0.0.0.0/0"})
	measure(5) // the proxy's name cache is filled by the first request
	proxied := measure(k)
	b.StopTimer()
	d, p := p50(direct), p50(proxied)
	b.ReportMetric(float64(d.Microseconds()), "p50-direct-µs")
	b.ReportMetric(float64(p.Microseconds()), "p50-proxied-µs")
	b.ReportMetric(float64(p)/float64(d), "ratio")
	b.Log(fmt.Sprintf("%d requests each: p50 direct %v, through the proxy %v (ratio %.2f, +%v per connection)", k, d, p, float64(p)/float64(d), p-d))
}
