package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/agentclient"
	"github.com/warren-sh/warren/internal/domain"
)

// replay is what a follower of a log saw.
type replay struct {
	pid    uint32
	events []domain.ExecEvent
	res    *domain.ExecResult
	err    error
}

// text joins the output events, stderr in [brackets], gap notices as {gap N}.
func (r replay) text() string {
	var b strings.Builder
	for _, ev := range r.events {
		switch {
		case ev.Stdout != nil:
			b.Write(ev.Stdout)
		case ev.Stderr != nil:
			var n int64
			if _, err := fmt.Sscanf(string(ev.Stderr), "\n[warren: %d bytes of output dropped here", &n); err == nil {
				fmt.Fprintf(&b, "{gap %d}", n)
			} else {
				fmt.Fprintf(&b, "[%s]", ev.Stderr)
			}
		}
	}
	return b.String()
}

// followAll follows l to its end with a background context.
func followAll(l *procLog) replay {
	var r replay
	r.res, r.err = l.follow(context.Background(), func(ev domain.ExecEvent) error {
		if ev.PID != 0 {
			r.pid = ev.PID
		}
		r.events = append(r.events, ev)
		return nil
	})
	return r
}

// TestProcLogBounds: what is kept of an output is its first headMax and last tailMax
// (chunks costing chunkOverhead extra), with one notice for what lies between.
func TestProcLogBounds(t *testing.T) {
	o := chunkOverhead
	rep := func(s string, n int) string { return strings.Repeat(s, n) }
	cases := []struct {
		name             string
		headMax, tailMax int
		chunks           []string // "!" prefix: stderr
		want             string
	}{
		{"all kept", 1000, 1000, []string{"hello ", "!oops", "world"}, "hello [oops]world"},
		{"middle dropped", 100 + o, 2 * (50 + o), []string{rep("a", 50), rep("b", 50), rep("c", 50), rep("d", 50)},
			rep("a", 50) + "{gap 50}" + rep("c", 50) + rep("d", 50)},
		{"chunk split between head and tail", 10 + o, 1000, []string{"0123456789abcdef"}, "0123456789abcdef"},
		{"split chunk's rest trimmed", 10 + o, 3 + o, []string{"0123456789abcdef"}, "0123456789{gap 3}def"},
		{"only chunk trimmed", 0, 4 + o, []string{"hello world"}, "{gap 7}orld"},
		{"many tiny chunks", 3 * (1 + o), 2 * (1 + o), strings.Split("abcdefghij", ""), "abc{gap 5}ij"},
		{"stderr kept apart", 0, 2 * (1 + o), []string{"a", "!b", "c", "!d"}, "{gap 2}c[d]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newProcLog(42, c.headMax, c.tailMax)
			for _, ch := range c.chunks {
				data, stderr := strings.CutPrefix(ch, "!")
				l.append(stderr, []byte(data))
			}
			l.finish(&domain.ExecResult{ExitCode: 3, Error: "exit status 3", Stdout: []byte("dropped")}, nil)
			r := followAll(l)
			if r.err != nil || r.pid != 42 || r.events[0].PID != 42 {
				t.Fatalf("follow: pid %d, first %+v, err %v", r.pid, r.events[0], r.err)
			}
			if got := r.text(); got != c.want {
				t.Errorf("replayed %q, want %q", got, c.want)
			}
			if last := r.events[len(r.events)-1]; last.End == nil || r.res == nil || r.res.ExitCode != 3 || r.res.Error != "exit status 3" || r.res.Stdout != nil {
				t.Errorf("end event %+v, result %+v", last, r.res)
			}
			if l.headCost > c.headMax || l.tailCost > c.tailMax {
				t.Errorf("kept head %d tail %d, bounds %d and %d", l.headCost, l.tailCost, c.headMax, c.tailMax)
			}
		})
	}
}

