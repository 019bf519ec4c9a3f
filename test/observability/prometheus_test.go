package observability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/testenv"
	"github.com/warren-sh/warren/test/internal/harness"
)

// promServer is a real prometheus process the test started; it is stopped (by its PID)
// and its storage removed when the test ends.
type promServer struct {
	t    *testing.T
	URL  string
	Addr string
	cmd  *exec.Cmd
	logs *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// scrapeConfig turns deploy/prometheus/prometheus.yml into the test's: every interval
// 1s, the warren target replaced by warrenAddr and Prometheus's own by promAddr. Each
// replaced text must be found exactly as often as the deploy file has it, so a change
// to the file's shape fails here rather than testing something else.
func scrapeConfig(t *testing.T, warrenAddr, promAddr string) string {
	t.Helper()
	b, err := os.ReadFile(deployPath("prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, r := range []struct {
		old, new string
		n        int
	}{
		{"scrape_interval: 15s", "scrape_interval: 1s", 1},
		{"evaluation_interval: 15s", "evaluation_interval: 1s", 1},
		{"scrape_timeout: 10s", "scrape_timeout: 1s", 1},
		{`"127.0.0.1:9464"`, `"` + warrenAddr + `"`, 1},
		{`"127.0.0.1:9090"`, `"` + promAddr + `"`, 1},
	} {
		if got := strings.Count(cfg, r.old); got != r.n {
			t.Fatalf("deploy/prometheus/prometheus.yml has %q %d times, the test expects %d: update scrapeConfig with the file", r.old, got, r.n)
		}
		cfg = strings.ReplaceAll(cfg, r.old, r.new)
	}
	return cfg
}

// startPrometheus runs Debian's prometheus with config (and the files beside it, such as
// rule files named relative to it) on a free loopback port, and waits until it is ready.
// config is given the address prometheus will listen on.
func startPrometheus(t *testing.T, config func(addr string) string, files map[string][]byte) *promServer {
	t.Helper()
	bin := testenv.NeedsTool(t, "prometheus")
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for try := 0; ; try++ {
		addr := harness.FreePort(t)
		cfgPath := filepath.Join(dir, "prometheus.yml")
		if err := os.WriteFile(cfgPath, []byte(config(addr)), 0o644); err != nil {
			t.Fatal(err)
		}
		p := &promServer{t: t, URL: "http://" + addr, Addr: addr, logs: &lockedBuffer{}}
		p.cmd = exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data%d", try)),
			"--web.listen-address="+addr, "--log.level=warn")
		p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { p.cmd.Wait(); close(exited) }()
		// Registered after TempDir's cleanup, so it runs first: prometheus is gone before
		// its storage is removed.
		t.Cleanup(func() { p.stop(exited) })
		if p.waitReady(exited) {
			return p
		}
		// The port picked may have been taken before prometheus bound it: try another.
		if strings.Contains(p.logs.String(), "address already in use") && try < 3 {
			continue
		}
		t.Fatalf("prometheus did not become ready:\n%s", p.logs.String())
	}
}

func (p *promServer) waitReady(exited <-chan struct{}) bool {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
		select {
		case <-exited:
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

// stop ends the prometheus this test started, by its PID: SIGTERM, then SIGKILL after 20s.
func (p *promServer) stop(exited <-chan struct{}) {
	select {
	case <-exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-exited
		p.t.Errorf("prometheus (pid %d) did not stop on SIGTERM within 20s; killed", p.cmd.Process.Pid)
	}
}

// apiResponse is the envelope of every Prometheus HTTP API answer.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

// get calls the Prometheus HTTP API (path with its query string) and returns the envelope.
// Transport and decoding failures fail the test; an API error is returned for the caller
// to judge.
func (p *promServer) get(path string) apiResponse {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", p.URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		p.t.Fatalf("GET %s: reading: %v", path, err)
	}
	var r apiResponse
	if err := json.Unmarshal(b, &r); err != nil {
		p.t.Fatalf("GET %s: %d %s: %v", path, resp.StatusCode, b, err)
	}
	return r
}

// sample is one element of an instant vector.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// queryResult is an instant query's data.
type queryResult struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// query evaluates expr now; it returns the result, or the API's error.
func (p *promServer) query(expr string) (queryResult, error) {
	p.t.Helper()
	r := p.get("/api/v1/query?query=" + url.QueryEscape(expr))
	if r.Status != "success" {
		return queryResult{}, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	var q queryResult
	if err := json.Unmarshal(r.Data, &q); err != nil {
		return q, fmt.Errorf("decoding %s: %v", r.Data, err)
	}
	return q, nil
}

// vector decodes a vector result; values are the samples' values as numbers.
func (q queryResult) vector() ([]sample, error) {
	if q.ResultType != "vector" {
		return nil, fmt.Errorf("result type %s, want vector", q.ResultType)
	}
	var v []sample
	err := json.Unmarshal(q.Result, &v)
	return v, err
}

// empty reports whether the result holds no sample.
func (q queryResult) empty() bool {
	s := strings.TrimSpace(string(q.Result))
	return s == "[]" || s == "null" || s == ""
}

func (s sample) float() (float64, error) {
	str, ok := s.Value[1].(string)
	if !ok {
		return 0, fmt.Errorf("value %v is not a string", s.Value[1])
	}
	var f float64
	_, err := fmt.Sscan(str, &f)
	if err != nil && (str == "NaN" || str == "+Inf" || str == "-Inf") {
		return 0, fmt.Errorf("value is %s", str)
	}
	return f, err
}

// waitFor evaluates expr until check accepts its vector, failing the test after timeout.
func (p *promServer) waitFor(expr string, timeout time.Duration, check func([]sample) error) []sample {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		q, err := p.query(expr)
		var v []sample
		if err == nil {
			v, err = q.vector()
		}
		if err == nil {
			if err = check(v); err == nil {
				return v
			}
		}
		last = err
		if time.Now().After(deadline) {
			p.t.Fatalf("after %s, %s: %v\nprometheus log:\n%s", timeout, expr, last, p.logs.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// names returns the metric names Prometheus holds series of that match the selector
// (e.g. {job="warren"}: what it scraped from warren, and the up series of that job).
func (p *promServer) names(selector string) map[string]bool {
	p.t.Helper()
	r := p.get("/api/v1/label/__name__/values?match[]=" + url.QueryEscape(selector))
	var names []string
	if r.Status != "success" || json.Unmarshal(r.Data, &names) != nil {
		p.t.Fatalf("label values of __name__: %+v", r)
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out
}

// ruleGroups is /api/v1/rules's data.
type ruleGroups struct {
	Groups []struct {
		Name  string `json:"name"`
		File  string `json:"file"`
		Rules []rule `json:"rules"`
	} `json:"groups"`
}

type rule struct {
	Name           string            `json:"name"`
	Query          string            `json:"query"`
	Duration       float64           `json:"duration"`
	Labels         map[string]string `json:"labels"`
	Annotations    map[string]string `json:"annotations"`
	Health         string            `json:"health"`
	LastError      string            `json:"lastError"`
	LastEvaluation time.Time         `json:"lastEvaluation"`
	Type           string            `json:"type"`
}

// rules returns the rules Prometheus loaded, with their evaluation health.
func (p *promServer) rules() []rule {
	p.t.Helper()
	r := p.get("/api/v1/rules")
	var g ruleGroups
	if r.Status != "success" || json.Unmarshal(r.Data, &g) != nil {
		p.t.Fatalf("rules: %+v", r)
	}
	var out []rule
	for _, grp := range g.Groups {
		out = append(out, grp.Rules...)
	}
	return out
}
