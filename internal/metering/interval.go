package metering

import (
	"math"
	"math/bits"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// byteMillisPerMBs is one MB·s (MB = 1 MiB) in byte-milliseconds, the unit gauges are
// integrated in before they are booked.
const byteMillisPerMBs = (1 << 20) * 1000

// carry holds what the integrals of the gauges have accumulated below one MB·s, in
// byte-milliseconds (each < byteMillisPerMBs). Carrying it into the next interval makes
// the booked MB·s of a sandbox the exact floor of its integral, however short the
// intervals. It lives in memory only: a restart loses less than 1 MB·s per gauge.
type carry struct{ mem, disk uint64 }

// segment is the part of an interval that falls on one UTC day.
type segment struct {
	day time.Time
	ms  int64
}

// msUTC truncates t to the millisecond in UTC: every time a meter stores is on whole
// milliseconds, so the wall time of consecutive intervals adds up exactly.
func msUTC(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// dayOf is the UTC midnight that starts t's day.
func dayOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// splitDays cuts [from, to) at every UTC midnight. An empty interval (to <= from) is one
// segment of 0 ms on from's day, so that counters read at that instant still have a
// day to go to. Preconditions: from and to are on whole milliseconds.
func splitDays(from, to time.Time) []segment {
	if !to.After(from) {
		return []segment{{day: dayOf(from)}}
	}
	var segs []segment
	for {
		day := dayOf(from)
		next := day.AddDate(0, 0, 1)
		if !to.After(next) {
			return append(segs, segment{day: day, ms: to.Sub(from).Milliseconds()})
		}
		segs = append(segs, segment{day: day, ms: next.Sub(from).Milliseconds()})
		from = next
	}
}

// counterDelta is how much a cumulative counter grew from prev to cur. A counter that
// went backwards was recreated (the runtime restarted its accounting) and counts from
// zero.
func counterDelta(prev, cur int64) int64 {
	cur = max(cur, 0)
	if cur >= prev {
		return cur - prev
	}
	return cur
}

// share is part ms of total of delta, rounded down. Preconditions: 0 <= ms <= total,
// total > 0, delta >= 0; then the result cannot overflow.
func share(delta, ms, total int64) int64 {
	hi, lo := bits.Mul64(uint64(delta), uint64(ms))
	q, _ := bits.Div64(hi, lo, uint64(total)) // hi < total since ms <= total
	return int64(q)
}

// integrate returns the whole MB·s of bytes held for ms (plus the carried remainder) and
// the new remainder. It saturates rather than overflow (past 2^63 MB·s).
func integrate(bytes, ms int64, c uint64) (int64, uint64) {
	hi, lo := bits.Mul64(uint64(max(bytes, 0)), uint64(max(ms, 0)))
	var cb uint64
	lo, cb = bits.Add64(lo, c, 0)
	hi += cb
	if hi >= byteMillisPerMBs {
		return math.MaxInt64, 0
	}
	q, r := bits.Div64(hi, lo, byteMillisPerMBs)
	if q > math.MaxInt64 {
		return math.MaxInt64, 0
	}
	return int64(q), r
}

// interval books the time from prev.SampledAt to end: it returns the meter as it stands
// after end and the deltas to add, one per UTC day the interval touches (all-zero ones
// left out). With a reading r, counters grow by their deltas and gauges are taken as
// constant over the interval at r's values; without one (the sandbox can no longer be
// read) only wall time is booked. Counter deltas are split across days in proportion
// to the days' wall time (rounded down, the last day takes the rest, so the sum is
// exact). An end before prev.SampledAt (a clock step back) books no time and does not
// move SampledAt back.
func interval(prev domain.Meter, c carry, sb *domain.Sandbox, end time.Time, r *Reading) (domain.Meter, carry, []domain.UsageDelta) {
	from := msUTC(prev.SampledAt)
	to := msUTC(end)
	if to.Before(from) {
		to = from
	}
	next := prev
	next.SampledAt = to
	var cpu, rx, tx, mem, disk int64
	if r != nil {
		cpu = counterDelta(prev.CPUMicros, r.CPUMicros)
		rx = counterDelta(prev.NetRxBytes, r.NetRxBytes)
		tx = counterDelta(prev.NetTxBytes, r.NetTxBytes)
		next.CPUMicros, next.NetRxBytes, next.NetTxBytes = max(r.CPUMicros, 0), max(r.NetRxBytes, 0), max(r.NetTxBytes, 0)
		mem, disk = r.MemoryBytes, r.DiskBytes
	}
	segs := splitDays(from, to)
	total := to.Sub(from).Milliseconds()
	var deltas []domain.UsageDelta
	var cpuDone, rxDone, txDone int64
	for i, s := range segs {
		d := domain.UsageDelta{SandboxID: prev.SandboxID, TeamID: prev.TeamID, TemplateID: sb.TemplateID, Day: s.day, WallMS: s.ms}
		if i == len(segs)-1 {
			d.CPUMicros, d.NetRxBytes, d.NetTxBytes = cpu-cpuDone, rx-rxDone, tx-txDone
		} else {
			d.CPUMicros, d.NetRxBytes, d.NetTxBytes = share(cpu, s.ms, total), share(rx, s.ms, total), share(tx, s.ms, total)
			cpuDone, rxDone, txDone = cpuDone+d.CPUMicros, rxDone+d.NetRxBytes, txDone+d.NetTxBytes
		}
		d.MemMBSeconds, c.mem = integrate(mem, s.ms, c.mem)
		d.DiskMBSeconds, c.disk = integrate(disk, s.ms, c.disk)
		if d.WallMS|d.CPUMicros|d.NetRxBytes|d.NetTxBytes|d.MemMBSeconds|d.DiskMBSeconds != 0 {
			deltas = append(deltas, d)
		}
	}
	return next, c, deltas
}
