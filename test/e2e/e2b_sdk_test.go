package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/testenv"
	"github.com/warren-sh/warren/internal/testregistry"
)

// e2bSuiteTimeout bounds the whole JavaScript suite; it normally takes a few minutes.
const e2bSuiteTimeout = 10 * time.Minute

// TestE2BSDK runs the official, unmodified E2B JavaScript SDKs (`e2b`, `@e2b/code-interpreter`,
// pinned in test/e2b/package.json) against a real `warren serve`: the suite in test/e2b/*.test.mjs
// under `node --test`, with E2B_API_URL, E2B_SANDBOX_URL and E2B_API_KEY pointing at the server.
func TestE2BSDK(t *testing.T) {
	node := testenv.NeedsTool(t, "node")
	dir := filepath.Join(repoRoot(), "test", "e2b")
	ensureNodeModules(t, dir)

	s := startServer(t, serverOpts{ExtraEnv: []string{"WARREN_TEMPLATE_SNAPSHOTS=1"}})
	s.WaitTemplate("code-interpreter", 20*time.Minute)
	if s.ProxyURL == "" {
		t.Fatal("the test server has no sandbox proxy URL; E2B_SANDBOX_URL would be unset")
	}

	var files []string
	all, _ := filepath.Glob(filepath.Join(dir, "*.test.mjs"))
	for _, f := range all {
		// TestE2BSDKEgress runs the egress file, with its fake hosts; TestE2BSDKTemplates
		// the template builds (and tags), and TestE2BSDKDesktop the desktop, on servers of
		// their own.
		if b := filepath.Base(f); b != egressSuite && b != templatesSuite && b != tagsSuite && b != imagesSuite && b != desktopSuite {
			files = append(files, filepath.Join("test", "e2b", filepath.Base(f)))
		}
	}
	runE2BSuite(t, node, s, files, nil)
}

// egressSuite is the SDK suite's egress-policy file, which needs fake hosts.
const egressSuite = "network.test.mjs"

// templatesSuite is the SDK suite's template-build file (Template.build, then sandboxes of
// the built template), which runs the layer builder.
const templatesSuite = "templates.test.mjs"

// tagsSuite is the SDK suite's template-tags file (Template.build of name:tag,
// getTags, assignTags, removeTags), which also runs the layer builder.
const tagsSuite = "tags.test.mjs"

// imagesSuite is the SDK suite's OCI image file (fromImage, fromDebianImage), which needs
// the local registry TestE2BSDKTemplates starts.
const imagesSuite = "images.test.mjs"

// TestE2BSDKTemplates runs the SDK suite's template-build file against a real server:
// Template().fromTemplate('base')...copy(...).setStartCmd(server, waitForPort), Template.build,
// a sandbox of the result reached through the proxy, a rebuild whose changed last
// step is the only one not taken from the cache, and aptInstall plus pipInstall (of a
// wheel the test writes) checked in a sandbox; and template tags (tags.test.mjs).
func TestE2BSDKTemplates(t *testing.T) {
	node := testenv.NeedsTool(t, "node")
	ensureNodeModules(t, filepath.Join(repoRoot(), "test", "e2b"))
	// A registry on loopback holds a small image (Debian's static busybox) under a
	// name of its own and as Docker Hub's library/debian:stable, which the server reaches
	// through it as a registry mirror: fromImage and fromDebianImage build from them.
	registry := testregistry.Start(t, "", "")
	pushBusyboxImage(t, registry+"/e2b/tiny:v1", true)
	pushBusyboxImage(t, registry+"/library/debian:stable", true)
	s := startServer(t, serverOpts{ExtraEnv: []string{"WARREN_IMAGE_CACHE=" + t.TempDir(), "WARREN_REGISTRY_MIRRORS=http://" + registry}})
	runE2BSuite(t, node, s, []string{filepath.Join("test", "e2b", templatesSuite), filepath.Join("test", "e2b", tagsSuite),
		filepath.Join("test", "e2b", imagesSuite)}, []string{"WARREN_TEST_REGISTRY=" + registry})
}

// TestE2BSDKEgress runs the SDK suite's egress-policy file (create with
// network.allowOut/denyOut, sbx.updateNetwork) against a real server, with two fake hosts
// in a network namespace of the test's own (WARREN_TEST_FAKE_HOSTS).
func TestE2BSDKEgress(t *testing.T) {
	node := testenv.NeedsTool(t, "node")
	ensureNodeModules(t, filepath.Join(repoRoot(), "test", "e2b"))
	s := startServer(t, serverOpts{})
	f := newFakeHosts(t, 2)
	runE2BSuite(t, node, s, []string{filepath.Join("test", "e2b", egressSuite)},
		[]string{"WARREN_TEST_FAKE_HOSTS=" + f.addrs[0].String() + "," + f.addrs[1].String()})
}

