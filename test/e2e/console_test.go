package e2e

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/testenv"
	"github.com/warren-sh/warren/test/internal/harness"
)

// consoleSuiteTimeout bounds the browser suite; it normally takes under a minute.
const consoleSuiteTimeout = 10 * time.Minute

// TestConsole runs the web console's browser tests (test/console/*.test.mjs: Debian's
// chromium, headless, driven by playwright-core) against a real `warren serve` that
// serves the console embedded from web/dist. Usage is metered every second so that the
// usage page shows the test sandbox's minutes within the suite's patience. Screenshots of
// every page land in test-artifacts/console.
func TestConsole(t *testing.T) {
	node := testenv.NeedsTool(t, "node")
	chromium := os.Getenv("WARREN_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("the console suite drives Debian's chromium: apt-get install chromium (or set WARREN_CHROMIUM): %v", err)
	}
	root := repoRoot()
	ensureNodeModules(t, filepath.Join(root, "test", "console"))
	ensureConsoleBuilt(t, node)

	s := startServer(t, serverOpts{ExtraEnv: []string{"WARREN_METER_INTERVAL=1s"}})
	checkConsoleServed(t, s.URL)

	artifacts := filepath.Join(root, "test-artifacts", "console")
	old, _ := filepath.Glob(filepath.Join(artifacts, "*.png"))
	for _, f := range old {
		os.Remove(f)
	}
	// Name the files: given a directory, node --test would also run helpers.mjs.
	files, _ := filepath.Glob(filepath.Join(root, "test", "console", "*.test.mjs"))
	if len(files) == 0 {
		t.Fatal("no test/console/*.test.mjs files")
	}
	sum, runErr := runNodeSuite(t, node, files, []string{
		"WARREN_CONSOLE_URL=" + s.URL,
		"WARREN_ADMIN_KEY=" + s.Key,
		"WARREN_ARTIFACTS_DIR=" + artifacts,
		"WARREN_CHROMIUM=" + chromium,
		"NO_COLOR=1",
	})
	shots, _ := filepath.Glob(filepath.Join(artifacts, "*.png"))
	sort.Strings(shots)
	t.Logf("console screenshots (%d) in %s:", len(shots), artifacts)
	for _, f := range shots {
		t.Logf("  %s", filepath.Base(f))
	}
	var ee *exec.ExitError
	switch {
	case runErr == nil:
		if !sum.seen || sum.pass == 0 {
			t.Errorf("node exited 0 but printed no pass/fail summary")
		}
	case errors.As(runErr, &ee):
		t.Errorf("the console suite failed (node exit code %d): %s; see the log above", ee.ExitCode(), sum)
	default:
		t.Errorf("running node: %v", runErr)
	}
}

// ensureConsoleBuilt builds web/dist when it has no index.html (make builds it before
// the binaries) and then rebuilds the warren binary the tests run, so that it embeds
// the assets.
func ensureConsoleBuilt(t *testing.T, node string) {
	t.Helper()
	web := filepath.Join(repoRoot(), "web")
	if _, err := os.Stat(filepath.Join(web, "dist", "index.html")); err == nil {
		return
	}
	t.Logf("web/dist is not built: building it and rebuilding warren (make does this before the tests)")
	ensureNodeModules(t, web)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, node, "build.mjs")
	build.Dir = web
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("node web/build.mjs: %v\n%s", err, out)
	}
	gobuild := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(harness.BinDir, "warren"), "./cmd/warren")
	gobuild.Dir = repoRoot()
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("rebuilding warren with the console assets: %v\n%s", err, out)
	}
}

// checkConsoleServed fails fast, with the fix, when the server has no console assets.
func checkConsoleServed(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatalf("GET /: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `<div id="app">`) {
		t.Fatalf("GET / answered %d %q: the console is not served (run make, which builds web/dist before the binary)", resp.StatusCode, body)
	}
}

// runNodeSuite runs `node --test` on files with env added, logging its output as it comes and killing it after consoleSuiteTimeout.
func runNodeSuite(t *testing.T, node string, files, env []string) (suiteSummary, error) {
	t.Helper()
	cmd := exec.Command(node, append([]string{"--test", "--test-reporter=spec", "--test-concurrency=1"}, files...)...)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), env...)
	// node --test runs every file in a child process, which starts chromium: a process
	// group lets a timeout end them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	t.Logf("running %s", strings.Join(cmd.Args, " "))
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
	deadline := time.After(consoleSuiteTimeout)
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
			t.Errorf("the suite did not finish within %s; killing it", consoleSuiteTimeout)
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	err := <-waited
	t.Logf("console suite: %s in %s", sum, time.Since(start).Round(time.Second))
	return sum, err
}
