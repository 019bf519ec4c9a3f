package auth

import (
	"context"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// teamCacheTTL bounds how stale a team's quota may be on the request path: a changed
// rate limit applies within this time.
const teamCacheTTL = 5 * time.Second

// teamCache keeps recently read teams so that authenticating a request does not read
// the team row every time.
type teamCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]cachedTeam
}

type cachedTeam struct {
	team *domain.Team
	at   time.Time
}

func (c *teamCache) get(ctx context.Context, store domain.TeamStore, id string, now time.Time) (*domain.Team, error) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl {
		return e.team, nil
	}
	t, err := store.GetTeam(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) > 10000 {
		c.m = map[string]cachedTeam{}
	}
	c.m[id] = cachedTeam{team: t, at: now}
	c.mu.Unlock()
	return t, nil
}

// forget drops a team so that a change to it applies at once on this replica.
func (c *teamCache) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}
