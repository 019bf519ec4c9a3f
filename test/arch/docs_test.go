package arch

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// generated are paths that exist only after a build or a test run; citing them is fine.
var generated = []string{"web/dist", "web/node_modules", "bin/", "test-artifacts/", "test/e2b/node_modules", "test/console/node_modules"}

// generatedDocs are documents a test run writes (test-artifacts/).
var generatedDocs = map[string]bool{"abuse.md": true, "cluster.md": true}

var (
	// repoPath matches a path into the tree's top-level folders, as docs and comments cite them.
	repoPath = regexp.MustCompile("(?:^|[\\s(`\"'\\[])(?:\\./)?((?:docs|scripts|internal|cmd|test|web|sdk|proto|deploy|\\.ci)/[A-Za-z0-9_./-]*[A-Za-z0-9_-])")
	// mdName matches a Markdown document named by its file name alone.
	mdName = regexp.MustCompile(`\b([A-Za-z0-9_-]+\.md)\b`)
)

// TestDocReferences fails on a document, comment or script that cites a file or folder
// the repository does not have: a stale reference sends the reader nowhere.
func TestDocReferences(t *testing.T) {
	root := repoRoot(t)
	out, err := exec.Command("git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v (the docs check reads the tracked files)", err)
	}
	tracked := strings.Split(strings.TrimSpace(string(out)), "\n")
	names := map[string]bool{}
	for _, f := range tracked {
		names[filepath.Base(f)] = true
	}
	checked := 0
	for _, f := range tracked {
		if !cited(f) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue // deleted in the working tree
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range repoPath.FindAllStringSubmatch(line, -1) {
				p := strings.TrimSuffix(m[1], ".")
				if isGenerated(p) || strings.ContainsAny(p, "*{<") {
					continue
				}
				checked++
				if _, err := os.Stat(filepath.Join(root, p)); err != nil {
					t.Errorf("%s:%d cites %s, which is not in the repository", f, i+1, p)
				}
			}
			for _, m := range mdName.FindAllStringSubmatch(line, -1) {
				checked++
				if !names[m[1]] && !generatedDocs[m[1]] {
					t.Errorf("%s:%d cites %s, which is not in the repository (move what is needed into docs/)", f, i+1, m[1])
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d references: the scan has gone blind", checked)
	}
	t.Logf("%d references checked", checked)
}

// cited reports whether f is a file whose text may cite others: docs, code, scripts.
func cited(f string) bool {
	if strings.Contains(f, "node_modules/") || strings.HasPrefix(f, "internal/envdpb/") || strings.Contains(f, "/testdata/") {
		return false
	}
	switch filepath.Ext(f) {
	case ".go", ".md", ".sh", ".mjs", ".py", ".yml", ".yaml":
		return true
	}
	return filepath.Base(f) == "Makefile" || f == ".ci/run"
}

func isGenerated(p string) bool {
	for _, g := range generated {
		if strings.HasPrefix(p, g) || p == strings.TrimSuffix(g, "/") {
			return true
		}
	}
	return false
}
