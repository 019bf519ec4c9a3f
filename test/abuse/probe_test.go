package abuse

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/test/internal/harness"
)

// A probe is one attack. run returns the outcome in a few words ("refused: EPERM",
// "403 forbidden", "sandbox survived, host untouched") and fails t when the attack got
// through. Probes that leave a sandbox broken say so through env.Replace.
type probe struct {
	name     string
	runtimes []string // the runtimes it runs on; nil means every runtime
	run      func(t *testing.T, e *env) string
}

var (
	probesMu sync.Mutex
	probes   []probe
)

// register adds probes; each probe file calls it from init.
func register(ps ...probe) {
	probesMu.Lock()
	defer probesMu.Unlock()
	probes = append(probes, ps...)
}

// clusterSecret is the suite server's cluster secret (it has an internal listener).
var clusterSecret = "abuse-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-0123456789abcdef0123456789"

// runtimes are the drivers the suite attacks. The server enables both (WARREN_RUNTIMES).
var runtimes = []string{"gvisor", "runc"}

// env is what a probe gets: the server, the runtime under attack, and one running
// sandbox of that runtime on the admin's team (created lazily, replaced on demand).
type env struct {
	t       *testing.T
	S       *harness.Server
	Runtime string
	sbx     string
}

// Sandbox returns the shared sandbox of this runtime, creating it when needed.
func (e *env) Sandbox() string {
	e.t.Helper()
	if e.sbx == "" {
		e.sbx = e.S.Create(map[string]any{"runtime": e.Runtime, "timeout": 1800}).ID
	}
	return e.sbx
}

// Fresh creates a new sandbox of this runtime with extra create fields; the probe owns it
// (it is killed when the probe ends).
func (e *env) Fresh(t *testing.T, fields map[string]any) string {
	t.Helper()
	body := map[string]any{"runtime": e.Runtime, "timeout": 600}
	for k, v := range fields {
		body[k] = v
	}
	id := e.S.Create(body).ID
	t.Cleanup(func() { e.S.API("DELETE", "/v1/sandboxes/"+id, nil, nil) })
	return id
}

// Replace drops the shared sandbox (a probe broke it on purpose), killing it.
func (e *env) Replace() {
	if e.sbx != "" {
		e.S.API("DELETE", "/v1/sandboxes/"+e.sbx, nil, nil)
		e.sbx = ""
	}
}

// Exec runs cmd in the shared sandbox.
func (e *env) Exec(cmd string) harness.ExecJSON { return e.S.Exec(e.Sandbox(), cmd) }

// only runs just the probes whose names contain this (for working on one probe).
var only = flag.String("probe", "", "run only the probes whose names contain this")

func onlySome() bool { return *only != "" }

// TestAbuse runs every registered probe on every runtime it names, one server per
// runtime, checking the host's health after each.
func TestAbuse(t *testing.T) {
	probesMu.Lock()
	ps := append([]probe(nil), probes...)
	probesMu.Unlock()
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			// One host of a cluster: its internal listener, where control replicas send
			// requests with the cluster secret, is bound to every interface, the way a
			// node serves it, so the probes attack it too.
			_, port, _ := net.SplitHostPort(harness.FreePort(t))
			s := harness.Start(t, harness.Opts{ExtraEnv: []string{"WARREN_RUNTIMES=gvisor,runc", "WARREN_CLUSTER_SECRET=" + clusterSecret},
				Internal: "0.0.0.0:" + port})
			e := &env{t: t, S: s, Runtime: rt}
			defer e.Replace()
			for _, p := range ps {
				if !p.on(rt) || (*only != "" && !strings.Contains(p.name, *only)) {
					continue
				}
				t.Run(p.name, func(t *testing.T) {
					before := rssKB(s.Pid())
					e.t = t
					outcome := p.run(t, e)
					e.t = t
					h := health(t, s)
					report.add(row{Probe: p.name, Runtime: rt, Outcome: outcome, Passed: !t.Failed(),
						RSSBeforeKB: before, RSSAfterKB: h.rssKB, P99: h.p99})
				})
			}
		})
	}
}

func (p probe) on(rt string) bool {
	if p.runtimes == nil {
		return true
	}
	for _, r := range p.runtimes {
		if r == rt {
			return true
		}
	}
	return false
}

// healthReport is the host's state after a probe.
type healthReport struct {
	rssKB int64
	p99   time.Duration
}

// Health bounds: generous, far above a healthy server (p99 ~ms, RSS tens of MiB), so
// only a server that a probe really hurt (swapping, wedged, leaking) trips them.
const (
	maxP99   = 2 * time.Second
	maxRSSKB = 1 << 20 // 1 GiB
)

// health checks that the server still answers promptly (p99 of 20 list calls), that its
// RSS is bounded, and that it is still running.
func health(t *testing.T, s *harness.Server) healthReport {
	t.Helper()
	select {
	case <-s.Exited():
		t.Fatalf("the server died during the probe:\n%s", tail(s.Logs(), 40))
	default:
	}
	var lat []time.Duration
	client := &http.Client{Timeout: 10 * time.Second}
	for i := 0; i < 20; i++ {
		req, _ := http.NewRequest("GET", s.URL+"/v1/sandboxes", nil)
		req.Header.Set("Authorization", "Bearer "+s.Key)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("health: the API did not answer after the probe: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("health: GET /v1/sandboxes answered %d after the probe", resp.StatusCode)
		}
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	h := healthReport{rssKB: rssKB(s.Pid()), p99: lat[len(lat)-1]}
	if h.p99 > maxP99 {
		t.Errorf("health: API p99 %s after the probe (bound %s)", h.p99, maxP99)
	}
	if h.rssKB > maxRSSKB {
		t.Errorf("health: server RSS %d MiB after the probe (bound %d MiB)", h.rssKB>>10, maxRSSKB>>10)
	}
	return h
}

// rssKB reads a process's resident set size in KiB (0 when it is gone).
func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
	}
	return 0
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// row is one line of the outcome table.
type row struct {
	Probe, Runtime, Outcome string
	Passed                  bool
	RSSBeforeKB, RSSAfterKB int64
	P99                     time.Duration
}

type table struct {
	mu sync.Mutex
	rs []row
}

var report = &table{}

func (tb *table) add(r row) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.rs = append(tb.rs, r)
}

func (tb *table) rows() []row {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]row(nil), tb.rs...)
}

func distinctProbes(rows []row) int {
	seen := map[string]bool{}
	for _, r := range rows {
		seen[r.Probe] = true
	}
	return len(seen)
}

// writeReport prints the outcome table (Markdown) to w and saves it at path.
func writeReport(w io.Writer, path string, rows []row) {
	var b strings.Builder
	fmt.Fprintf(&b, "| probe | runtime | outcome | result | server RSS before → after | API p99 after |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		res := "pass"
		if !r.Passed {
			res = "FAIL"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.1f → %.1f MiB | %s |\n", r.Probe, r.Runtime,
			strings.ReplaceAll(r.Outcome, "|", "/"), res, float64(r.RSSBeforeKB)/1024, float64(r.RSSAfterKB)/1024,
			r.P99.Round(100*time.Microsecond))
	}
	fmt.Fprintf(&b, "\n%d probes, %d rows\n", distinctProbes(rows), len(rows))
	io.WriteString(w, b.String())
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
		_ = os.WriteFile(path, []byte(b.String()), 0o644)
	}
}
