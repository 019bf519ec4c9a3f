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
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/testenv"
)

// pySuiteTimeout bounds the pytest run; it normally takes about two minutes.
const pySuiteTimeout = 15 * time.Minute

// pythonExamples lists every script in examples/python with the line it promises to print.
var pythonExamples = []struct {
	file string
	args func(dir string) []string
	want *regexp.Regexp
}{
	{"agent_loop.py", nil, regexp.MustCompile(`(?m)^agent finished after 4 turns: final answer 656$`)},
	{"data_analysis.py", func(dir string) []string { return []string{dir} },
		regexp.MustCompile(`(?m)^chart saved to \S+/chart\.png \(800x400 PNG, \d+ bytes\)$`)},
	{"web_server.py", nil, regexp.MustCompile(`(?m)^GET http://8000-[a-z0-9]{20}\.\S+/ -> 200: hello from a Warren sandbox$`)},
	{"fork_explore.py", nil, regexp.MustCompile(`(?m)^3 forks explored from one setup: attempt-0, attempt-1, attempt-2 \(the parent kept its own file\)$`)},
}

// TestPythonSDK installs the Python SDK (sdk/python) offline into a fresh virtual
// environment and runs, against a real `warren serve`: its pytest suite (unit tests
// against a stub server, the OpenAPI drift test, and integration tests of every method
// of the sync and asyncio clients: commands in the foreground and the background with
// stdin, signals, listing and re-attaching, command timeouts, streams ended by a stopped
// sandbox, file stat/mkdir/move/remove, ports and hosts through the proxy, quota,
// rate-limit and scope errors, and template builds from a Dockerfile and a context
// directory with a cached rebuild, a failing build and delete), every example in examples/python, and the overhead
// benchmark (sdk/python/bench.py).
func TestPythonSDK(t *testing.T) {
	py := findPython(t)
	venvPy := makeVenv(t, py)
	s := startServer(t, serverOpts{})
	s.WaitTemplate("code-interpreter", 20*time.Minute)
	env := append(withoutWarrenEnv(os.Environ()),
		"WARREN_API_URL="+s.URL,
		"WARREN_API_KEY="+s.Key,
		"WARREN_PROXY_URL="+s.ProxyURL,
		"WARREN_TEST_ADMIN_KEY="+s.Key,
		"CI=1", // integration tests fail, not skip, if something they need is missing
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONUNBUFFERED=1",
	)

	t.Run("pytest", func(t *testing.T) {
		var sum pytestCounts
		// WARREN_SDK_EXPECT_INSTALLED makes the suite check that it imports the installed
		// package, not sdk/python/warren.
		err := runPython(t, append(env, "WARREN_SDK_EXPECT_INSTALLED="+filepath.Dir(filepath.Dir(venvPy))),
			pySuiteTimeout, sum.scan, venvPy, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", "sdk/python/tests")
		t.Logf("python sdk suite: %s", sum)
		switch {
		case err != nil:
			t.Errorf("the Python SDK suite failed: %v (%s); see the log above", err, sum)
		case !sum.seen:
			t.Errorf("pytest exited 0 but printed no summary")
		case sum.counts["failed"]+sum.counts["error"]+sum.counts["errors"] > 0 || sum.counts["passed"] == 0:
			t.Errorf("the Python SDK suite did not pass: %s", sum)
		}
		var list struct {
			Sandboxes []sandboxJSON `json:"sandboxes"`
		}
		s.API("GET", "/v1/sandboxes?state=running,starting", nil, &list)
		if len(list.Sandboxes) > 0 {
			t.Errorf("the suite left %d sandboxes running: %+v", len(list.Sandboxes), list.Sandboxes)
		}
	})

	t.Run("examples", func(t *testing.T) {
		onDisk, _ := filepath.Glob(filepath.Join(repoRoot(), "examples", "python", "*.py"))
		listed := map[string]bool{}
		for _, ex := range pythonExamples {
			listed[ex.file] = true
		}
		for _, p := range onDisk {
			if !listed[filepath.Base(p)] {
				t.Errorf("examples/python/%s is not in pythonExamples: add it with the line it promises", filepath.Base(p))
			}
		}
		for _, ex := range pythonExamples {
			t.Run(ex.file, func(t *testing.T) {
				dir := t.TempDir()
				args := []string{filepath.Join("examples", "python", ex.file)}
				if ex.args != nil {
					args = append(args, ex.args(dir)...)
				}
				var out strings.Builder
				err := runPython(t, env, 5*time.Minute, func(line string) { out.WriteString(line + "\n") },
					append([]string{venvPy}, args...)...)
				if err != nil {
					t.Fatalf("%s: %v", ex.file, err)
				}
				if !ex.want.MatchString(out.String()) {
					t.Errorf("%s did not print a line matching %s", ex.file, ex.want)
				}
				if ex.file == "data_analysis.py" {
					b, err := os.ReadFile(filepath.Join(dir, "chart.png"))
					if err != nil || !strings.HasPrefix(string(b), "\x89PNG\r\n\x1a\n") {
						t.Errorf("chart.png is missing or not a PNG (%d bytes, %v)", len(b), err)
					}
				}
			})
		}
	})

	t.Run("overhead", func(t *testing.T) {
		var result string
		err := runPython(t, env, 10*time.Minute, func(line string) {
			if strings.HasPrefix(line, "result: ") {
				result = line
			}
		}, venvPy, filepath.Join("sdk", "python", "bench.py"), "-n", "200")
		if err != nil {
			t.Fatalf("bench.py: %v", err)
		}
		if !strings.Contains(result, "sdk_p50_ms=") || !strings.Contains(result, "raw_http_p50_ms=") {
			t.Fatalf("bench.py printed no result line")
		}
		t.Logf("python sdk overhead for commands.run(\"true\"): %s", strings.TrimPrefix(result, "result: "))
	})
}

// findPython returns a python3 that has what the SDK and its tests need (Debian's
// python3-httpx, python3-pytest, python3-pytest-asyncio and python3-venv; see
// scripts/install-deps.sh with WARREN_TEST_DEPS=1).
func findPython(t *testing.T) string {
	t.Helper()
	var tried []string
	cands := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	}
	for _, py := range cands {
		out, err := exec.Command(py, "-c", "import sys, httpx, pytest, pytest_asyncio, venv, ensurepip; assert sys.version_info >= (3, 11)").CombinedOutput()
		if err == nil {
			return py
		}
		tried = append(tried, fmt.Sprintf("%s: %s", py, strings.TrimSpace(string(out))))
	}
	msg := "no python3 (3.11+) with httpx, pytest, pytest-asyncio and venv: apt-get install python3-httpx python3-pytest python3-pytest-asyncio python3-venv python3-pip (scripts/install-deps.sh with WARREN_TEST_DEPS=1)"
	testenv.Missing(t, msg+"\n"+strings.Join(tried, "\n"))
	return ""
}

