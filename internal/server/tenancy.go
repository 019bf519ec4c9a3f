package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/api/rest"
	"github.com/warren-sh/warren/internal/auth"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/metering"
	"github.com/warren-sh/warren/internal/node"
	"github.com/warren-sh/warren/internal/ratelimit"
	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/store/postgres"
	"github.com/warren-sh/warren/internal/store/sqlite"
)

// openStore opens PostgreSQL when a database URL is configured, else the SQLite file in
// the data directory.
func openStore(ctx context.Context, c Config) (domain.Store, string, error) {
	if c.DatabaseURL != "" {
		if !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
			return nil, "", fmt.Errorf("WARREN_DATABASE_URL must be a postgres:// URL (or empty for SQLite)")
		}
		st, err := postgres.Open(ctx, c.DatabaseURL)
		if err != nil {
			return nil, "", fmt.Errorf("opening PostgreSQL (check WARREN_DATABASE_URL and that the server is up): %w", err)
		}
		return st, "postgres", nil
	}
	st, err := sqlite.Open(ctx, filepath.Join(c.DataDir, "warren.db"))
	if err != nil {
		return nil, "", err
	}
	return st, "sqlite", nil
}

// rateLimiter builds the request rate limiter: shared through Redis when configured,
// else in this process. When Redis cannot be reached the limiter fails open, with a
// warning at most every 30 s: a degraded limiter must not turn into an outage. The
// Limiter itself is returned too, for the per-account login throttle.
func rateLimiter(c Config, log *slog.Logger) (rest.RateLimitFunc, ratelimit.Limiter, func() error, error) {
	var lim ratelimit.Limiter
	closer := func() error { return nil }
	if c.RedisURL != "" {
		r, err := ratelimit.NewRedisURL(c.RedisURL)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("WARREN_REDIS_URL: %w", err)
		}
		lim, closer = r, r.Close
	} else {
		m, err := ratelimit.NewMemory()
		if err != nil {
			return nil, nil, nil, err
		}
		lim = m
	}
	var mu sync.Mutex
	var lastWarn time.Time
	return func(ctx context.Context, key string, perMinute int64) (bool, time.Duration) {
		d, err := lim.Allow(ctx, key, perMinute, time.Minute)
		if err != nil {
			mu.Lock()
			if time.Since(lastWarn) > 30*time.Second {
				lastWarn = time.Now()
				log.Warn("rate limiter unavailable; admitting requests unlimited until it is back", logkey.Err, err)
			}
			mu.Unlock()
			return true, 0
		}
		return d.Allowed, d.RetryAfter
	}, lim, closer, nil
}

// usageSource reads a sandbox's resource use from the node, for the meter.
func usageSource(nd *node.Node) metering.Source {
	return metering.SourceFunc(func(ctx context.Context, sb *domain.Sandbox) (metering.Reading, error) {
		var h *runtime.Handle
		if len(sb.RuntimeHandle) > 0 {
			h = new(runtime.Handle)
			if err := json.Unmarshal(sb.RuntimeHandle, h); err != nil {
				return metering.Reading{}, fmt.Errorf("sandbox %s's runtime handle: %w", sb.ID, err)
			}
		}
		u, err := nd.ReadUsage(ctx, sb.ID, h)
		if err != nil {
			return metering.Reading{}, err
		}
		return metering.Reading{CPUMicros: u.CPUMicros, MemoryBytes: u.MemoryBytes, DiskBytes: u.DiskBytes,
			NetRxBytes: u.NetRxBytes, NetTxBytes: u.NetTxBytes}, nil
	})
}

// quotaDefaultTeam gives the default team (the admin key's, which auth.Bootstrap
// creates without a quota) the default team quota q, if its quota is still all zero
// (no limit). openState calls it on a first start only, so an operator's later choice
// for that team, unlimited included, stands.
func quotaDefaultTeam(ctx context.Context, store domain.Store, q domain.Quota) error {
	teams, err := store.ListTeams(ctx)
	if err != nil {
		return fmt.Errorf("listing teams: %w", err)
	}
	for _, t := range teams {
		if t.Name != auth.DefaultTeam {
			continue
		}
		if t.Quota != (domain.Quota{}) {
			return nil
		}
		t.Quota = q
		if err := store.UpdateTeam(ctx, t); err != nil {
			return fmt.Errorf("setting the default team's quota: %w", err)
		}
		return nil
	}
	return nil
}