// runE2BSuite runs the SDK test files (paths from the repository root) under
// `node --test` against s, and fails t unless they all pass.
func runE2BSuite(t *testing.T, node string, s *server, files, env []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2bSuiteTimeout)
	defer cancel()
	cmd := exec.Command(node, append([]string{"--test", "--test-reporter=spec"}, files...)...)
	cmd.Dir = repoRoot()
	cmd.Env = append(withoutE2BEnv(os.Environ()),
		"E2B_API_URL="+s.URL,
		"E2B_SANDBOX_URL="+s.ProxyURL,
		"E2B_API_KEY="+s.Key,
		"NO_COLOR=1",
	)
	cmd.Env = append(cmd.Env, env...)
	// node --test runs every file in a child process; a process group lets a timeout end
	// them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	t.Logf("running %s (E2B_API_URL=%s E2B_SANDBOX_URL=%s)", strings.Join(cmd.Args, " "), s.URL, s.ProxyURL)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node: %v", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait(); pw.Close() }()

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, pr) // an over-long line must not block node
	}()

	var sum suiteSummary
	deadline := ctx.Done()
	for done := false; !done; {
		select {
		case line, ok := <-lines:
			if !ok {
				done = true
				break
			}
			t.Log(line)
			sum.scan(line)
		case <-deadline:
			deadline = nil
			t.Errorf("the E2B SDK suite did not finish within %s; killing it", e2bSuiteTimeout)
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	err := <-waited
	t.Logf("e2b sdk suite: %s in %s", sum, time.Since(start).Round(time.Second))
	var ee *exec.ExitError
	switch {
	case err == nil:
		if !sum.seen {
			t.Errorf("node exited 0 but printed no pass/fail summary")
		}
	case errors.As(err, &ee):
		t.Errorf("the E2B SDK suite failed (node exit code %d): %s; see the log above", ee.ExitCode(), sum)
	default:
		t.Errorf("running node: %v", err)
	}
}

// suiteSummary holds the counts from the runner's final summary: `# pass N` (TAP) or
// `ℹ pass N` (spec reporter).
type suiteSummary struct {
	seen             bool
	pass, fail, skip int
	cancelled, tests int
}

var summaryLine = regexp.MustCompile(`^\s*(?:#|ℹ)\s+(tests|pass|fail|skipped|cancelled)\s+(\d+)\s*$`)

func (s *suiteSummary) scan(line string) {
	m := summaryLine.FindStringSubmatch(line)
	if m == nil {
		return
	}
	n, _ := strconv.Atoi(m[2])
	s.seen = true
	switch m[1] {
	case "tests":
		s.tests = n
	case "pass":
		s.pass = n
	case "fail":
		s.fail = n
	case "skipped":
		s.skip = n
	case "cancelled":
		s.cancelled = n
	}
}

func (s suiteSummary) String() string {
	if !s.seen {
		return "no summary"
	}
	str := fmt.Sprintf("%d passed, %d failed", s.pass, s.fail)
	if s.skip > 0 {
		str += fmt.Sprintf(", %d skipped", s.skip)
	}
	if s.cancelled > 0 {
		str += fmt.Sprintf(", %d cancelled", s.cancelled)
	}
	return str
}

// withoutE2BEnv drops E2B_* variables from env, so a developer's E2B_DOMAIN or E2B_DEBUG
// cannot redirect the suite away from the test server.
func withoutE2BEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "E2B_") {
			out = append(out, kv)
		}
	}
	return out
}

// ensureNodeModules runs `npm ci` in dir when node_modules is missing or older than
// package-lock.json.
func ensureNodeModules(t *testing.T, dir string) {
	t.Helper()
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatalf("%s/package-lock.json: %v", dir, err)
	}
	var installed time.Time
	for _, p := range []string{"node_modules", filepath.Join("node_modules", ".package-lock.json")} {
		if fi, err := os.Stat(filepath.Join(dir, p)); err == nil && fi.ModTime().After(installed) {
			installed = fi.ModTime()
		}
	}
	if !installed.IsZero() && !installed.Before(lock.ModTime()) {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("%s/node_modules is missing or stale and npm is not installed: install npm, or run `npm ci` in %s", dir, dir)
	}
	t.Logf("npm ci in %s (node_modules missing or older than package-lock.json)", dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("npm ci in %s: %v (the npm registry, or a cache with these packages, must be reachable)", dir, err)
	}
	now := time.Now()
	_ = os.Chtimes(filepath.Join(dir, "node_modules"), now, now)
}
