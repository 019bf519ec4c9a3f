// Package harness starts real `warren serve` processes for the end-to-end and abuse
// suites (test/e2e, test/abuse): each server has its own data dir, network name and
// address pool, is stopped when its test ends, and is leak-checked (namespaces,
// nftables table, mounts, runsc sandboxes, cgroups).
package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/testenv"
)

// BinDir holds the warren and warren-agent binaries Main built for this test binary.
var BinDir string

// Main is a suite's TestMain: it needs root and runsc (under CI their absence fails the
// suite instead of passing it quietly), builds the binaries once, and runs the tests.
func Main(m *testing.M, suite string) { MainWith(m, suite, nil) }

// MainWith is Main with a function that runs after the tests, before the binaries are
// removed: it gets the tests' exit code and returns the suite's (a suite's report may
// turn a pass into a failure).
func MainWith(m *testing.M, suite string, after func(code int) int) {
	flag.Parse()
	if testing.Short() {
		fmt.Printf("%s: skipped under -short (make unit): these tests start real sandboxes\n", suite)
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		if testenv.CI() {
			fmt.Printf("%s: FAIL: these tests start real sandboxes and need root; CI runs make test as root\n", suite)
			os.Exit(1)
		}
		fmt.Printf("%s: skipped: these tests start real sandboxes and need root (run make test as root)\n", suite)
		os.Exit(0)
	}
	if _, err := exec.LookPath("runsc"); err != nil {
		fmt.Printf("%s: runsc is not installed; run scripts/install-deps.sh\n", suite)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "warren-test-bin-")
	if err != nil {
		panic(err)
	}
	BinDir = dir
	root := RepoRoot()
	for _, b := range []struct{ out, pkg string }{{"warren-agent", "./cmd/warren-agent"}, {"warren", "./cmd/warren"}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Printf("%s: building %s: %v\n%s", suite, b.pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	if after != nil {
		code = after(code)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// RepoRoot is the repository's root (suites live two levels below it).
func RepoRoot() string {
	wd, _ := os.Getwd()
	for d := wd; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !strings.Contains(d, "/sdk/") {
			return d
		}
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// ServerSeq counts the servers started by this test binary (it picks their names).
var ServerSeq atomic.Int32

// Server is one `warren serve` process with its own data dir, network name and pool.
type Server struct {
	T        *testing.T
	URL      string
	ProxyURL string
	Key      string
	DataDir  string
	Net      string
	CIDR     string
	Listen   string
	PListen  string
	// MListen is the metrics listener's address; MetricsURL its /metrics.
	MListen    string
	MetricsURL string
	// Role is the server's --role ("" all); a node's internal listener is IListen (its
	// URL IURL; a node has no API or proxy listener of its own).
	Role    string
	IListen string
	IURL    string
	cmd     *exec.Cmd
	logs    *logBuffer
	exited  chan struct{}
	// portRetries counts restarts after a port was taken between picking and binding.
	portRetries int
}

// Opts chooses a server's data dir, network name, address pool and extra environment;
// empty fields get fresh values.
type Opts struct {
	DataDir, Net, CIDR string
	ExtraEnv           []string
	// Role is --role: "" or "all", "control" or "node" (which listens on an internal
	// address for the controls, and is healthy there). Key is the admin key to use when
	// the data dir has none (a cluster's second server: the first made it).
	Role, Key string
	// Internal is the internal listener's address of a server given the cluster secret
	// in ExtraEnv ("" none; a node gets a loopback one).
	Internal string
}

// FreePort returns a free loopback address (host:port).
func FreePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start starts `warren serve` and waits until /healthz answers. The server is
// stopped (SIGTERM, kill-on-exit) and leak-checked when the test ends.
func Start(t *testing.T, o Opts) *Server {
	t.Helper()
	n := ServerSeq.Add(1)
	if o.DataDir == "" {
		d, err := os.MkdirTemp("", "warren-test-data-")
		if err != nil {
			t.Fatal(err)
		}
		o.DataDir = d
	}
	if o.Net == "" {
		o.Net = fmt.Sprintf("wt%d%c", os.Getpid()%100000, 'a'+rune(n%26))
	}
	if o.CIDR == "" {
		o.CIDR = fmt.Sprintf("10.%d.%d.0/24", 212+os.Getpid()%20, n%250)
	}
	s := &Server{T: t, DataDir: o.DataDir, Net: o.Net, CIDR: o.CIDR, Listen: FreePort(t), PListen: FreePort(t), MListen: FreePort(t), logs: &logBuffer{},
		Role: o.Role, Key: o.Key}
	switch {
	case o.Internal != "":
		s.IListen = o.Internal
	case o.Role == "node":
		s.IListen = FreePort(t)
	}
	// Registered before Start registers Stop, so it runs after it: the log is whole.
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs()
		}
	})
	s.Start(o.ExtraEnv)
	return s
}

// dumpLogs keeps the log of a server of a failed test: the whole of it in
// test-artifacts/logs, and its warnings and errors (the last maxDumpLines) in the test's
// output, which is often all a CI run shows of a failure that does not come back.
func (s *Server) dumpLogs() {
	t := s.T
	all := s.logs.String()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	dir := filepath.Join(RepoRoot(), "test-artifacts", "logs")
	file := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.log", name, s.Net, strings.ReplaceAll(s.Listen, ":", "_")))
	if err := os.MkdirAll(dir, 0o755); err == nil {
		_ = os.WriteFile(file, []byte(all), 0o644)
	}
	var warn []string
	for _, l := range strings.Split(all, "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") || strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
			warn = append(warn, l)
		}
	}
	if len(warn) > maxDumpLines {
		warn = warn[len(warn)-maxDumpLines:]
	}
	role := s.Role
	if role == "" {
		role = "all"
	}
	t.Logf("server %s (--role %s, %s): its whole log is %s; its last %d warnings and errors:\n%s",
		s.Listen, role, s.Net, file, len(warn), strings.Join(warn, "\n"))
}

