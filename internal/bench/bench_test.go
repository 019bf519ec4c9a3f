package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 20; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := summarize(ds)
	if s.N != 20 || s.P50 != 10 || s.P95 != 19 || s.Min != 1 || s.Max != 20 {
		t.Errorf("summary of 1..20 ms: %+v", s)
	}
	if s := summarize([]time.Duration{5 * time.Millisecond}); s.P50 != 5 || s.P95 != 5 {
		t.Errorf("single: %+v", s)
	}
	if s := summarize(nil); s.N != 0 {
		t.Errorf("empty: %+v", s)
	}
}

func TestPStats(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 200; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := pstats(ds)
	if s.N != 200 || s.P50 != 100 || s.P99 != 198 || s.Max != 200 {
		t.Errorf("pstats of 1..200 ms: %+v", s)
	}
}

func TestStatsJSON(t *testing.T) {
	b, _ := json.Marshal(absent("no route"))
	if string(b) != `{"n":0,"error":"no route"}` {
		t.Errorf("absent: %s", b)
	}
	b, _ = json.Marshal(summarize([]time.Duration{2 * time.Millisecond}))
	if string(b) != `{"n":1,"p50_ms":2,"p95_ms":2,"min_ms":2,"max_ms":2}` {
		t.Errorf("measured: %s", b)
	}
}

