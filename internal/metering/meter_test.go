package metering

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// TestBeginSample begins a meter and samples it twice: each step is one store write of
// the meter and its deltas, which are the growth since the previous sample.
func TestBeginSample(t *testing.T) {
	ctx := context.Background()
	st, src, clk := newMemStore(), &counters{}, &clock{t: t0}
	m := newMeter(t, st.fake(), src.source(), clk.now)
	sb := testSandbox("s1")
	if err := m.Begin(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if got := st.meter("s1"); !got.StartedAt.Equal(t0) || !got.SampledAt.Equal(t0) || got.TeamID != "team1" || got.CPUMicros != 0 || st.ncalls() != 1 {
		t.Fatalf("after Begin: meter %+v, %d writes", got, st.ncalls())
	}
	if err := m.Begin(ctx, sb); err != nil || st.ncalls() != 1 {
		t.Fatalf("second Begin: err %v, %d writes, want no new write", err, st.ncalls())
	}

	steps := []struct {
		at   time.Duration
		r    Reading
		want domain.UsageDelta
	}{
		{10 * time.Second, Reading{CPUMicros: 5e6, MemoryBytes: 256 * mib, DiskBytes: 100 * mib, NetRxBytes: 1000, NetTxBytes: 2000},
			domain.UsageDelta{WallMS: 10000, CPUMicros: 5e6, MemMBSeconds: 2560, DiskMBSeconds: 1000, NetRxBytes: 1000, NetTxBytes: 2000}},
		{20 * time.Second, Reading{CPUMicros: 7e6, MemoryBytes: 128 * mib, DiskBytes: 100 * mib, NetRxBytes: 1500, NetTxBytes: 2000},
			domain.UsageDelta{WallMS: 10000, CPUMicros: 2e6, MemMBSeconds: 1280, DiskMBSeconds: 1000, NetRxBytes: 500}},
		// The runtime's accounting was recreated: the counters count from zero.
		{30 * time.Second, Reading{CPUMicros: 1e6, MemoryBytes: 0, DiskBytes: 0, NetRxBytes: 10, NetTxBytes: 20},
			domain.UsageDelta{WallMS: 10000, CPUMicros: 1e6, NetRxBytes: 10, NetTxBytes: 20}},
	}
	for i, s := range steps {
		s.r.At = t0.Add(s.at)
		src.set("s1", s.r)
		before := st.ncalls()
		if err := m.Sample(ctx, sb); err != nil {
			t.Fatal(err)
		}
		if st.ncalls() != before+1 {
			t.Fatalf("step %d: %d writes, want one", i, st.ncalls()-before)
		}
		c := st.calls[len(st.calls)-1]
		s.want.SandboxID, s.want.TeamID, s.want.TemplateID, s.want.Day = "s1", "team1", "base", dayOf(t0)
		if len(c.deltas) != 1 || c.deltas[0] != s.want {
			t.Errorf("step %d: deltas %+v, want %+v", i, c.deltas, s.want)
		}
		if !c.meter.SampledAt.Equal(s.r.At) || c.meter.CPUMicros != s.r.CPUMicros || c.meter.NetRxBytes != s.r.NetRxBytes || c.meter.NetTxBytes != s.r.NetTxBytes {
			t.Errorf("step %d: saved meter %+v, want the reading %+v", i, c.meter, s.r)
		}
	}
}

// TestSampleWithoutBegin meters a sandbox that never had Begin from its start, in one
// write.
func TestSampleWithoutBegin(t *testing.T) {
	st, src := newMemStore(), &counters{}
	m := newMeter(t, st.fake(), src.source(), time.Now)
	src.set("s1", Reading{At: t0.Add(5 * time.Second), CPUMicros: 42})
	if err := m.Sample(context.Background(), testSandbox("s1")); err != nil {
		t.Fatal(err)
	}
	got := st.total("s1")
	if st.ncalls() != 1 || got.WallMS != 5000 || got.CPUMicros != 42 || !st.meter("s1").StartedAt.Equal(t0) {
		t.Errorf("%d writes, usage %+v, meter %+v", st.ncalls(), got, st.meter("s1"))
	}
}

// TestSampleMidnight books a sample over midnight into two day buckets of 10 s each.
func TestSampleMidnight(t *testing.T) {
	ctx := context.Background()
	st, src := newMemStore(), &counters{}
	m := newMeter(t, st.fake(), src.source(), time.Now)
	sb := testSandbox("s1")
	sb.StartedAt = time.Date(2025, 3, 14, 23, 59, 50, 0, time.UTC)
	if err := m.Begin(ctx, sb); err != nil {
		t.Fatal(err)
	}
	src.set("s1", Reading{At: time.Date(2025, 3, 15, 0, 0, 10, 0, time.UTC), CPUMicros: 4e6, MemoryBytes: 64 * mib})
	if err := m.Sample(ctx, sb); err != nil {
		t.Fatal(err)
	}
	for _, day := range []time.Time{time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)} {
		if got := st.day("s1", day); got.WallMS != 10000 || got.CPUMicros != 2e6 || got.MemMBSeconds != 640 {
			t.Errorf("%s: %+v, want 10 s, 2 CPU s, 640 MB·s", day.Format(time.DateOnly), got)
		}
	}
	if n := len(st.calls[len(st.calls)-1].deltas); n != 2 || st.ncalls() != 2 {
		t.Errorf("%d deltas in the last of %d writes, want 2 in one", n, st.ncalls())
	}
}

