package agent

import "testing"

func TestShellFor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cmd   string
		files []string
		want  string
	}{
		{"bash present", "/bin/bash", []string{"/bin/bash", "/bin/sh"}, "/bin/bash"},
		{"no bash, sh present", "/bin/bash", []string{"/bin/sh"}, "/bin/sh"},
		{"neither: bash, which fails naming it", "/bin/bash", nil, "/bin/bash"},
		{"other programs untouched", "/usr/bin/python3", []string{"/bin/sh"}, "/usr/bin/python3"},
		{"bash by name untouched", "bash", []string{"/bin/sh"}, "bash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exists := func(p string) bool {
				for _, f := range tc.files {
					if f == p {
						return true
					}
				}
				return false
			}
			if got := shellFor(tc.cmd, exists); got != tc.want {
				t.Errorf("shellFor(%q) = %q, want %q", tc.cmd, got, tc.want)
			}
		})
	}
}
