package metering

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// TestRecover closes the meters of a sandbox that stopped and of one that vanished
// while the server was down, leaves a live one open (and books its downtime CPU at
// the next sample), and carries on past a lookup that fails.
func TestRecover(t *testing.T) {
	ctx := context.Background()
	st, src := newMemStore(), &counters{}
	stopped, vanished, live, broken := testSandbox("stopped"), testSandbox("vanished"), testSandbox("live"), testSandbox("broken")
	m1 := newMeter(t, st.fake(), src.source(), time.Now)
	for _, sb := range []*domain.Sandbox{stopped, vanished, live, broken} {
		src.set(sb.ID, Reading{At: t0.Add(10 * time.Second), CPUMicros: 1e6})
		if err := m1.Sample(ctx, sb); err != nil {
			t.Fatal(err)
		}
	}
	// The server dies. Meanwhile "stopped" ends at +25 s (its accounting is gone),
	// "vanished" leaves no row, "live" keeps burning CPU.
	src.gone("stopped")
	src.gone("vanished")
	src.set("live", Reading{At: t0.Add(60 * time.Second), CPUMicros: 30e6})
	stoppedRow := *stopped
	stoppedRow.State, stoppedRow.StoppedAt = domain.StateStopped, t0.Add(25*time.Second)
	get := func(_ context.Context, id string) (*domain.Sandbox, error) {
		switch id {
		case "stopped":
			return &stoppedRow, nil
		case "live":
			return live, nil
		case "broken":
			return nil, errors.New("database is locked")
		}
		return nil, domain.NotFound("sandbox", id)
	}
	m2 := newMeter(t, st.fake(), src.source(), time.Now)
	rep, err := m2.Recover(ctx, get)
	if err == nil || rep.Closed != 2 || rep.Continued != 1 {
		t.Fatalf("Recover: %+v, err %v; want 2 closed, 1 continued and the lookup error", rep, err)
	}
	cases := []struct {
		id       string
		closedAt time.Time // zero: open
		want     domain.UsageRow
	}{
		{"stopped", t0.Add(25 * time.Second), domain.UsageRow{WallMS: 25000, CPUMicros: 1e6}},
		{"vanished", t0.Add(10 * time.Second), domain.UsageRow{WallMS: 10000, CPUMicros: 1e6}},
		{"live", time.Time{}, domain.UsageRow{WallMS: 60000, CPUMicros: 30e6}},
		{"broken", time.Time{}, domain.UsageRow{WallMS: 10000, CPUMicros: 1e6}},
	}
	if err := m2.Sample(ctx, live); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if got := st.meter(c.id).ClosedAt; !got.Equal(c.closedAt) {
			t.Errorf("%s: ClosedAt %v, want %v", c.id, got, c.closedAt)
		}
		if got := st.total(c.id); got != c.want {
			t.Errorf("%s: booked %+v, want %+v", c.id, got, c.want)
		}
	}
	// A second Recover finds only the live and the broken meter open.
	rep, _ = m2.Recover(ctx, get)
	if rep.Closed != 0 || rep.Continued != 1 {
		t.Errorf("second Recover: %+v", rep)
	}
}

// TestRun samples running sandboxes on every tick, skips others, goes on past a
// sandbox that cannot be read, and returns when ctx ends.
func TestRun(t *testing.T) {
	st, src := newMemStore(), &counters{}
	m, err := New(Config{Store: st.fake(), Source: src.source(), Interval: 5 * time.Millisecond, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	ok, unreadable, starting := testSandbox("ok"), testSandbox("unreadable"), testSandbox("starting")
	starting.State = domain.StateStarting
	var cpu atomic.Int64
	src.set("starting", Reading{CPUMicros: 1})
	m.cfg.Source = &fakeSource{read: func(ctx context.Context, sb *domain.Sandbox) (Reading, error) {
		if sb.ID == "ok" {
			return Reading{At: time.Now(), CPUMicros: cpu.Add(1000)}, nil
		}
		return src.source().Read(ctx, sb)
	}}
	var lists atomic.Int64
	live := func(context.Context) ([]*domain.Sandbox, error) {
		if lists.Add(1) == 2 {
			return nil, errors.New("store hiccup")
		}
		return []*domain.Sandbox{unreadable, ok, starting}, nil
	}
	if !m.LastTick().IsZero() {
		t.Errorf("last tick %v before Run, want zero", m.LastTick())
	}
	before := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx, live); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for st.ncalls() < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if at := m.LastTick(); at.Before(before) {
		t.Errorf("last tick %v, want after Run started (%v)", at, before)
	}
	n := st.ncalls()
	if n < 5 {
		t.Fatalf("%d samples written in 10 s at a 5 ms interval", n)
	}
	if got := st.total("ok").CPUMicros; got != st.meter("ok").CPUMicros || got == 0 {
		t.Errorf("booked %d CPU µs, meter at %d", got, st.meter("ok").CPUMicros)
	}
	if st.ncalls() != st.callsFor("ok") {
		t.Errorf("writes for sandboxes other than the running, readable one: %d of %d", st.ncalls()-st.callsFor("ok"), st.ncalls())
	}
	time.Sleep(20 * time.Millisecond)
	if st.ncalls() != n {
		t.Errorf("%d writes after Run returned", st.ncalls()-n)
	}
}

func (s *memStore) callsFor(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.meter.SandboxID == id {
			n++
		}
	}
	return n
}

// TestPrune drops cached meters of sandboxes no longer listed; the store keeps them and
// the next sample reloads.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	st, src := newMemStore(), &counters{}
	m := newMeter(t, st.fake(), src.source(), time.Now)
	sb := testSandbox("s1")
	src.set("s1", Reading{At: t0.Add(time.Second), CPUMicros: 10})
	if err := m.Sample(ctx, sb); err != nil {
		t.Fatal(err)
	}
	m.prune(map[string]bool{})
	if len(m.entries) != 0 {
		t.Fatalf("cache after prune: %d entries", len(m.entries))
	}
	src.set("s1", Reading{At: t0.Add(2 * time.Second), CPUMicros: 25})
	if err := m.Sample(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if got := st.total("s1"); got.CPUMicros != 25 || got.WallMS != 2000 {
		t.Errorf("booked %+v", got)
	}
}

func TestNewConfig(t *testing.T) {
	st, src := newMemStore(), &counters{}
	cases := []struct {
		cfg Config
		ok  bool
	}{
		{Config{Store: st.fake(), Source: src.source()}, true},
		{Config{Source: src.source()}, false},
		{Config{Store: st.fake()}, false},
		{Config{Store: st.fake(), Source: src.source(), Interval: -1}, false},
	}
	for i, c := range cases {
		m, err := New(c.cfg)
		if (err == nil) != c.ok {
			t.Errorf("case %d: err %v, want ok=%v", i, err, c.ok)
		}
		if err == nil && (m.cfg.Interval != 10*time.Second || m.cfg.Parallel != 4) {
			t.Errorf("case %d: defaults %v %d", i, m.cfg.Interval, m.cfg.Parallel)
		}
	}
}
