// Package ratelimit limits how often a caller may act, per key: Warren uses it for each
// team's "requests_per_minute" quota.
//
// The algorithm is GCRA, the generic cell rate algorithm (as in redis-cell and throttled):
// a key with limit L over window W admits one request every W/L on average and lets a
// burst of L requests through when it has been idle for W. The state is a single
// "theoretical arrival time" per key, so it is small, exact and cheap to share.
//
// Two implementations share the Limiter interface and one conformance suite
// (package ratelimittest):
//
//   - Memory keeps state in the process. It is right for a single API replica and for
//     tests; idle keys are evicted so memory stays bounded.
//   - Redis keeps state in Redis with one atomic Lua script that reads the Redis server's
//     clock (TIME), so any number of API replicas, even with skewed clocks, share one
//     budget per key. Keys expire once they are back to a full burst.
//
// # When Redis is down
//
// Redis.Allow returns an error classified domain.KindUnavailable when Redis cannot be
// reached. The limiter does not decide what to do then; the caller does. The API server
// should fail open: admit the request and log a warning (rate-limited, so a Redis outage
// does not flood the log), because refusing every request of every team while Redis is
// down turns a degraded limiter into a full outage. Quotas that protect money or capacity
// (sandbox counts, spending) are enforced elsewhere and do not depend on this package.
package ratelimit
