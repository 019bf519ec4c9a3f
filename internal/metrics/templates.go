package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Templates records template builds and the template cache.
type Templates struct {
	builds *prometheus.HistogramVec
	cache  *prometheus.CounterVec
}

func newTemplates(m *Metrics) *Templates {
	return &Templates{
		builds: m.histogramVec("warren_template_build_duration_seconds", "Template root filesystem builds by template and outcome.",
			[]float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800}, "template", "outcome"),
		cache: m.counterVec("warren_template_cache_total", "Template root filesystems found in the cache (hit) or built (miss).", "result"),
	}
}

// Built records a build of template that took d. A nil Templates records nothing.
func (t *Templates) Built(template string, d time.Duration, ok bool) {
	if t == nil {
		return
	}
	outcome := "ok"
	if !ok {
		outcome = "error"
	}
	t.builds.WithLabelValues(template, outcome).Observe(d.Seconds())
}

// Cache counts a cache lookup: hit, or a miss that needs a build. A nil Templates
// records nothing.
func (t *Templates) Cache(hit bool) {
	if t == nil {
		return
	}
	if hit {
		t.cache.WithLabelValues("hit").Inc()
	} else {
		t.cache.WithLabelValues("miss").Inc()
	}
}