// TestGaugesExact samples every 7 ms with a gauge that is not a whole number of MiB:
// the booked MB·s are the floor of the exact integral.
func TestGaugesExact(t *testing.T) {
	ctx := context.Background()
	st, src := newMemStore(), &counters{}
	m := newMeter(t, st.fake(), src.source(), time.Now)
	sb := testSandbox("s1")
	const n, step, mem, disk = 2000, 7, 3*mib + 333, mib/3 + 1
	for i := 1; i <= n; i++ {
		src.set("s1", Reading{At: t0.Add(time.Duration(i*step) * time.Millisecond), MemoryBytes: mem, DiskBytes: disk})
		if err := m.Sample(ctx, sb); err != nil {
			t.Fatal(err)
		}
	}
	got := st.total("s1")
	wantMem := int64(mem) * n * step / byteMillisPerMBs
	wantDisk := int64(disk) * n * step / byteMillisPerMBs
	if got.MemMBSeconds != wantMem || got.DiskMBSeconds != wantDisk || got.WallMS != n*step {
		t.Errorf("booked %d MB·s memory, %d MB·s disk, %d ms; want %d, %d, %d", got.MemMBSeconds, got.DiskMBSeconds, got.WallMS, wantMem, wantDisk, n*step)
	}
}

// TestFailedWrite: a sample whose write fails books nothing and does not advance the
// meter, so the next sample books the whole interval once.
func TestFailedWrite(t *testing.T) {
	ctx := context.Background()
	st, src := newMemStore(), &counters{}
	m := newMeter(t, st.fake(), src.source(), time.Now)
	sb := testSandbox("s1")
	for i, cpu := range []int64{1e6, 3e6, 6e6} {
		src.set("s1", Reading{At: t0.Add(time.Duration(i+1) * 10 * time.Second), CPUMicros: cpu})
		st.failNext = i == 1
		err := m.Sample(ctx, sb)
		if (err != nil) != (i == 1) || (i == 1 && !domain.IsKind(err, domain.KindUnavailable)) {
			t.Fatalf("sample %d: err %v", i, err)
		}
	}
	if got := st.total("s1"); got.CPUMicros != 6e6 || got.WallMS != 30000 {
		t.Errorf("booked %+v, want 6 CPU s over 30 s", got)
	}
}