// makeVenv creates a virtual environment that sees the system's packages and installs a
// copy of sdk/python into it offline (the copy keeps build files out of the tree), with
// the command the SDK's README documents. It returns the environment's python.
func makeVenv(t *testing.T, py string) string {
	t.Helper()
	dir := t.TempDir()
	venv := filepath.Join(dir, "venv")
	if out, err := exec.Command(py, "-m", "venv", "--system-site-packages", venv).CombinedOutput(); err != nil {
		t.Fatalf("python3 -m venv: %v\n%s", err, out)
	}
	src := filepath.Join(dir, "sdk-python")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"pyproject.toml", "README.md", "warren", "_build"} {
		if out, err := exec.Command("cp", "-r", filepath.Join(repoRoot(), "sdk", "python", p), src).CombinedOutput(); err != nil {
			t.Fatalf("copying sdk/python/%s: %v\n%s", p, err, out)
		}
	}
	// A plain `pip install ./sdk/python`, with the package index switched off: the
	// package builds with its in-tree backend and needs nothing from the network.
	pip := exec.Command(filepath.Join(venv, "bin", "pip"), "install", "--quiet", src)
	pip.Env = append(os.Environ(), "PIP_NO_INDEX=1", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PYTHONDONTWRITEBYTECODE=1")
	if out, err := pip.CombinedOutput(); err != nil {
		t.Fatalf("pip install sdk/python (PIP_NO_INDEX=1): %v\n%s", err, out)
	}
	return filepath.Join(venv, "bin", "python")
}

// runPython runs the venv's python with args in the repository root, logging and
// passing each output line to onLine, and kills its process group after timeout.
func runPython(t *testing.T, env []string, timeout time.Duration, onLine func(string), args ...string) error {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = repoRoot()
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	t.Logf("running %s", strings.Join(args[1:], " "))
	if err := cmd.Start(); err != nil {
		return err
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
		io.Copy(io.Discard, pr)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	deadline := ctx.Done()
	timedOut := false
	for done := false; !done; {
		select {
		case line, ok := <-lines:
			if !ok {
				done = true
				break
			}
			t.Log(line)
			onLine(line)
		case <-deadline:
			deadline = nil
			timedOut = true
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	err := <-waited
	if timedOut {
		return fmt.Errorf("did not finish within %s; killed", timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("exit code %d", ee.ExitCode())
	}
	return err
}

// withoutWarrenEnv drops WARREN_* and CI from env, so that a developer's settings cannot
// point the suite elsewhere.
func withoutWarrenEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "WARREN_") && !strings.HasPrefix(kv, "CI=") {
			out = append(out, kv)
		}
	}
	return out
}

// pytestCounts holds the counts of pytest's final summary line, e.g.
// "1 failed, 180 passed, 2 skipped in 66.91s".
type pytestCounts struct {
	seen   bool
	counts map[string]int
}

var (
	pytestSummary = regexp.MustCompile(`^=*\s*(\d+ \w+(?:, \d+ \w+)*) in [\d.]+s\b`)
	pytestCount   = regexp.MustCompile(`(\d+) (\w+)`)
)

func (c *pytestCounts) scan(line string) {
	m := pytestSummary.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		return
	}
	c.seen = true
	c.counts = map[string]int{}
	for _, kv := range pytestCount.FindAllStringSubmatch(m[1], -1) {
		n, _ := strconv.Atoi(kv[1])
		c.counts[kv[2]] = n
	}
}

func (c pytestCounts) String() string {
	if !c.seen {
		return "no summary"
	}
	keys := make([]string, 0, len(c.counts))
	for k := range c.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", c.counts[k], k))
	}
	return strings.Join(parts, ", ")
}
