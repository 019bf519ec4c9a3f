package template

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAptMirror(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"deb822 main suite", map[string]string{"sources.list.d/debian.sources": "Types: deb\n# comment: http://snapshot/\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"}, "http://mirror.example/debian"},
		{"security and backports only", map[string]string{"sources.list.d/a.sources": "Types: deb\nURIs: http://x/debian-security\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://y/debian\nSuites: bookworm-backports\n"}, ""},
		{"one-line with options", map[string]string{"sources.list": "# deb http://old/debian bookworm main\ndeb [signed-by=/k.gpg arch=amd64] http://local:3142/debian bookworm main\n"}, "http://local:3142/debian"},
		{"deb-src and disabled ignored", map[string]string{"sources.list": "deb-src http://src/debian bookworm main\n", "sources.list.d/b.sources": "Enabled: no\nTypes: deb\nURIs: http://off/debian\nSuites: bookworm\n"}, ""},
		{"cdrom and file URIs ignored", map[string]string{"sources.list": "deb cdrom:[Debian]/ bookworm main\ndeb file:///srv/debian bookworm main\ndeb https://ok/debian stable main\n"}, "https://ok/debian"},
		{"nothing", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for p, c := range tc.files {
				full := filepath.Join(dir, p)
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := aptMirror(dir); got != tc.want {
				t.Errorf("aptMirror = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMirrorChoice(t *testing.T) {
	t.Setenv("WARREN_APT_MIRROR", "http://env.example/debian/")
	if got := Mirror(); got != "http://env.example/debian" {
		t.Errorf("with WARREN_APT_MIRROR: %q", got)
	}
	SetMirror("http://flag.example/debian")
	defer SetMirror("")
	if got := Mirror(); got != "http://flag.example/debian" {
		t.Errorf("with SetMirror: %q", got)
	}
	if got := Base().Mirror; got != "http://flag.example/debian" {
		t.Errorf("Base().Mirror = %q, want the chosen mirror", got)
	}
	if a, b := Base().Hash(), CodeInterpreter().Hash(); a == b {
		t.Error("base and code-interpreter hash alike")
	}
}