// TestRestartBooksDowntime: a new Meter on the same store (a restarted server) continues
// from the stored counters, so CPU used while the server was down is booked, and the
// sum of booked CPU equals the runtime's cumulative counter.
func TestRestartBooksDowntime(t *testing.T) {
	ctx := context.Background()
	st, src := newMemStore(), &counters{}
	sb := testSandbox("s1")
	m1 := newMeter(t, st.fake(), src.source(), time.Now)
	if err := m1.Begin(ctx, sb); err != nil {
		t.Fatal(err)
	}
	src.set("s1", Reading{At: t0.Add(10 * time.Second), CPUMicros: 4e6})
	if err := m1.Sample(ctx, sb); err != nil {
		t.Fatal(err)
	}
	// m1 is gone (kill -9); the sandbox keeps running and burning CPU.
	m2 := newMeter(t, st.fake(), src.source(), time.Now)
	rep, err := m2.Recover(ctx, func(context.Context, string) (*domain.Sandbox, error) { return sb, nil })
	if err != nil || rep.Continued != 1 || rep.Closed != 0 {
		t.Fatalf("Recover: %+v, %v", rep, err)
	}
	src.set("s1", Reading{At: t0.Add(100 * time.Second), CPUMicros: 50e6})
	if err := m2.Sample(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if got := st.total("s1"); got.CPUMicros != 50e6 || got.WallMS != 100000 {
		t.Errorf("booked %+v, want all 50 CPU s over 100 s", got)
	}
}

// TestEnd closes a meter with a final reading, then is idempotent; a sandbox that can no
// longer be read gets wall time only.
func TestEnd(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		readable bool
		at       time.Duration
		want     domain.UsageRow
		closedAt time.Duration
	}{
		{"readable", true, 15 * time.Second, domain.UsageRow{WallMS: 15000, CPUMicros: 9e6, MemMBSeconds: 10*2 + 5*4}, 15 * time.Second},
		{"gone", false, 15 * time.Second, domain.UsageRow{WallMS: 15000, CPUMicros: 2e6, MemMBSeconds: 10 * 2}, 15 * time.Second},
		{"at before last sample", false, 5 * time.Second, domain.UsageRow{WallMS: 10000, CPUMicros: 2e6, MemMBSeconds: 10 * 2}, 10 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, src := newMemStore(), &counters{}
			m := newMeter(t, st.fake(), src.source(), time.Now)
			sb := testSandbox("s1")
			src.set("s1", Reading{At: t0.Add(10 * time.Second), CPUMicros: 2e6, MemoryBytes: 2 * mib})
			if err := m.Sample(ctx, sb); err != nil {
				t.Fatal(err)
			}
			if c.readable {
				src.set("s1", Reading{At: t0.Add(c.at), CPUMicros: 9e6, MemoryBytes: 4 * mib})
			} else {
				src.gone("s1")
			}
			if err := m.End(ctx, sb, t0.Add(c.at)); err != nil {
				t.Fatal(err)
			}
			if got := st.total("s1"); got != c.want {
				t.Errorf("booked %+v, want %+v", got, c.want)
			}
			if got := st.meter("s1"); !got.ClosedAt.Equal(t0.Add(c.closedAt)) {
				t.Errorf("ClosedAt %v, want %v", got.ClosedAt, t0.Add(c.closedAt))
			}
			// Idempotent, and a closed meter takes no more samples, also after a restart.
			n := st.ncalls()
			src.set("s1", Reading{At: t0.Add(time.Minute), CPUMicros: 99e6})
			if err := m.End(ctx, sb, t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := m.Sample(ctx, sb); err != nil {
				t.Fatal(err)
			}
			m2 := newMeter(t, st.fake(), src.source(), time.Now)
			if err := m2.End(ctx, sb, t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if st.ncalls() != n {
				t.Errorf("%d more writes after End, want none", st.ncalls()-n)
			}
		})
	}
}

// TestConcurrentSamples samples one sandbox from many goroutines at once, then ends it:
// the samples are serialised, so every microsecond the source counted is booked once.
func TestConcurrentSamples(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	var mu sync.Mutex
	var n int64
	src := &fakeSource{read: func(context.Context, *domain.Sandbox) (Reading, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		return Reading{At: t0.Add(time.Duration(n) * time.Millisecond), CPUMicros: n * 1000, NetTxBytes: n}, nil
	}}
	m := newMeter(t, st.fake(), src, time.Now)
	sb := testSandbox("s1")
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Sample(ctx, sb); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// End at the start: the last sample (50 ms) is the end, the final reading's counters
	// are still booked.
	if err := m.End(ctx, sb, t0); err != nil {
		t.Fatal(err)
	}
	got, meter := st.total("s1"), st.meter("s1")
	if got.CPUMicros != 51*1000 || got.NetTxBytes != 51 || got.WallMS != 50 || !meter.ClosedAt.Equal(t0.Add(50*time.Millisecond)) {
		t.Errorf("booked %+v, meter %+v; want 50 ms, 51000 CPU µs, 51 bytes, closed at 50 ms", got, meter)
	}
}

// TestSamplePaused: a paused sandbox's storage is booked as disk MB·s only, from its
// pause, not more often than minGap, and never while its meter is open.
func TestSamplePaused(t *testing.T) {
	ctx := context.Background()
	st, src, clk := newMemStore(), &counters{}, &clock{t: t0}
	m := newMeter(t, st.fake(), src.source(), clk.now)
	sb := testSandbox("s1")
	if err := m.Begin(ctx, sb); err != nil {
		t.Fatal(err)
	}
	size := func() int64 { return 100 * mib }
	if err := m.SamplePaused(ctx, sb, t0.Add(time.Minute), 0, size); err != nil || st.ncalls() != 1 {
		t.Fatalf("sampling a running sandbox as paused: %v, %d writes, want nothing booked", err, st.ncalls())
	}
	src.set("s1", Reading{At: t0.Add(10 * time.Second), CPUMicros: 5e6, MemoryBytes: 10 * mib})
	if err := m.End(ctx, sb, t0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	before := st.total("s1")
	sb.PausedAt = t0.Add(10 * time.Second)
	if err := m.SamplePaused(ctx, sb, t0.Add(20*time.Second), time.Minute, size); err != nil || st.total("s1") != before {
		t.Fatalf("sampling within minGap: %v, usage %+v", err, st.total("s1"))
	}
	if err := m.SamplePaused(ctx, sb, t0.Add(130*time.Second), time.Minute, size); err != nil {
		t.Fatal(err)
	}
	got := st.total("s1")
	if got.DiskMBSeconds-before.DiskMBSeconds != 100*120 || got.WallMS != before.WallMS ||
		got.CPUMicros != before.CPUMicros || got.MemMBSeconds != before.MemMBSeconds {
		t.Errorf("after 2 min paused with 100 MiB: %+v, before %+v; want 12000 disk MB·s more and nothing else", got, before)
	}
	if mt := st.meter("s1"); mt.ClosedAt.IsZero() {
		t.Errorf("the paused sandbox's meter was opened: %+v", mt)
	}
	// Booked up to there: the same instant books nothing more.
	if err := m.SamplePaused(ctx, sb, t0.Add(130*time.Second), 0, size); err != nil || st.total("s1") != got {
		t.Errorf("sampling the same instant again: %v %+v", err, st.total("s1"))
	}
	// Resumed: the meter opens afresh from the resume.
	sb.StartedAt = t0.Add(130 * time.Second)
	if err := m.Begin(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if mt := st.meter("s1"); !mt.ClosedAt.IsZero() || !mt.StartedAt.Equal(sb.StartedAt) || mt.CPUMicros != 0 {
		t.Errorf("meter after the resume: %+v", mt)
	}
}