// maxDumpLines is how many warning and error lines of a failed test's server are printed.
const maxDumpLines = 40

func (s *Server) Start(extraEnv []string) {
	t := s.T
	t.Helper()
	args := []string{"serve", "--listen", s.Listen, "--data-dir", s.DataDir,
		"--network-name", s.Net, "--sandbox-cidr", s.CIDR, "--kill-on-exit", "--sweep-interval", "2s",
		"--proxy-listen", s.PListen, "--metrics-listen", s.MListen}
	if s.Role != "" {
		args = append(args, "--role", s.Role)
	}
	health := "http://" + s.Listen
	if s.IListen != "" {
		args = append(args, "--internal-listen", s.IListen)
		s.IURL = "http://" + s.IListen
	}
	if s.Role == "node" {
		health = s.IURL
	}
	cmd := exec.Command(filepath.Join(BinDir, "warren"), args...)
	// Template snapshots boot a sandbox of each template with a start command when the
	// server starts: tests that count the node's sandboxes would see it. Tests of the
	// code interpreter turn them on (WARREN_TEMPLATE_SNAPSHOTS=1 in extraEnv, which
	// comes later and wins).
	cmd.Env = append(append(os.Environ(), "WARREN_TEMPLATE_SNAPSHOTS=0"), extraEnv...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.logs.WriteString(sc.Text() + "\n")
			if testing.Verbose() {
				fmt.Fprintf(os.Stderr, "[%s] %s\n", s.Net, sc.Text())
			}
		}
	}()
	go func() { cmd.Wait(); pw.Close(); close(s.exited) }()
	s.URL = "http://" + s.Listen
	s.ProxyURL = "http://" + s.PListen
	s.MetricsURL = "http://" + s.MListen + "/metrics"
	deadline := time.Now().Add(10 * time.Minute) // first start may build the base template
	for {
		resp, err := http.Get(health + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-s.exited:
			// A port picked by freePort can be taken by someone else before the server
			// binds it (ephemeral ports of other connections): pick new ones and retry.
			if strings.Contains(s.logs.String(), "address already in use") && s.portRetries < 3 {
				s.portRetries++
				s.Listen, s.PListen, s.MListen = FreePort(t), FreePort(t), FreePort(t)
				if s.IListen != "" {
					s.IListen = FreePort(t)
				}
				s.logs = &logBuffer{}
				s.Start(extraEnv)
				return
			}
			t.Fatalf("warren serve exited during start-up:\n%s", s.logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("warren serve did not become healthy:\n%s", s.logs.String())
		}
	}
	key, err := os.ReadFile(filepath.Join(s.DataDir, "admin.key"))
	switch {
	case err == nil:
		s.Key = strings.TrimSpace(string(key))
	case s.Key == "":
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
}

// Stop terminates the server gracefully (it kills its sandboxes) and checks that nothing
// of it is left on the host.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(60 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
			s.T.Errorf("warren serve did not stop within 60s; removing what it left")
			s.ForceCleanup()
		}
	}
	s.cmd = nil
	LeakCheck(s.T, s)
	os.RemoveAll(s.DataDir)
}