func TestUnsupported(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&apiError{Method: "POST", Path: "/p", Status: 404, Body: `{"message":"no route"}`}, true},
		{&apiError{Status: 501, Body: "pause is not implemented"}, true},
		{&apiError{Status: 409, Body: `{"message":"the runc runtime cannot checkpoint; use gvisor"}`}, true},
		{&apiError{Status: 500, Body: "boom"}, false},
		{fmt.Errorf("dial: refused"), false},
	} {
		if got := unsupported(c.err) != ""; got != c.want {
			t.Errorf("unsupported(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if got := unsupported(&apiError{Method: "POST", Path: "/p", Status: 404, Body: `{"message":"no route"}`}); !strings.Contains(got, "no route") {
		t.Errorf("the reason should carry the server's message: %q", got)
	}
}

func TestFindPool(t *testing.T) {
	var doc any
	_ = json.Unmarshal([]byte(`{"nodes":[{"id":"n1","pools":[{"template":"code-interpreter","claims":7,"ready":1},{"template_id":"base","size":4,"ready":3,"claims":12}]}]}`), &doc)
	pc, ok := findPool(doc, "base")
	if !ok || pc.Claims != 12 || pc.Ready != 3 {
		t.Errorf("findPool(base) = %+v, %v", pc, ok)
	}
	if _, ok := findPool(doc, "other"); ok {
		t.Error("found a pool of a template that has none")
	}
}

// fakeAPI is a small /v1 with function fields for the routes a test changes.
type fakeAPI struct {
	mu     sync.Mutex
	next   int
	live   map[string]string // id -> create body
	claims int               // pool counter; -1 = no pool route
	pool   bool
	pause  func() int // status of pause and resume; 0 = 200
	fork   bool
	// forkQuota is how many forks a fork call makes before the quota refuses the rest;
	// 0 = no limit.
	forkQuota int
	execs     int
	codeRun   int
	// spawnOut, when set, is what the in-sandbox spawn timer prints for n spawns;
	// default n lines of 1500 (1.5 ms each).
	spawnOut func(n int) string
	// refillPolls is how many reads of /v1/pools after a claim show the pool refilling
	// (3 of 4 ready, 1 starting); refilling is how many are left now; fullAt is when a
	// read last showed the pool full.
	refillPolls, refilling int
	fullAt                 time.Time
	// killedAt is when a sandbox was last killed; soonAfterKill counts the timed
	// creates (warm and code-interpreter) that came less than settle after it.
	killedAt      time.Time
	settle        time.Duration
	soonAfterKill int
}

func (f *fakeAPI) handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	newSandbox := func(body string) map[string]any {
		f.next++
		id := fmt.Sprintf("sb%d", f.next)
		f.live[id] = body
		return map[string]any{"id": id, "limits": map[string]any{"memory_mb": 512}}
	}
	mux.HandleFunc("POST /v1/sandboxes", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Template string `json:"template"`
			Timeout  int    `json:"timeout"`
			Limits   *struct {
				MemoryMB int `json:"memory_mb"`
			} `json:"limits"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		defer f.mu.Unlock()
		timed := req.Template == "code-interpreter" || (req.Template == "base" && req.Limits == nil && req.Timeout == 0)
		if timed && !f.killedAt.IsZero() && time.Since(f.killedAt) < f.settle {
			f.soonAfterKill++
		}
		if f.pool && req.Template == "base" && req.Limits == nil {
			f.claims++
			f.refilling = f.refillPolls
		}
		if req.Limits != nil && req.Limits.MemoryMB != 511 {
			t.Errorf("cold create asked for %d MiB, want the default less one", req.Limits.MemoryMB)
		}
		sb := newSandbox(req.Template)
		if req.Template == "base" && req.Timeout == 900 {
			// The sandbox of the running-sandbox measurements, whose PSS fakeProc has.
			delete(f.live, sb["id"].(string))
			sb["id"] = "running"
			f.live["running"] = "base"
		}
		writeJSON(w, 201, sb)
	})
	mux.HandleFunc("DELETE /v1/sandboxes/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		delete(f.live, r.PathValue("id"))
		f.killedAt = time.Now()
		f.mu.Unlock()
		w.WriteHeader(204)
	})
	mux.HandleFunc("POST /v1/sandboxes/{id}/commands", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Cmd    string `json:"cmd"`
			Stream bool   `json:"stream"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "event: start\ndata: {\"pid\":1}\n\nevent: stdout\ndata: {\"text\":\"hello\\n\"}\n\nevent: end\ndata: {\"exit_code\":0}\n\n")
			return
		}
		if strings.HasPrefix(req.Cmd, spawnScript) {
			n, _ := strconv.Atoi(strings.TrimPrefix(req.Cmd, spawnScript))
			out := strings.Repeat("1500\n", n)
			if f.spawnOut != nil {
				out = f.spawnOut(n)
			}
			writeJSON(w, 200, map[string]any{"exit_code": 0, "stdout": out, "stderr": ""})
			return
		}
		f.mu.Lock()
		f.execs++
		f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"exit_code": 0, "stdout": "", "stderr": ""})
	})
	mux.HandleFunc("POST /v1/sandboxes/{id}/execute", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.codeRun++
		f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"results": []any{map[string]any{"is_main_result": true, "text": "2"}}})
	})
	mux.HandleFunc("POST /v1/sandboxes/{id}/pause", func(w http.ResponseWriter, r *http.Request) {
		if f.pause == nil {
			writeJSON(w, 404, map[string]any{"message": "no route for POST " + r.URL.Path})
			return
		}
		if s := f.pause(); s != 0 {
			writeJSON(w, s, map[string]any{"message": "the runtime cannot checkpoint"})
			return
		}
		writeJSON(w, 200, map[string]any{"id": r.PathValue("id"), "state": "paused"})
	})
	mux.HandleFunc("POST /v1/sandboxes/{id}/resume", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"id": r.PathValue("id"), "state": "running"})
	})
	mux.HandleFunc("POST /v1/sandboxes/{id}/fork", func(w http.ResponseWriter, r *http.Request) {
		if !f.fork {
			writeJSON(w, 501, map[string]any{"message": "fork is not implemented"})
			return
		}
		var req struct{ Count int }
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		defer f.mu.Unlock()
		var sbs, errs []any
		for i := 0; i < req.Count; i++ {
			if i >= f.forkQuota && f.forkQuota > 0 {
				errs = append(errs, map[string]any{"index": i, "status": 429, "message": "quota max_cpu_cores exceeded"})
				continue
			}
			sbs = append(sbs, newSandbox("fork"))
		}
		writeJSON(w, 201, map[string]any{"sandboxes": sbs, "errors": errs})
	})
	mux.HandleFunc("GET /v1/pools", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.pool {
			writeJSON(w, 404, map[string]any{"message": "this server keeps no warm pools"})
			return
		}
		ready, starting := 4, 0
		if f.refilling > 0 {
			f.refilling--
			ready, starting = 3, 1
		} else {
			f.fullAt = time.Now()
		}
		writeJSON(w, 200, map[string]any{"pools": []any{map[string]any{"template_id": "base", "size": 4, "ready": ready, "starting": starting, "claims": f.claims}}})
	})
	return mux
}

