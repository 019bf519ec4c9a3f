package template

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// The Debian mirror templates are built from when a recipe names none: the operator's
// choice (SetMirror, from `warren serve --apt-mirror` or WARREN_APT_MIRROR), else the
// mirror the host's own apt uses (a host behind a local mirror or proxy builds through
// it too), else DefaultMirror.
var (
	mirrorMu       sync.Mutex
	chosenMirror   string
	hostMirrorOnce sync.Once
	hostMirror     string
)

// SetMirror makes url the mirror for recipes that name none ("" restores the default
// resolution). Call it before building or hashing recipes.
func SetMirror(url string) {
	mirrorMu.Lock()
	defer mirrorMu.Unlock()
	chosenMirror = strings.TrimRight(url, "/")
}

// Mirror returns the mirror recipes that name none are built from.
func Mirror() string {
	mirrorMu.Lock()
	m := chosenMirror
	mirrorMu.Unlock()
	if m != "" {
		return m
	}
	if env := strings.TrimRight(os.Getenv("WARREN_APT_MIRROR"), "/"); env != "" {
		return env
	}
	hostMirrorOnce.Do(func() { hostMirror = aptMirror("/etc/apt") })
	if hostMirror != "" {
		return hostMirror
	}
	return DefaultMirror
}

// aptMirror returns the first Debian archive URI in the apt sources under dir
// (sources.list and sources.list.d/*.list one-line entries, sources.list.d/*.sources
// deb822 stanzas) that serves a main suite (not -security, -updates or -backports), or "".
func aptMirror(dir string) string {
	files := []string{filepath.Join(dir, "sources.list")}
	more, _ := filepath.Glob(filepath.Join(dir, "sources.list.d", "*"))
	files = append(files, more...)
	for _, f := range files {
		var uri string
		switch {
		case strings.HasSuffix(f, ".sources"):
			uri = fromDeb822(f)
		case strings.HasSuffix(f, ".list") || filepath.Base(f) == "sources.list":
			uri = fromOneLine(f)
		}
		if uri != "" {
			return uri
		}
	}
	return ""
}

// mainSuite reports whether suite is a release's main suite ("bookworm", "stable").
func mainSuite(suite string) bool {
	return suite != "" && !strings.Contains(suite, "-") && !strings.Contains(suite, "/")
}

// usableURI keeps http(s) archive URIs that are not the security archive.
func usableURI(u string) bool {
	return (strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) && !strings.Contains(u, "security")
}

func fromOneLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "deb" {
			continue
		}
		rest := fields[1:]
		if strings.HasPrefix(rest[0], "[") { // options: deb [signed-by=...] URI suite ...
			for len(rest) > 0 && !strings.HasSuffix(rest[0], "]") {
				rest = rest[1:]
			}
			if len(rest) > 0 {
				rest = rest[1:]
			}
		}
		if len(rest) >= 2 && usableURI(rest[0]) && mainSuite(rest[1]) {
			return strings.TrimRight(rest[0], "/")
		}
	}
	return ""
}

func fromDeb822(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, stanza := range strings.Split(string(b), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if fields["enabled"] == "no" || !strings.Contains(" "+fields["types"]+" ", " deb ") {
			continue
		}
		var main bool
		for _, s := range strings.Fields(fields["suites"]) {
			main = main || mainSuite(s)
		}
		if !main {
			continue
		}
		for _, u := range strings.Fields(fields["uris"]) {
			if usableURI(u) {
				return strings.TrimRight(u, "/")
			}
		}
	}
	return ""
}
