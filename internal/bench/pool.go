package bench

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// poolRoutes are where a server reports its warm pools' counters (GET /v1/pools), tried
// in order.
var poolRoutes = []string{"/v1/pools"}

// poolCounters is what the bench reads of one template's warm pool.
type poolCounters struct {
	Claims   int64 // creates served by a member so far
	Ready    int64 // members waiting now; -1 when not reported
	Size     int64 // members the pool keeps; -1 when not reported
	Starting int64 // members being started now; -1 when not reported
}

// full reports whether the pool is at its size with no member being started (true
// when the server does not report enough to tell).
func (pc poolCounters) full() bool {
	return (pc.Size < 0 || pc.Ready < 0 || pc.Ready >= pc.Size) && pc.Starting <= 0
}

// errNoPoolStats means the server reports no warm pool statistics for the template.
var errNoPoolStats = errors.New("no warm pool statistics")

// pool reads the counters of tpl's warm pool. A warm create is one that moves Claims:
// the bench counts nothing else as warm.
func (c *client) pool(ctx context.Context, tpl string) (poolCounters, error) {
	for _, route := range poolRoutes {
		var doc any
		err := c.call(ctx, "GET", route, "", &doc)
		if unsupported(err) != "" {
			continue
		}
		if err != nil {
			return poolCounters{}, err
		}
		if pc, ok := findPool(doc, tpl); ok {
			return pc, nil
		}
	}
	return poolCounters{}, fmt.Errorf("%w for template %s (looked at %v)", errNoPoolStats, tpl, poolRoutes)
}

// findPool looks through a JSON document for an object naming template tpl (as
// "template" or "template_id") with a numeric "claims", and reads it.
func findPool(doc any, tpl string) (poolCounters, bool) {
	switch v := doc.(type) {
	case map[string]any:
		name, _ := v["template"].(string)
		if name == "" {
			name, _ = v["template_id"].(string)
		}
		if claims, ok := v["claims"].(float64); ok && name == tpl {
			pc := poolCounters{Claims: int64(claims), Ready: -1, Size: -1, Starting: -1}
			for k, dst := range map[string]*int64{"ready": &pc.Ready, "size": &pc.Size, "starting": &pc.Starting} {
				if n, ok := v[k].(float64); ok {
					*dst = int64(n)
				}
			}
			return pc, true
		}
		for _, x := range v {
			if pc, ok := findPool(x, tpl); ok {
				return pc, true
			}
		}
	case []any:
		for _, x := range v {
			if pc, ok := findPool(x, tpl); ok {
				return pc, true
			}
		}
	}
	return poolCounters{}, false
}

// waitPool reads tpl's pool counters every 50 ms until done says so or limit has
// passed. It returns the counters read last and whether done said so.
func (c *client) waitPool(ctx context.Context, tpl string, limit time.Duration, done func(poolCounters) bool) (poolCounters, bool, error) {
	deadline := time.Now().Add(limit)
	for {
		pc, err := c.pool(ctx, tpl)
		if err != nil {
			return pc, false, err
		}
		if done(pc) {
			return pc, true, nil
		}
		if time.Now().After(deadline) {
			return pc, false, nil
		}
		select {
		case <-ctx.Done():
			return pc, false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitPoolReady waits up to limit for tpl's pool to have a member ready (when the
// server reports readiness), so that a warm create measures a claim rather than a
// refill race. It returns the counters read last.
func (c *client) waitPoolReady(ctx context.Context, tpl string, limit time.Duration) (poolCounters, error) {
	pc, _, err := c.waitPool(ctx, tpl, limit, func(pc poolCounters) bool { return pc.Ready != 0 })
	return pc, err
}

// waitPoolFull waits up to limit for tpl's pool to be full with no start under way: a
// refill takes a core for half a second, and a baseline run or cold create timed beside
// it measures the contention rather than the start. It reports whether the pool got
// there.
func (c *client) waitPoolFull(ctx context.Context, tpl string, limit time.Duration) (bool, error) {
	_, full, err := c.waitPool(ctx, tpl, limit, poolCounters.full)
	return full, err
}