// fakeProc writes a /proc with one sandbox's runsc processes (and a child), and an
// unrelated process.
func fakeProc(t *testing.T, id string) string {
	root := t.TempDir()
	add := func(pid, ppid int, args []string, pssKB int) {
		dir := filepath.Join(root, fmt.Sprint(pid))
		_ = os.MkdirAll(dir, 0o755)
		_ = os.WriteFile(filepath.Join(dir, "cmdline"), []byte(strings.Join(args, "\x00")+"\x00"), 0o644)
		_ = os.WriteFile(filepath.Join(dir, "stat"), []byte(fmt.Sprintf("%d (exe (x)) S %d 1 1", pid, ppid)), 0o644)
		_ = os.WriteFile(filepath.Join(dir, "smaps_rollup"), []byte(fmt.Sprintf("00400000-7fff [rollup]\nRss: 9999 kB\nPss:  %d kB\nPrivate_Clean: 1 kB\nPrivate_Dirty: 2 kB\n", pssKB)), 0o644)
	}
	add(10, 1, []string{"runsc-gofer", "--root=/r", "gofer", "--bundle", "/b", id}, 8000)
	add(11, 1, []string{"runsc-sandbox", "--root=/r", "boot", "--bundle=/b", id}, 20000)
	add(12, 11, []string{"exe"}, 12000)
	add(13, 1, []string{"runsc-sandbox", "boot", "other"}, 99999)
	return root
}

func TestProcPSS(t *testing.T) {
	root := fakeProc(t, "sb1")
	p, err := procTable{root: root}.sandboxPSS("sb1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Bytes != 40000<<10 || p.SandboxBytes != 32000<<10 || p.GoferBytes != 8000<<10 || p.USSBytes != 9<<10 || p.Processes != 3 || p.AddressSpaces != 3 {
		t.Errorf("PSS = %+v", p)
	}
	// A stub process that shares pid 12's address space (CLONE_VM) shows all of it in
	// its own smaps_rollup: it must not count twice.
	add := func(pid, ppid, pssKB int) {
		dir := filepath.Join(root, fmt.Sprint(pid))
		_ = os.MkdirAll(dir, 0o755)
		_ = os.WriteFile(filepath.Join(dir, "cmdline"), []byte("exe\x00"), 0o644)
		_ = os.WriteFile(filepath.Join(dir, "stat"), []byte(fmt.Sprintf("%d (exe) S %d 1 1", pid, ppid)), 0o644)
		_ = os.WriteFile(filepath.Join(dir, "smaps_rollup"), []byte(fmt.Sprintf("Pss: %d kB\nPrivate_Dirty: 2 kB\n", pssKB)), 0o644)
	}
	add(14, 12, 12000)
	vm := map[int]int{10: 1, 11: 2, 12: 3, 14: 3}
	shared := procTable{root: root, sameVM: func(a, b int) bool { return vm[a] != 0 && vm[a] == vm[b] }}
	p, err = shared.sandboxPSS("sb1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Bytes != 40000<<10 || p.USSBytes != 9<<10 || p.Processes != 4 || p.AddressSpaces != 3 {
		t.Errorf("with a stub sharing an address space: PSS = %+v, want the same bytes over 4 processes, 3 address spaces", p)
	}
	// Without the test of shared address spaces it would have counted twice.
	if p, _ := (procTable{root: root}).sandboxPSS("sb1"); p.Bytes != 52000<<10 {
		t.Errorf("counted per process: %d KiB, want 52000", p.Bytes>>10)
	}
	if _, err := (procTable{root: root}).sandboxPSS("nope"); err == nil {
		t.Error("no error for a sandbox without processes")
	}
}

func run(t *testing.T, f *fakeAPI, tweaks ...func(*Options)) *Result {
	t.Helper()
	if f.live == nil {
		f.live = map[string]string{}
	}
	srv := httptest.NewServer(f.handler(t))
	defer srv.Close()
	var progress strings.Builder
	o := Options{
		APIURL: srv.URL, APIKey: "sk_test", N: 3, ExecCalls: 7, ExecPacedCalls: 3, PauseRuns: 2, ForkRuns: 2, CodeRuns: 2, CodeCalls: 4,
		Progress:      &progress,
		baseline:      func(context.Context, int) (time.Duration, error) { return 10 * time.Millisecond, nil },
		baselineNonet: func(context.Context, int) (time.Duration, error) { return 8 * time.Millisecond, nil },
		procRoot:      fakeProc(t, "running"),
		idleWait:      time.Millisecond,
		execPause:     time.Millisecond,
	}
	for _, tw := range tweaks {
		tw(&o)
	}
	r, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, progress.String())
	}
	if len(f.live) != 0 {
		t.Errorf("sandboxes left behind: %v", f.live)
	}
	return r
}

