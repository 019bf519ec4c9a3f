package sandbox

import (
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

// TestDefaultLimits: a template's own default memory applies when it is more than the
// server's default, capped at the server's maximum; other limits and templates keep
// the server's defaults.
func TestDefaultLimits(t *testing.T) {
	def := domain.Limits{CPUCores: 1, MemoryMB: 512, DiskMB: 2048, MaxProcesses: 256}
	for _, tc := range []struct {
		name   string
		tpl    string
		perTpl map[string]int64
		maxMB  int64
		wantMB int64
	}{
		{"no template memory", "browser", nil, 4096, 512},
		{"other template", "base", map[string]int64{"browser": 1024}, 4096, 512},
		{"raised", "browser", map[string]int64{"browser": 1024}, 4096, 1024},
		{"no maximum", "browser", map[string]int64{"browser": 1024}, 0, 1024},
		{"capped at the maximum", "browser", map[string]int64{"browser": 1024}, 768, 768},
		{"maximum below the default", "browser", map[string]int64{"browser": 1024}, 256, 512},
		{"never lowered", "browser", map[string]int64{"browser": 128}, 4096, 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{DefaultLimits: def, MaxLimits: domain.Limits{MemoryMB: tc.maxMB}, TemplateMemoryMB: tc.perTpl}
			got := c.defaultLimits(tc.tpl)
			want := def
			want.MemoryMB = tc.wantMB
			if got != want {
				t.Errorf("defaultLimits(%q) = %+v, want %+v", tc.tpl, got, want)
			}
		})
	}
}

// TestTemplateLimits: a team's template's own CPU cores and memory replace the server's
// defaults (lower too), capped at the maxima; a built-in keeps defaultLimits, and a team
// template named like a built-in does not get the built-in's memory.
func TestTemplateLimits(t *testing.T) {
	def := domain.Limits{CPUCores: 1, MemoryMB: 512, DiskMB: 2048, MaxProcesses: 256}
	c := Config{DefaultLimits: def, MaxLimits: domain.Limits{CPUCores: 4, MemoryMB: 4096}, TemplateMemoryMB: map[string]int64{"browser": 1024}}
	with := func(cpu float64, mb int64) domain.Limits {
		l := def
		l.CPUCores, l.MemoryMB = cpu, mb
		return l
	}
	for _, tc := range []struct {
		name string
		tpl  domain.Template
		want domain.Limits
	}{
		{"built-in", domain.Template{ID: "browser"}, with(1, 1024)},
		{"team template without limits", domain.Template{ID: "browser", TeamID: "t"}, def},
		{"team template", domain.Template{ID: "app", TeamID: "t", Limits: domain.Limits{CPUCores: 2, MemoryMB: 2048}}, with(2, 2048)},
		{"lower than the defaults", domain.Template{ID: "app", TeamID: "t", Limits: domain.Limits{CPUCores: 0.5, MemoryMB: 256}}, with(0.5, 256)},
		{"memory only", domain.Template{ID: "app", TeamID: "t", Limits: domain.Limits{MemoryMB: 768}}, with(1, 768)},
		{"capped at the maxima", domain.Template{ID: "app", TeamID: "t", Limits: domain.Limits{CPUCores: 8, MemoryMB: 8192}}, with(4, 4096)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.templateLimits(&tc.tpl); got != tc.want {
				t.Errorf("templateLimits(%+v) = %+v, want %+v", tc.tpl, got, tc.want)
			}
		})
	}
}
