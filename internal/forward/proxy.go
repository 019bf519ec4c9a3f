package forward

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Proxy sends sandbox traffic for another node's sandboxes there (to its internal
// listener, marked HeaderProxied) and hands the rest to next; sandboxOf names the
// sandbox a request is for ("" when it names none: next answers it).
func (f *Forwarder) Proxy(next http.Handler, sandboxOf func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := sandboxOf(r)
		if !domain.ValidSandboxID(id) {
			next.ServeHTTP(w, r)
			return
		}
		node, ok := f.routes.node(r.Context(), f, id)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		n, err := f.node(r.Context(), node, id)
		if err == nil {
			err = f.send(w, r, n, true)
		}
		if err != nil {
			// The proxy's own answer for a sandbox it cannot reach (E2B's shape).
			writeProxyError(w, http.StatusBadGateway, err.Error())
		}
	})
}

// routeCache remembers which node runs a sandbox (that never changes), for a while:
// proxied traffic would otherwise read the sandbox's row on each request.
type routeCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]cachedRoute
}

type cachedRoute struct {
	node string // "" served here
	at   time.Time
}

// node returns the node sandbox id's traffic goes to, false when it is served here
// (unknown, ended, or this node's).
func (c *routeCache) node(ctx context.Context, f *Forwarder, id string) (string, bool) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && time.Since(e.at) < c.ttl {
		return e.node, e.node != ""
	}
	sb, err := f.cfg.Store.GetSandbox(ctx, domain.AnyTeam, id)
	node := ""
	if err == nil && f.remote(sb) {
		node = sb.Node
	}
	if err != nil && !domain.IsKind(err, domain.KindNotFound) {
		return "", false // the local proxy answers as it does when the store fails
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 16384 {
		c.m = map[string]cachedRoute{}
	}
	if node != "" { // unknown and ended sandboxes are not cached: a new one may appear
		c.m[id] = cachedRoute{node: node, at: time.Now()}
	}
	return node, node != ""
}

func writeProxyError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]any{"code": status, "message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