// TestRunAbsent: a server without pools, pause or fork gives those series as absent
// with a reason, and every other series measured.
func TestRunAbsent(t *testing.T) {
	r := run(t, &fakeAPI{})
	for name, s := range map[string]Stats{"baseline": r.Baseline, "baseline nonet": r.BaselineNonet, "cold": r.Cold, "exec": r.Exec, "exec paced": r.ExecPaced, "spawn": r.Spawn, "run_code": r.RunCode, "code first": r.CodeFirst} {
		if s.N == 0 || s.Error != "" {
			t.Errorf("%s not measured: %+v", name, s)
		}
	}
	if r.Spawn.N != 7 || r.Spawn.P50 != 1.5 {
		t.Errorf("spawn inside the sandbox: %+v, want 7 times of 1.5 ms", r.Spawn)
	}
	if r.Baseline.N != 3 || r.Cold.N != 3 || r.Exec.N != 7 || r.ExecPaced.N != 3 || r.RunCode.N != 4 || r.CodeFirst.N != 2 {
		t.Errorf("counts: baseline %d cold %d exec %d exec paced %d run_code %d code first %d", r.Baseline.N, r.Cold.N, r.Exec.N, r.ExecPaced.N, r.RunCode.N, r.CodeFirst.N)
	}
	for name, s := range map[string]Stats{"warm": r.Warm, "pause": r.Pause, "resume": r.Resume, "fork_1": r.Fork1, "fork_10": r.Fork10} {
		if s.N != 0 || s.Error == "" {
			t.Errorf("%s should be absent with a reason: %+v", name, s)
		}
	}
	if !strings.Contains(r.Fork1.Error, "501") || !strings.Contains(r.Pause.Error, "404") || !strings.Contains(r.Warm.Error, "--warm-pool") {
		t.Errorf("reasons: fork %q, pause %q, warm %q", r.Fork1.Error, r.Pause.Error, r.Warm.Error)
	}
	if r.BaselineNonet.N != 3 || r.RatioP50 != ratio(r.Cold.P50, r.Baseline.P50) || r.RatioP95 != ratio(r.Cold.P95, r.Baseline.P95) {
		t.Errorf("ratios must be against the same-network baseline: p50 %v p95 %v (baseline %+v, no network %+v)", r.RatioP50, r.RatioP95, r.Baseline, r.BaselineNonet)
	}
	if r.RatioP50 <= 0 || r.RatioWarmP50 != 0 {
		t.Errorf("ratios: cold %v warm %v", r.RatioP50, r.RatioWarmP50)
	}
	if r.IdlePSSBytes != 40000<<10 {
		t.Errorf("idle PSS %d (%s)", r.IdlePSSBytes, r.IdlePSSError)
	}
	if r.WarrenCreateToFirstOutput != r.Cold || r.Code == nil || r.Code.RunCode.N != 4 {
		t.Errorf("the earlier fields are not kept: %+v %+v", r.WarrenCreateToFirstOutput, r.Code)
	}
	b, _ := json.Marshal(r)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for _, k := range []string{"baseline_runsc_run", "baseline_runsc_run_nonet", "cold_create_to_first_output", "warm_create_to_first_output", "pause", "resume", "fork_1", "fork_10", "code_create_to_first_result", "exec", "exec_paced", "spawn_in_sandbox", "run_code", "ratio_p50", "ratio_warm_p50", "idle_pss_bytes"} {
		if _, ok := m[k]; !ok {
			t.Errorf("-o json has no %s: %s", k, b)
		}
	}
}

// TestRunAll: with a pool, pause and fork, every series is measured; a warm create
// counts only when the pool's claim counter moved.
func TestRunAll(t *testing.T) {
	f := &fakeAPI{pool: true, fork: true, pause: func() int { return 0 }}
	r := run(t, f)
	for name, s := range map[string]Stats{"warm": r.Warm, "pause": r.Pause, "resume": r.Resume, "fork_1": r.Fork1, "fork_10": r.Fork10, "fork_10_call": r.Fork10Call} {
		if s.N == 0 {
			t.Errorf("%s not measured: %+v", name, s)
		}
	}
	if r.Warm.N != 3 || r.WarmMisses != 0 || r.Pause.N != 2 || r.Fork1.N != 2 || r.RatioWarmP50 <= 0 {
		t.Errorf("warm %d (misses %d), pause %d, fork_1 %d, ratio warm %v", r.Warm.N, r.WarmMisses, r.Pause.N, r.Fork1.N, r.RatioWarmP50)
	}
}

