package metering

import (
	"math"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func TestSplitDays(t *testing.T) {
	d := func(day int) time.Time { return time.Date(2025, 3, day, 0, 0, 0, 0, time.UTC) }
	at := func(day, h, m, s int) time.Time { return time.Date(2025, 3, day, h, m, s, 0, time.UTC) }
	cases := []struct {
		name     string
		from, to time.Time
		want     []segment
	}{
		{"one day", at(14, 12, 0, 0), at(14, 12, 0, 10), []segment{{d(14), 10000}}},
		{"over midnight", at(14, 23, 59, 50), at(15, 0, 0, 10), []segment{{d(14), 10000}, {d(15), 10000}}},
		{"ends at midnight", at(14, 23, 59, 50), d(15), []segment{{d(14), 10000}}},
		{"starts at midnight", d(15), at(15, 0, 0, 10), []segment{{d(15), 10000}}},
		{"two midnights", at(14, 23, 0, 0), at(16, 1, 0, 0), []segment{{d(14), 3600000}, {d(15), 86400000}, {d(16), 3600000}}},
		{"empty", at(14, 12, 0, 0), at(14, 12, 0, 0), []segment{{d(14), 0}}},
		{"backwards", at(14, 12, 0, 0), at(14, 11, 0, 0), []segment{{d(14), 0}}},
		{"month end", time.Date(2025, 2, 28, 23, 59, 59, 0, time.UTC), d(1).Add(time.Second), []segment{{time.Date(2025, 2, 28, 0, 0, 0, 0, time.UTC), 1000}, {d(1), 1000}}},
	}
	for _, c := range cases {
		if got := splitDays(c.from, c.to); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestCounterDelta(t *testing.T) {
	cases := []struct{ prev, cur, want int64 }{
		{0, 0, 0},
		{100, 250, 150},
		{250, 100, 100}, // reset: counts from zero
		{250, 0, 0},
		{250, -5, 0},
	}
	for _, c := range cases {
		if got := counterDelta(c.prev, c.cur); got != c.want {
			t.Errorf("counterDelta(%d, %d) = %d, want %d", c.prev, c.cur, got, c.want)
		}
	}
}

func TestIntegrate(t *testing.T) {
	cases := []struct {
		name      string
		bytes, ms int64
		c         uint64
		want      int64
		wantCarry uint64
	}{
		{"1 MiB for 1 s", mib, 1000, 0, 1, 0},
		{"256 MiB for 10 s", 256 * mib, 10000, 0, 2560, 0},
		{"1.5 MiB for 1 s", mib + mib/2, 1000, 0, 1, mib / 2 * 1000},
		{"carry completes one", mib / 2, 1000, mib / 2 * 1000, 1, 0},
		{"nothing", 0, 1000, 7, 0, 7},
		{"negative gauge", -mib, 1000, 0, 0, 0},
		// 1 TiB held for a year: the product overflows 64 bits, the result does not.
		{"no overflow", 1 << 40, 365 * 86400 * 1000, 0, (1 << 20) * 365 * 86400, 0},
		{"saturates", math.MaxInt64, math.MaxInt64, 0, math.MaxInt64, 0},
	}
	for _, c := range cases {
		got, carry := integrate(c.bytes, c.ms, c.c)
		if got != c.want || carry != c.wantCarry {
			t.Errorf("%s: %d MB·s carry %d, want %d carry %d", c.name, got, carry, c.want, c.wantCarry)
		}
	}
}

// TestIntegrateExact integrates an awkward gauge over many short intervals: with the
// carry, the sum is the floor of the exact integral, not the sum of per-interval floors.
func TestIntegrateExact(t *testing.T) {
	var sum int64
	var c uint64
	exact := new(big.Int)
	for i := int64(0); i < 10000; i++ {
		bytes, ms := 300*mib+12345+i*977, 7+i%13
		var q int64
		q, c = integrate(bytes, ms, c)
		sum += q
		exact.Add(exact, new(big.Int).Mul(big.NewInt(bytes), big.NewInt(ms)))
	}
	want := new(big.Int).Quo(exact, big.NewInt(byteMillisPerMBs)).Int64()
	if sum != want {
		t.Errorf("integrated %d MB·s, exact floor %d", sum, want)
	}
}

func TestShare(t *testing.T) {
	// A counter delta large enough that delta*ms overflows 64 bits.
	if got := share(math.MaxInt64, 1, 2); got != math.MaxInt64/2 {
		t.Errorf("share: %d", got)
	}
	if got := share(1000001, 10000, 20000); got != 500000 {
		t.Errorf("share: %d", got)
	}
}

// TestIntervalSplit books an interval over midnight: two buckets of 10 s each, counters
// split in proportion with an exact sum, gauges integrated per day.
func TestIntervalSplit(t *testing.T) {
	prev := domain.Meter{SandboxID: "s1", TeamID: "team1", StartedAt: t0, SampledAt: time.Date(2025, 3, 14, 23, 59, 50, 0, time.UTC),
		CPUMicros: 1000, NetRxBytes: 10, NetTxBytes: 20}
	r := &Reading{CPUMicros: 1000 + 2000001, NetRxBytes: 10 + 3, NetTxBytes: 20 + 40000, MemoryBytes: 100 * mib, DiskBytes: 3 * mib}
	end := time.Date(2025, 3, 15, 0, 0, 10, 0, time.UTC)
	next, _, deltas := interval(prev, carry{}, testSandbox("s1"), end, r)
	d14, d15 := time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)
	want := []domain.UsageDelta{
		{SandboxID: "s1", TeamID: "team1", TemplateID: "base", Day: d14, WallMS: 10000, CPUMicros: 1000000, MemMBSeconds: 1000, DiskMBSeconds: 30, NetRxBytes: 1, NetTxBytes: 20000},
		{SandboxID: "s1", TeamID: "team1", TemplateID: "base", Day: d15, WallMS: 10000, CPUMicros: 1000001, MemMBSeconds: 1000, DiskMBSeconds: 30, NetRxBytes: 2, NetTxBytes: 20000},
	}
	if !reflect.DeepEqual(deltas, want) {
		t.Errorf("deltas\n%+v\nwant\n%+v", deltas, want)
	}
	if !next.SampledAt.Equal(end) || next.CPUMicros != r.CPUMicros || next.NetRxBytes != r.NetRxBytes || next.NetTxBytes != r.NetTxBytes {
		t.Errorf("meter after the interval: %+v", next)
	}
}

// TestIntervalNoReading books wall time only and keeps the counters.
func TestIntervalNoReading(t *testing.T) {
	prev := domain.Meter{SandboxID: "s1", TeamID: "team1", StartedAt: t0, SampledAt: t0, CPUMicros: 5, NetRxBytes: 6, NetTxBytes: 7}
	next, _, deltas := interval(prev, carry{}, testSandbox("s1"), t0.Add(1500*time.Millisecond+999*time.Microsecond), nil)
	want := []domain.UsageDelta{{SandboxID: "s1", TeamID: "team1", TemplateID: "base", Day: dayOf(t0), WallMS: 1500}}
	if !reflect.DeepEqual(deltas, want) {
		t.Errorf("deltas %+v, want %+v", deltas, want)
	}
	if next.CPUMicros != 5 || next.NetRxBytes != 6 || next.NetTxBytes != 7 || !next.SampledAt.Equal(t0.Add(1500*time.Millisecond)) {
		t.Errorf("meter %+v", next)
	}
	// A clock step back books nothing and keeps SampledAt.
	next, _, deltas = interval(prev, carry{}, testSandbox("s1"), t0.Add(-time.Minute), nil)
	if len(deltas) != 0 || !next.SampledAt.Equal(t0) {
		t.Errorf("backwards: deltas %+v, meter %+v", deltas, next)
	}
}
