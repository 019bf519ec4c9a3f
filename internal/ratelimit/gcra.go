package ratelimit

import "math/bits"

// gcraState is a key's theoretical arrival time (TAT): tat + frac/limit time units after
// some epoch. Keeping the fraction apart makes the emission interval window/limit exact
// whatever the limit, so a burst of exactly limit requests always fits. The Lua script in
// gcra.lua is a line-by-line port of gcra; keep them in step.
type gcraState struct {
	tat  int64 // whole time units
	frac int64 // extra 1/limit units, 0 <= frac < limit
}

// gcraResult is the outcome of gcra; all durations are in the caller's time unit.
type gcraResult struct {
	allowed    bool
	next       gcraState // state to store when allowed
	remaining  int64
	retryAfter int64
	reset      int64
}

// gcra runs one GCRA step at now for a key in state st, in any integer time unit (the
// memory limiter uses nanoseconds, Redis microseconds). Preconditions: limit > 0,
// window > 0.
func gcra(now int64, st gcraState, limit, window int64) gcraResult {
	tat, frac := st.tat, st.frac
	if frac >= limit { // the limit changed since the state was stored
		tat, frac = tat+frac/limit, frac%limit
	}
	if tat < now { // idle: no debt
		tat, frac = now, 0
	}
	// new TAT = TAT + window/limit, kept as whole units plus a fraction of 1/limit.
	ntat, nfrac := tat+window/limit, frac+window%limit
	if nfrac >= limit {
		ntat, nfrac = ntat+1, nfrac-limit
	}
	// The request is allowed when now >= new TAT - window (exactly: allowAt + nfrac/limit).
	allowAt := ntat - window
	if allowAt > now || (allowAt == now && nfrac > 0) {
		return gcraResult{
			retryAfter: ceilUnits(allowAt-now, nfrac),
			reset:      ceilUnits(tat-now, frac),
		}
	}
	// remaining = floor((now - exact allowAt) / (window/limit))
	//           = floor(((now-allowAt)*limit - nfrac) / window), in 128 bits.
	hi, lo := bits.Mul64(uint64(now-allowAt), uint64(limit))
	lo, borrow := bits.Sub64(lo, uint64(nfrac), 0)
	hi -= borrow
	remaining, _ := bits.Div64(hi, lo, uint64(window)) // quotient < limit: no overflow
	return gcraResult{
		allowed:   true,
		next:      gcraState{tat: ntat, frac: nfrac},
		remaining: int64(remaining),
		reset:     ceilUnits(ntat-now, nfrac),
	}
}

// ceilUnits rounds whole+frac/limit up to whole units, for durations a caller may wait.
func ceilUnits(whole, frac int64) int64 {
	if frac > 0 {
		return whole + 1
	}
	return whole
}