// TestRunWaitsForRefill: each round's baselines and cold create start once the pool
// the last warm claim emptied is full again, and settleAfter later; a pool that stays
// short is waited for only so long, and those rounds are counted.
func TestRunWaitsForRefill(t *testing.T) {
	tests := []struct {
		name          string
		refillPolls   int
		settleWait    time.Duration
		wantUnsettled int
	}{
		{"refills", 3, 0, 0},
		{"never refills", 1 << 30, 20 * time.Millisecond, 3}, // the warm-up create is a claim too
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeAPI{pool: true, fork: true, pause: func() int { return 0 }, refillPolls: tt.refillPolls}
			var busy, early int
			const settleAfter = 40 * time.Millisecond
			r := run(t, f, func(o *Options) {
				o.settleWait = tt.settleWait
				o.settleAfter = settleAfter
				o.baseline = func(context.Context, int) (time.Duration, error) {
					f.mu.Lock()
					defer f.mu.Unlock()
					if f.refilling > 0 {
						busy++
					}
					if !f.fullAt.IsZero() && time.Since(f.fullAt) < settleAfter {
						early++
					}
					return 10 * time.Millisecond, nil
				}
			})
			if r.PoolUnsettled != tt.wantUnsettled {
				t.Errorf("pool_unsettled_runs = %d, want %d", r.PoolUnsettled, tt.wantUnsettled)
			}
			if tt.wantUnsettled == 0 && (busy != 0 || early != 0) {
				t.Errorf("%d baselines ran while the pool was refilling, %d less than settleAfter after it was full", busy, early)
			}
			if r.Warm.N != 3 {
				t.Errorf("warm creates measured: %d, want 3", r.Warm.N)
			}
		})
	}
}

// TestRunSettlesAfterKill: the warm create and each code-interpreter create wait
// settleAfter after the kill before them, so that none is timed beside a teardown.
func TestRunSettlesAfterKill(t *testing.T) {
	const settleAfter = 40 * time.Millisecond
	f := &fakeAPI{pool: true, fork: true, pause: func() int { return 0 }, settle: settleAfter}
	r := run(t, f, func(o *Options) { o.settleAfter = settleAfter })
	if f.soonAfterKill != 0 {
		t.Errorf("%d timed creates came less than %v after a kill", f.soonAfterKill, settleAfter)
	}
	if r.Warm.N != 3 || r.CodeFirst.N != 2 {
		t.Errorf("measured %d warm and %d code-interpreter creates, want 3 and 2", r.Warm.N, r.CodeFirst.N)
	}
}

// TestRunPauseConflict: a 409 (a runtime that cannot checkpoint) is absent, not a failure.
func TestRunPauseConflict(t *testing.T) {
	r := run(t, &fakeAPI{pause: func() int { return 409 }})
	if r.Pause.N != 0 || !strings.Contains(r.Pause.Error, "cannot checkpoint") || r.Resume.N != 0 {
		t.Errorf("pause %+v, resume %+v", r.Pause, r.Resume)
	}
}

// TestRunForkQuota: a fork of 10 that the team's quota cuts short is absent with the
// server's reason, and its copies are killed.
func TestRunForkQuota(t *testing.T) {
	r := run(t, &fakeAPI{fork: true, forkQuota: 7})
	if r.Fork1.N == 0 || r.Fork10.N != 0 || !strings.Contains(r.Fork10.Error, "answered 7 sandboxes: quota max_cpu_cores exceeded") {
		t.Errorf("fork_1 %+v, fork_10 %+v", r.Fork1, r.Fork10)
	}
}

// TestWriteText: the table names every series, measured or not, with the reason.
func TestWriteText(t *testing.T) {
	r := run(t, &fakeAPI{})
	var b strings.Builder
	WriteText(&b, r)
	out := b.String()
	for _, want := range []string{"bare runsc run (baseline)", "exec {\"cmd\":\"true\"}", "exec, after a pause", "runCode(\"1+1\")", "not measured: the server keeps no warm pool", "fork of 10, per sandbox", "idle base sandbox PSS 39.1 MiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

// TestSpawnOutput: the in-sandbox spawn times are absent, with the reason, when the
// sandbox prints something else or too few of them.
func TestSpawnOutput(t *testing.T) {
	for _, c := range []struct {
		name string
		out  func(n int) string
		want string
	}{
		{"not numbers", func(int) string { return "Traceback (most recent call last):\n" }, "where a spawn time in microseconds belongs"},
		{"too few", func(n int) string { return strings.Repeat("900\n", n-1) }, "printed 6 spawn times, want 7"},
		{"negative", func(n int) string { return strings.Repeat("-1\n", n) }, "where a spawn time"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, &fakeAPI{spawnOut: c.out})
			if r.Spawn.N != 0 || !strings.Contains(r.Spawn.Error, c.want) {
				t.Errorf("spawn: %+v, want absent saying %q", r.Spawn, c.want)
			}
			if r.Exec.N != 7 {
				t.Errorf("the other series must still be measured: exec %+v", r.Exec)
			}
		})
	}
}
