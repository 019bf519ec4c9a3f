package ratelimit

import (
	"context"
	_ "embed"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/warren-sh/warren/internal/domain"
)

// DefaultRedisPrefix is the key prefix NewRedisURL uses.
const DefaultRedisPrefix = "warren:ratelimit:"

// Timeouts and retries NewRedisURL uses unless the URL's query sets them (dial_timeout,
// read_timeout, write_timeout, pool_timeout, max_retries): the limiter sits on every
// request's path, so an unreachable Redis must fail fast rather than stall the API.
const (
	redisDialTimeout = time.Second
	redisIOTimeout   = 500 * time.Millisecond
	redisMaxRetries  = 1
	// redisDialAttempts is how many times one connection attempt dials.
	redisDialAttempts = 2
)

// maxExact bounds limit × window (in microseconds): the Lua script computes in doubles,
// exact only below 2^53.
const maxExact = 1 << 53

//go:embed gcra.lua
var gcraLua string

var gcraScript = redis.NewScript(gcraLua)

// Redis is a Limiter whose state lives in Redis, shared by every API replica that uses
// the same Redis and prefix. Each Allow is one atomic script run (EVALSHA, falling back
// to EVAL when the server's script cache lacks it) that reads the Redis server's clock,
// so replicas with skewed clocks still agree. Time is kept in microseconds: windows are
// truncated to whole microseconds.
type Redis struct {
	client *redis.Client
	prefix string
	owned  bool // Close closes client
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a limiter that keeps its keys, named prefix+key, in client. The caller
// keeps ownership of client: Close does not close it.
func NewRedis(client *redis.Client, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// NewRedisURL connects to the Redis at rawURL (redis://[user:pass@]host:port/db, or
// rediss:// for TLS, as go-redis parses it) and returns a limiter using
// DefaultRedisPrefix. It does not dial: an unreachable Redis shows up in Allow. Close
// releases the connections.
func NewRedisURL(rawURL string) (*Redis, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's error quotes the URL, password included: say what is expected instead.
		return nil, domain.Invalid("redis_url", "invalid Redis URL: want redis://[user:password@]host:port/db")
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		msg := err.Error()
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
		return nil, domain.Invalid("redis_url", "invalid Redis URL %s: %s", u.Redacted(), msg)
	}
	q := u.Query()
	setDefault := func(name string, apply func()) {
		if !q.Has(name) {
			apply()
		}
	}
	setDefault("dial_timeout", func() { opts.DialTimeout = redisDialTimeout })
	setDefault("read_timeout", func() { opts.ReadTimeout = redisIOTimeout })
	setDefault("write_timeout", func() { opts.WriteTimeout = redisIOTimeout })
	setDefault("pool_timeout", func() { opts.PoolTimeout = redisDialTimeout })
	setDefault("max_retries", func() { opts.MaxRetries = redisMaxRetries })
	opts.DialerRetries = redisDialAttempts // go-redis's default, 5 dials 100ms apart, is slow to give up
	// Maintenance notifications are a Redis Enterprise/Cloud feature; against a plain
	// redis-server they only cost a handshake round trip and log noise.
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	r := NewRedis(redis.NewClient(opts), DefaultRedisPrefix)
	r.owned = true
	return r, nil
}

// Close releases the client if NewRedisURL made it.
func (r *Redis) Close() error {
	if r.owned {
		return r.client.Close()
	}
	return nil
}

// Allow implements Limiter. When Redis cannot be reached it returns a
// domain.KindUnavailable error; see the package documentation for what the caller should
// do then.
func (r *Redis) Allow(ctx context.Context, key string, limit int64, window time.Duration) (Decision, error) {
	if err := validate(key, limit, window); err != nil {
		return Decision{}, err
	}
	us := window.Microseconds()
	if us <= 0 {
		return Decision{}, domain.Invalid("window", "rate limit window must be at least 1µs with Redis, got %s", window)
	}
	if limit > maxExact/us {
		return Decision{}, domain.Invalid("limit", "rate limit %d per %s is too fine-grained for the Redis limiter", limit, window)
	}
	res, err := gcraScript.Run(ctx, r.client, []string{r.prefix + key}, limit, us).Int64Slice()
	if err != nil {
		return Decision{}, r.classify(ctx, err)
	}
	if len(res) != 4 {
		return Decision{}, fmt.Errorf("rate limiter: Redis script returned %d values, want 4", len(res))
	}
	return Decision{
		Allowed:    res[0] == 1,
		Limit:      limit,
		Remaining:  res[1],
		RetryAfter: time.Duration(res[2]) * time.Microsecond,
		Reset:      time.Duration(res[3]) * time.Microsecond,
	}, nil
}