// TestProcLogBoundsRandom: for any output, the replay is a prefix of it, a notice of
// exactly the bytes left out and a suffix of it, within the bounds.
func TestProcLogBoundsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		headMax, tailMax := rng.IntN(2000), chunkOverhead+1+rng.IntN(2000)
		l := newProcLog(1, headMax, tailMax)
		var all bytes.Buffer
		for range rng.IntN(60) {
			chunk := make([]byte, 1+rng.IntN(300))
			for j := range chunk {
				chunk[j] = 'a' + byte(rng.IntN(26))
			}
			all.Write(chunk)
			l.append(false, chunk)
			if l.headCost > headMax || l.tailCost > tailMax {
				t.Fatalf("case %d: kept head %d tail %d, bounds %d and %d", i, l.headCost, l.tailCost, headMax, tailMax)
			}
		}
		l.finish(&domain.ExecResult{}, nil)
		got := followAll(l).text()
		full := all.String()
		head, rest, gapped := strings.Cut(got, "{gap ")
		if !gapped {
			if got != full {
				t.Fatalf("case %d: nothing dropped but replay %q != output %q", i, got, full)
			}
			continue
		}
		var n int
		fmt.Sscanf(rest, "%d}", &n)
		tail := rest[strings.Index(rest, "}")+1:]
		if !strings.HasPrefix(full, head) || !strings.HasSuffix(full, tail) || len(head)+n+len(tail) != len(full) || n <= 0 {
			t.Fatalf("case %d: replay head %d bytes, gap %d, tail %d bytes of %d", i, len(head), n, len(tail), len(full))
		}
	}
}

// collector follows a log in a goroutine.
type collector struct {
	mu     sync.Mutex
	out    strings.Builder
	done   chan struct{}
	res    *domain.ExecResult
	err    error
	gate   chan struct{} // when set, the first output event waits for it
	atGate chan struct{} // closed when the first output event reached the gate
}

func startFollow(ctx context.Context, l *procLog, gate chan struct{}) *collector {
	c := &collector{done: make(chan struct{}), gate: gate, atGate: make(chan struct{})}
	go func() {
		defer close(c.done)
		res, err := l.follow(ctx, func(ev domain.ExecEvent) error {
			if ev.Stdout == nil && ev.Stderr == nil {
				return nil
			}
			if c.gate != nil {
				close(c.atGate)
				<-c.gate
				c.gate = nil
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			c.out.Write(ev.Stdout)
			if ev.Stderr != nil {
				c.out.WriteString(replay{events: []domain.ExecEvent{ev}}.text())
			}
			return nil
		})
		c.mu.Lock()
		c.res, c.err = res, err
		c.mu.Unlock()
	}()
	return c
}

func (c *collector) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

func (c *collector) wait(t *testing.T) (*domain.ExecResult, error) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the follower did not end within 10s")
	}
	return c.res, c.err
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestProcLogReplayAndFollow: followers that come early, late and after the end all
// see the whole output in order and the end; one that goes away leaves the others be.
func TestProcLogReplayAndFollow(t *testing.T) {
	l := newProcLog(7, 1<<20, 1<<20)
	l.append(false, []byte("first\n"))
	early := startFollow(context.Background(), l, nil)
	waitUntil(t, "the early follower got the replay", func() bool { return early.text() == "first\n" })
	leaving, leave := context.WithCancelCause(context.Background())
	defer leave(nil)
	gone := startFollow(leaving, l, nil)
	var want strings.Builder
	want.WriteString("first\n")
	var late []*collector
	for i := range 200 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		l.append(false, []byte(line))
		if i%50 == 0 {
			late = append(late, startFollow(context.Background(), l, nil))
		}
		if i == 100 {
			leave(errors.New("client went away"))
		}
	}
	if _, err := gone.wait(t); err == nil || err.Error() != "client went away" {
		t.Errorf("the follower whose context ended: %v, want its cause", err)
	}
	l.finish(&domain.ExecResult{ExitCode: -1, Error: "signal: killed", TimedOut: true}, nil)
	after := startFollow(context.Background(), l, nil)
	for i, c := range append([]*collector{early, after}, late...) {
		res, err := c.wait(t)
		if err != nil || res == nil || !res.TimedOut || res.ExitCode != -1 {
			t.Errorf("follower %d: %+v, %v", i, res, err)
		}
		if got := c.text(); got != want.String() {
			t.Errorf("follower %d saw %d bytes, want the %d written", i, len(got), want.Len())
		}
	}
}

// TestProcLogSlowFollower: a follower that falls behind by more than the tail is told
// how much it missed, and the recording never waits for it.
func TestProcLogSlowFollower(t *testing.T) {
	o := chunkOverhead
	l := newProcLog(1, 0, 2*(10+o))
	gate := make(chan struct{})
	l.append(false, []byte("0123456789"))
	slow := startFollow(context.Background(), l, gate)
	<-slow.atGate // it holds the first chunk
	for _, s := range []string{"aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"} {
		l.append(false, []byte(s)) // does not block on the slow follower
	}
	l.finish(&domain.ExecResult{}, nil)
	close(gate)
	if _, err := slow.wait(t); err != nil {
		t.Fatal(err)
	}
	if got, want := slow.text(), "0123456789{gap 10}bbbbbbbbbbcccccccccc"; got != want {
		t.Errorf("slow follower saw %q, want %q", got, want)
	}
}

