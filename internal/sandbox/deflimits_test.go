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