// StopKeep stops the server gracefully (it kills its sandboxes, --kill-on-exit) but
// keeps its data directory for a restart with start.
func (s *Server) StopKeep() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		s.T.Fatalf("warren serve did not stop within 60s")
	}
	s.cmd = nil
}

// Crash kills the server with SIGKILL, leaving its sandboxes running.
func (s *Server) Crash() {
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// LeakCheck fails t for anything of s left on the host.
func LeakCheck(t *testing.T, s *Server) {
	t.Helper()
	if ents, _ := os.ReadDir("/var/run/netns"); len(ents) > 0 {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), s.Net+"-") {
				t.Errorf("leak: network namespace %s left behind", e.Name())
			}
		}
	}
	if out, _ := exec.Command("nft", "list", "tables").Output(); bytes.Contains(out, []byte(" "+s.Net+"\n")) {
		t.Errorf("leak: nftables table %s left behind", s.Net)
	}
	mounts, _ := os.ReadFile("/proc/mounts")
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, s.DataDir) {
			t.Errorf("leak: mount left behind: %s", line)
		}
	}
	if out, _ := exec.Command("runsc", "--root", filepath.Join(s.DataDir, "runsc"), "list", "-quiet").Output(); len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("leak: runsc sandboxes left behind: %s", out)
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/*/" + s.Net); len(m) > 0 {
		t.Errorf("leak: cgroups left behind: %v", m)
	}
	if out, _ := exec.Command("ip", "-o", "link", "show").Output(); len(out) > 0 {
		_ = out // veth names are hashed; the namespace check above covers their peers
	}
}

// API does one JSON request and decodes the answer into out (if non-nil).
func (s *Server) API(method, path string, body any, out any) (int, []byte) {
	s.T.Helper()
	return s.APIKey(s.Key, method, path, body, out)
}

func (s *Server) APIKey(key, method, path string, body any, out any) (int, []byte) {
	s.T.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.URL+path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			s.T.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, b
}

// SandboxJSON is the part of a /v1 sandbox the suites read.
type SandboxJSON struct {
	ID        string            `json:"id"`
	State     string            `json:"state"`
	EndReason string            `json:"end_reason"`
	Template  string            `json:"template"`
	Metadata  map[string]string `json:"metadata"`
	Internet  bool              `json:"internet"`
	EndsAt    time.Time         `json:"ends_at"`
}

// ExecJSON is a /v1 command result.
type ExecJSON struct {
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	Error    string `json:"error"`
}

func (s *Server) Create(body map[string]any) SandboxJSON {
	s.T.Helper()
	var sb SandboxJSON
	code, raw := s.API("POST", "/v1/sandboxes", body, &sb)
	if code != 201 || !domain.ValidSandboxID(sb.ID) {
		s.T.Fatalf("create: %d %s", code, raw)
	}
	return sb
}

func (s *Server) Exec(id, cmd string) ExecJSON {
	s.T.Helper()
	var r ExecJSON
	code, raw := s.API("POST", "/v1/sandboxes/"+id+"/commands", map[string]any{"cmd": cmd}, &r)
	if code != 200 {
		s.T.Fatalf("exec %q: %d %s", cmd, code, raw)
	}
	return r
}

func (s *Server) Kill(id string) {
	s.T.Helper()
	if code, raw := s.API("DELETE", "/v1/sandboxes/"+id, nil, nil); code != 204 {
		s.T.Fatalf("kill: %d %s", code, raw)
	}
}

// CLI runs the warren binary as a client of s.
func (s *Server) CLI(ctx context.Context, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	return s.CLIIO(ctx, stdin, nil, args...)
}

// CLIEnv runs the CLI with extra environment variables (later ones win).
func (s *Server) CLIEnv(ctx context.Context, env []string, args ...string) (stdout, stderr string, code int) {
	return s.CLIIO(ctx, nil, env, args...)
}

func (s *Server) CLIIO(ctx context.Context, stdin io.Reader, env []string, args ...string) (stdout, stderr string, code int) {
	cmd := exec.CommandContext(ctx, filepath.Join(BinDir, "warren"), args...)
	cmd.Env = append(append(os.Environ(), "WARREN_API_URL="+s.URL, "WARREN_API_KEY="+s.Key), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &o, &e, stdin
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return o.String(), e.String(), code
}

// WaitTemplate waits until the server reports the template ready (extra templates are
// built in the background on a server's first start; cached afterwards).
func (s *Server) WaitTemplate(id string, timeout time.Duration) {
	s.T.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var l struct {
			Templates []struct {
				ID    string `json:"id"`
				Ready bool   `json:"ready"`
			} `json:"templates"`
		}
		s.API("GET", "/v1/templates", nil, &l)
		for _, tpl := range l.Templates {
			if tpl.ID == id && tpl.Ready {
				return
			}
		}
		if time.Now().After(deadline) {
			s.T.Fatalf("template %s not ready after %s: %+v", id, timeout, l)
		}
		time.Sleep(time.Second)
	}
}

// ForceCleanup removes what a server that had to be killed left on the host (its
// sandboxes, mounts, loop devices, namespaces, nftables table and cgroups), so that one
// failed test does not leak into the rest of the run.
func (s *Server) ForceCleanup() {
	root := filepath.Join(s.DataDir, "runsc")
	if out, err := exec.Command("runsc", "--root", root, "list", "-quiet").Output(); err == nil {
		for _, id := range strings.Fields(string(out)) {
			exec.Command("runsc", "--root", root, "kill", id, "KILL").Run()
			exec.Command("runsc", "--root", root, "delete", "-force", id).Run()
		}
	}
	if out, err := exec.Command("runc", "--root", filepath.Join(s.DataDir, "runc"), "list", "-q").Output(); err == nil {
		for _, id := range strings.Fields(string(out)) {
			exec.Command("runc", "--root", filepath.Join(s.DataDir, "runc"), "delete", "--force", id).Run()
		}
	}
	mounts, _ := os.ReadFile("/proc/mounts")
	lines := strings.Split(string(mounts), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if f := strings.Fields(lines[i]); len(f) > 1 && strings.HasPrefix(f[1], s.DataDir) {
			exec.Command("umount", "-l", f[1]).Run()
		}
	}
	if out, err := exec.Command("losetup", "-a").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if dev, _, ok := strings.Cut(line, ":"); ok && strings.Contains(line, s.DataDir) {
				exec.Command("losetup", "-d", dev).Run()
			}
		}
	}
	ents, _ := os.ReadDir("/var/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), s.Net+"-") {
			exec.Command("ip", "netns", "del", e.Name()).Run()
		}
	}
	exec.Command("nft", "delete", "table", "inet", s.Net).Run()
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + s.Net)
	for _, d := range dirs {
		subs, _ := filepath.Glob(d + "/*/")
		for _, sub := range subs {
			os.Remove(sub)
		}
		os.Remove(d)
	}
}

// Logs returns what the server printed so far.
func (s *Server) Logs() string { return s.logs.String() }

// WaitLog returns the first submatches of re in the server's log, waiting up to timeout
// for a line to arrive: the log is read from the server's output by a goroutine, so a
// line the server wrote before it answered a request may land here a little after the
// answer. nil when no line matched in time.
func (s *Server) WaitLog(re *regexp.Regexp, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		if m := re.FindStringSubmatch(s.Logs()); m != nil || time.Now().After(deadline) {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logBuffer is the server's log as read so far, safe for the reader goroutine and the
// test at once.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Exited is closed when the server process has exited.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// Pid is the server process's pid (0 when it is not running).
func (s *Server) Pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}
