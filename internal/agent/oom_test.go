package agent

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a log sink the watchdog's goroutine and the test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// oomChild is a real process for the watchdog to kill.
type oomChild struct {
	cmd    *exec.Cmd
	exited chan struct{}
	state  *os.ProcessState
}

func startOOMChild(t *testing.T) *oomChild {
	t.Helper()
	c := &oomChild{cmd: exec.Command("sleep", "60"), exited: make(chan struct{})}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait in the background only after the test has looked at the zombie: the
	// watchdog must see a killed child as gone before anyone reaps it.
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		c.wait(t)
	})
	return c
}

func (c *oomChild) pid() int { return c.cmd.Process.Pid }

// wait reaps the child (once) and returns how it ended.
func (c *oomChild) wait(t *testing.T) *os.ProcessState {
	t.Helper()
	select {
	case <-c.exited:
	default:
		_ = c.cmd.Wait()
		c.state = c.cmd.ProcessState
		close(c.exited)
	}
	return c.state
}

// killedWithin reports whether the child died of SIGKILL, waiting up to d.
func (c *oomChild) killedWithin(t *testing.T, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if p, err := readProcStat(c.pid()); err != nil || p.zombie {
			ws := c.wait(t).Sys().(syscall.WaitStatus)
			return ws.Signaled() && ws.Signal() == syscall.SIGKILL
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// realProcs lists the given real processes with their real start times and fake
// resident sizes, so that only they can ever be killed.
func realProcs(rss map[int]int64) func() ([]procMem, error) {
	return func() ([]procMem, error) {
		var out []procMem
		for pid, r := range rss {
			p, err := readProcStat(pid)
			if err != nil {
				continue // gone
			}
			p.rss = r
			out = append(out, p)
		}
		return out, nil
	}
}

func TestOOMWatchdogKillsLargestProcess(t *testing.T) {
	small, big := startOOMChild(t), startOOMChild(t)
	const limit = 256 << 20
	var logs syncBuffer
	w := startOOMWatchdog(oomConfig{
		limit:       limit,
		minInterval: 5 * time.Millisecond,
		maxInterval: 5 * time.Millisecond,
		// Over the limit until the big one is gone, as when it is the one allocating.
		usage: func() (int64, error) {
			if p, err := readProcStat(big.pid()); err == nil && !p.zombie {
				return limit, nil
			}
			return limit / 2, nil
		},
		// The test binary (the agent's stand-in) is the largest and must be spared.
		procs: realProcs(map[int]int64{small.pid(): 10 << 20, big.pid(): 200 << 20, os.Getpid(): 1 << 30}),
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	defer w.close()

	if !big.killedWithin(t, 5*time.Second) {
		t.Fatalf("the largest process was not killed at 100%% of the limit; log:\n%s", logs.String())
	}
	time.Sleep(100 * time.Millisecond) // 20 more samples, all below the threshold
	if p, err := readProcStat(small.pid()); err != nil || p.zombie {
		t.Errorf("the smaller process was killed too")
	}
	if n := w.killCount(); n != 1 {
		t.Errorf("kill count %d, want 1", n)
	}
	want := `level=WARN msg="out of memory: killed process" pid=` + strconv.Itoa(big.pid()) + " name=sleep rss=209715200"
	if !strings.Contains(logs.String(), want) || !strings.Contains(logs.String(), "limit=268435456") {
		t.Errorf("log does not say so; want %q in:\n%s", want, logs.String())
	}
}

func TestOOMWatchdogBelowThreshold(t *testing.T) {
	c := startOOMChild(t)
	const limit = 256 << 20
	w := startOOMWatchdog(oomConfig{
		limit:       limit,
		minInterval: 5 * time.Millisecond,
		maxInterval: 5 * time.Millisecond,
		usage:       func() (int64, error) { return limit / 100 * 94, nil },
		procs:       realProcs(map[int]int64{c.pid(): 200 << 20}),
	}, slog.New(slog.DiscardHandler))
	time.Sleep(100 * time.Millisecond)
	w.close()
	if p, err := readProcStat(c.pid()); err != nil || p.zombie || w.killCount() != 0 {
		t.Errorf("a process was killed at 94%% of the limit (kills %d)", w.killCount())
	}
}

// TestOOMWatchdogKillsInTurn: while use stays over the limit, the watchdog kills one
// process at a time, the next only once the previous one is gone.
func TestOOMWatchdogKillsInTurn(t *testing.T) {
	first, second := startOOMChild(t), startOOMChild(t)
	const limit = 64 << 20
	var logs syncBuffer
	w := startOOMWatchdog(oomConfig{
		limit:       limit,
		minInterval: 5 * time.Millisecond,
		maxInterval: 5 * time.Millisecond,
		usage:       func() (int64, error) { return limit, nil },
		procs:       realProcs(map[int]int64{first.pid(): 30 << 20, second.pid(): 20 << 20}),
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	defer w.close()
	if !first.killedWithin(t, 5*time.Second) || !second.killedWithin(t, 5*time.Second) {
		t.Fatalf("not both processes were killed (kills %d); log:\n%s", w.killCount(), logs.String())
	}
	if n := w.killCount(); n != 2 {
		t.Errorf("kill count %d, want 2", n)
	}
	i1 := strings.Index(logs.String(), "pid="+strconv.Itoa(first.pid())+" ")
	i2 := strings.Index(logs.String(), "pid="+strconv.Itoa(second.pid())+" ")
	if i1 < 0 || i2 < 0 || i1 > i2 {
		t.Errorf("want the larger process killed first, then the other; log:\n%s", logs.String())
	}
}

// TestOOMWatchdogSparesRecycledPID: a listed process whose pid now names another
// process (a different start time) is not killed.
func TestOOMWatchdogSparesRecycledPID(t *testing.T) {
	c := startOOMChild(t)
	const limit = 64 << 20
	w := startOOMWatchdog(oomConfig{
		limit:       limit,
		minInterval: 5 * time.Millisecond,
		maxInterval: 5 * time.Millisecond,
		usage:       func() (int64, error) { return limit, nil },
		procs: func() ([]procMem, error) {
			p, err := readProcStat(c.pid())
			p.start++
			p.rss = 50 << 20
			return []procMem{p}, err
		},
	}, slog.New(slog.DiscardHandler))
	time.Sleep(100 * time.Millisecond)
	w.close()
	if p, err := readProcStat(c.pid()); err != nil || p.zombie || w.killCount() != 0 {
		t.Errorf("a process with the listed pid but another start time was killed")
	}
}

func TestOOMProcStat(t *testing.T) {
	line := "42 (a (weird) name) S 1 1 1 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 12345 10000000 2560 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	p, err := parseProcStat(42, []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if p.name != "a (weird) name" || p.start != 12345 || p.rss != 2560*pageSize || p.zombie {
		t.Errorf("parsed %+v", p)
	}
	if p, err := parseProcStat(7, []byte("7 (x) Z 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0 0")); err != nil || !p.zombie || p.start != 99 {
		t.Errorf("zombie: %+v %v", p, err)
	}
	if _, err := parseProcStat(7, []byte("7 (x) S 1")); err == nil {
		t.Error("a short line parsed")
	}
	self, err := readProcStat(os.Getpid())
	if err != nil || self.rss <= 0 || self.start == 0 {
		t.Errorf("own /proc/self/stat: %+v %v", self, err)
	}
	if used, err := readMemUsed(); err != nil || used <= 0 {
		t.Errorf("memory in use from /proc/meminfo: %d %v", used, err)
	}
}

func TestOOMConfig(t *testing.T) {
	if _, err := ParseConfig([]byte(`{"memory_limit_bytes":-1}`)); err == nil {
		t.Error("a negative memory_limit_bytes was accepted")
	}
	cfg, err := ParseConfig([]byte(`{"memory_limit_bytes":268435456}`))
	if err != nil || cfg.MemoryLimitBytes != 256<<20 {
		t.Errorf("memory_limit_bytes: %d %v", cfg.MemoryLimitBytes, err)
	}
	// Not PID 1: the agent must not watch (and kill) processes outside a sandbox.
	a, err := New(Config{MemoryLimitBytes: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(t.Context())
	if a.oom != nil {
		t.Error("a watchdog was started by an agent that is not PID 1")
	}
}

// TestOOMWatchdogCountsExitingVictims: the resident set of a killed process that has
// not exited yet counts as about to be freed. The exiting victim is a live child here,
// never signalled, standing in for a large process that takes a while to exit.
func TestOOMWatchdogCountsExitingVictims(t *testing.T) {
	const limit = 100 << 20 // threshold 95 MiB
	for _, tc := range []struct {
		name       string
		victimRSS  int64
		victimUsed int64 // use when the victim was killed
		wantKill   bool
	}{
		{"the victim's memory brings use under the threshold", 40 << 20, limit, false},
		{"use stays over the threshold without the victim", 2 << 20, limit, true},
		{"use grows while the victim exits", 40 << 20, limit - 10<<20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exiting, other := startOOMChild(t), startOOMChild(t)
			w := newOOMWatchdog(oomConfig{
				limit: limit,
				usage: func() (int64, error) { return limit, nil },
				procs: realProcs(map[int]int64{exiting.pid(): 90 << 20, other.pid(): 20 << 20}),
			}, slog.New(slog.DiscardHandler))
			v, err := readProcStat(exiting.pid())
			if err != nil {
				t.Fatal(err)
			}
			v.rss = tc.victimRSS
			w.victims = []victim{{procMem: v, killedAt: time.Now(), used: tc.victimUsed}}
			if d := w.check(); d != oomMinInterval {
				t.Errorf("next sample in %v while a victim exits, want %v", d, oomMinInterval)
			}
			if killed := other.killedWithin(t, 100*time.Millisecond); killed != tc.wantKill {
				t.Errorf("the other process killed: %v, want %v", killed, tc.wantKill)
			}
			if p, err := readProcStat(exiting.pid()); err != nil || p.zombie {
				t.Error("the exiting victim was killed again")
			}
		})
	}
}

func TestOOMWatchdogSamplingInterval(t *testing.T) {
	w := newOOMWatchdog(oomConfig{limit: 1 << 30}, slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		room int64
		want time.Duration
	}{
		{-1, oomMinInterval},                      // over the threshold
		{10 << 20, oomMinInterval},                // 5 ms at 2 GiB/s
		{200 << 20, 200 * time.Second / 2 / 1024}, // ~98 ms
		{900 << 20, 900 * time.Second / 2 / 1024}, // ~440 ms
		{4 << 30, oomMaxInterval},
	} {
		if got := w.next(tc.room); got != tc.want {
			t.Errorf("next sample with %d MiB of room: %v, want %v", tc.room>>20, got, tc.want)
		}
	}
}

// TestOOMWatchdogKillsSeveralInOnePass: when use is far over the threshold (several
// processes allocating at once), one sample kills, largest first, as many processes as
// it takes to get under it, and no more.
func TestOOMWatchdogKillsSeveralInOnePass(t *testing.T) {
	a, b, c := startOOMChild(t), startOOMChild(t), startOOMChild(t)
	const limit = 100 << 20 // threshold 95 MiB
	w := newOOMWatchdog(oomConfig{
		limit: limit,
		usage: func() (int64, error) { return 2 * limit, nil },
		procs: realProcs(map[int]int64{a.pid(): 60 << 20, b.pid(): 50 << 20, c.pid(): 10 << 20}),
	}, slog.New(slog.DiscardHandler))
	w.check()
	if !a.killedWithin(t, time.Second) || !b.killedWithin(t, time.Second) {
		t.Errorf("the two largest processes were not both killed in one pass")
	}
	if c.killedWithin(t, 50*time.Millisecond) {
		t.Errorf("the smallest process was killed too, though the others free enough")
	}
	if n := w.killCount(); n != 2 {
		t.Errorf("kill count %d, want 2", n)
	}
}

func TestOOMKillsInMetrics(t *testing.T) {
	a, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.oom = startOOMWatchdog(oomConfig{
		limit: 1 << 30,
		usage: func() (int64, error) { return 0, nil },
		procs: func() ([]procMem, error) { return nil, nil },
	}, slog.New(slog.DiscardHandler))
	defer a.Shutdown(t.Context())
	a.oom.kills.Add(2)
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var m struct {
		OOMKills *int64 `json:"oom_kills"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m.OOMKills == nil || *m.OOMKills != 2 {
		t.Errorf("GET /metrics: %d %s, want oom_kills 2", rec.Code, rec.Body)
	}
}
