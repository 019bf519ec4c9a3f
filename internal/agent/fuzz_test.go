package agent

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzResolvePath feeds request paths (and working directories) to resolvePath: the
// result is always absolute and clean, "~" paths land under the home, and relative
// paths under the working directory (or the home).
func FuzzResolvePath(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""}, {"~", ""}, {"~/a/../../etc", ""}, {"../../etc/passwd", "/tmp"}, {"/a//b/./c/..", ""},
		{"a\x00b", "/w"}, {"~user/x", ""}, {".", "relative/wd"}, {"~/", "/x"},
	} {
		f.Add(s[0], s[1])
	}
	u := &User{Name: "user", UID: 1000, GID: 1000, Home: "/home/user"}
	f.Fuzz(func(t *testing.T, p, workdir string) {
		if workdir != "" && !filepath.IsAbs(workdir) {
			workdir = "/" + workdir // the agent's working directories are absolute
		}
		got := resolvePath(p, u, workdir)
		if !filepath.IsAbs(got) || filepath.Clean(got) != got {
			t.Fatalf("resolvePath(%q, %q) = %q: not a clean absolute path", p, workdir, got)
		}
		base := filepath.Clean(workdir)
		if workdir == "" {
			base = u.Home
		}
		switch {
		case p == "~" || p == "~/":
			if got != u.Home {
				t.Fatalf("resolvePath(%q) = %q, want the home", p, got)
			}
		case filepath.IsAbs(p):
			if got != filepath.Clean(p) {
				t.Fatalf("resolvePath(%q) = %q, want %q", p, got, filepath.Clean(p))
			}
		case strings.HasPrefix(p, "~/"):
			if want := filepath.Join(u.Home, p[2:]); got != want {
				t.Fatalf("resolvePath(%q) = %q, want %q", p, got, want)
			}
		default:
			if want := filepath.Join(base, p); got != want {
				t.Fatalf("resolvePath(%q, %q) = %q, want %q", p, workdir, got, want)
			}
		}
	})
}

// FuzzMetadataHeaders feeds upload metadata headers: accepted keys and values are
// printable ASCII with lower-case, non-empty keys; anything else is a clear refusal.
func FuzzMetadataHeaders(f *testing.F) {
	for _, s := range [][2]string{{"X-Metadata-Owner", "me"}, {"x-metadata-", "v"}, {"X-Metadata-K", "\x7f"}, {"Other", "x"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		h := http.Header{}
		h[name] = []string{value}
		md, err := metadataHeaders(h)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("refusal with an empty message")
			}
			return
		}
		for k, v := range md {
			if k == "" || k != strings.ToLower(k) {
				t.Fatalf("accepted key %q", k)
			}
			for _, c := range k + v {
				if c < 0x20 || c > 0x7e {
					t.Fatalf("accepted non-printable metadata %q=%q", k, v)
				}
			}
		}
	})
}