// TestProcLogUnknownEnd: when the recording ends without the process's end, the
// followers get the output and then the recording's error.
func TestProcLogUnknownEnd(t *testing.T) {
	l := newProcLog(1, 100, 100)
	l.append(true, []byte("x"))
	c := startFollow(context.Background(), l, nil)
	lost := domain.Errorf(domain.KindUnavailable, "lost")
	l.finish(nil, lost)
	l.append(false, []byte("ignored"))
	if res, err := c.wait(t); res != nil || !errors.Is(err, lost) || c.text() != "[x]" {
		t.Errorf("%+v, %v, output %q", res, err, c.text())
	}
	l2 := newProcLog(1, 100, 100)
	l2.finish(nil, nil)
	if r := followAll(l2); !domain.IsKind(r.err, domain.KindUnavailable) {
		t.Errorf("no result and no error: %v, want unavailable", r.err)
	}
}

// TestProcLogsRetention: logs of ended processes go after keepAfterEnd (at once when
// the recording failed); at the cap the first ended one makes room, and when all
// run the new process is not recorded.
func TestProcLogsRetention(t *testing.T) {
	r := newProcLogs(retention{headBytes: 100, tailBytes: 100, maxProcs: 2, keepAfterEnd: 50 * time.Millisecond, maxLifetimes: 1})
	a, b := r.add(1), r.add(2)
	if a == nil || b == nil || r.get(1) != a || r.get(2) != b {
		t.Fatal("adding two logs under the cap")
	}
	if c := r.add(3); c != nil || r.get(3) != nil {
		t.Fatal("a third log while both kept processes run")
	}
	b.finish(&domain.ExecResult{}, nil)
	r.ended(b, false)
	time.Sleep(5 * time.Millisecond)
	a.finish(&domain.ExecResult{}, nil)
	r.ended(a, false)
	c := r.add(3)
	if c == nil || r.get(2) != nil || r.get(1) != a {
		t.Fatalf("at the cap: added %v, kept 1 %v, 2 %v; want 2 (ended first) displaced", c, r.get(1), r.get(2))
	}
	waitUntil(t, "the ended log is dropped after keepAfterEnd", func() bool { return r.get(1) == nil })
	if r.get(3) != c {
		t.Error("the running process's log was dropped")
	}
	c.finish(nil, errors.New("lost"))
	r.ended(c, true)
	if r.get(3) != nil || r.len() != 0 {
		t.Error("a failed recording is kept")
	}
	// A reused pid displaces the old log.
	d := r.add(4)
	d.finish(&domain.ExecResult{}, nil)
	r.ended(d, false)
	if e := r.add(4); e == nil || e == d || r.get(4) != e {
		t.Error("a new process with the pid of an ended one")
	}

	life := agentclient.Lifetime{Timeout: time.Second, Deadline: time.Now().Add(time.Second)}
	r.remember(9, life)
	r.remember(10, life) // over maxLifetimes
	if r.lifetime(9) != life || r.lifetime(10) != (agentclient.Lifetime{}) {
		t.Errorf("lifetimes: 9 %+v, 10 %+v", r.lifetime(9), r.lifetime(10))
	}
	r.close()
	if r.len() != 0 || r.add(5) != nil || r.lifetime(9) != (agentclient.Lifetime{}) {
		t.Error("a closed procLogs keeps or takes logs")
	}
}

// TestLogsEndWithSandbox: a sandbox's logs go when its context ends.
func TestLogsEndWithSandbox(t *testing.T) {
	ls := &liveSandbox{}
	ls.ctx, ls.cancel = context.WithCancelCause(context.Background())
	if existingLogs(ls) != nil {
		t.Fatal("logs before any process")
	}
	logs := logsOf(ls)
	if logsOf(ls) != logs || existingLogs(ls) != logs {
		t.Fatal("logsOf is not stable")
	}
	l := logs.add(1)
	follower := startFollow(ls.ctx, l, nil)
	ls.cancel(errors.New("sandbox stopped"))
	waitUntil(t, "the logs are dropped", func() bool { return existingLogs(ls) == nil && logs.len() == 0 })
	if _, err := follower.wait(t); err == nil || err.Error() != "sandbox stopped" {
		t.Errorf("follower: %v, want the sandbox's end", err)
	}
}
