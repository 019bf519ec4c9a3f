package ratelimit_test

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/ratelimit"
	"github.com/warren-sh/warren/internal/ratelimit/ratelimittest"
)

func TestRedisConformance(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T) ratelimit.Limiter {
		c, prefix := ratelimit.NewTestRedisClient(t)
		return ratelimit.NewRedis(c, prefix)
	})
}

// TestRedisReplicasShareBudget: two limiters on two connections to one Redis, as two API
// replicas would have, spend one budget per key.
func TestRedisReplicasShareBudget(t *testing.T) {
	c1, prefix := ratelimit.NewTestRedisClient(t)
	c2 := ratelimit.NewTestRedisReplica(t)
	replicas := []ratelimit.Limiter{ratelimit.NewRedis(c1, prefix), ratelimit.NewRedis(c2, prefix)}

	t.Run("alternating", func(t *testing.T) {
		const limit = 10
		allowed := 0
		for i := range 2 * limit {
			d, err := replicas[i%2].Allow(t.Context(), "team", limit, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed {
				allowed++
			}
		}
		if allowed != limit {
			t.Fatalf("%d requests allowed across two replicas with limit %d, want %d", allowed, limit, limit)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		const limit, perReplica = 25, 40
		var allowed atomic.Int64
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 2 * perReplica {
			wg.Go(func() {
				<-start
				d, err := replicas[i%2].Allow(t.Context(), "busy-team", limit, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := allowed.Load(); n != limit {
			t.Fatalf("%d of %d concurrent requests over two replicas allowed, want exactly %d", n, 2*perReplica, limit)
		}
	})
}

// TestRedisKeysExpire: a key lives while it holds debt, plus a second's margin.
func TestRedisKeysExpire(t *testing.T) {
	c, prefix := ratelimit.NewTestRedisClient(t)
	l := ratelimit.NewRedis(c, prefix)
	ctx := t.Context()

	d, err := l.Allow(ctx, "slow", 4, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ttl, err := c.PTTL(ctx, prefix+"slow").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= d.Reset || ttl > d.Reset+time.Second+time.Millisecond {
		t.Errorf("TTL of a key with Reset %s is %s, want in (Reset, Reset+1s+1ms]", d.Reset, ttl)
	}

	const window = 100 * time.Millisecond
	if _, err := l.Allow(ctx, "fast", 1, window); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := c.Exists(ctx, prefix+"fast").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key of a %s window still exists 5s later", window)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisScriptCacheFlushed: the script is reloaded when the server forgot it (after a
// restart or SCRIPT FLUSH), so EVALSHA's NOSCRIPT never reaches the caller.
func TestRedisScriptCacheFlushed(t *testing.T) {
	c, prefix := ratelimit.NewTestRedisClient(t)
	l := ratelimit.NewRedis(c, prefix)
	for i := range 3 {
		if err := c.ScriptFlush(t.Context()).Err(); err != nil {
			t.Fatal(err)
		}
		d, err := l.Allow(t.Context(), "k", 10, time.Hour)
		if err != nil {
			t.Fatalf("Allow after SCRIPT FLUSH: %v", err)
		}
		if !d.Allowed || d.Remaining != int64(9-i) {
			t.Fatalf("call %d after SCRIPT FLUSH: %+v, want allowed with Remaining %d", i, d, 9-i)
		}
	}
}

// TestRedisUnreachable: when Redis cannot be reached or does not answer, Allow fails fast
// with a KindUnavailable error naming the address.
func TestRedisUnreachable(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	var mu sync.Mutex
	var accepted []net.Conn
	conns.Go(func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		silent.Close()
		conns.Wait()
		for _, c := range accepted {
			c.Close()
		}
	})
	closedPort := func() string { // a port that was just freed: nothing listens there
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}()

	tests := []struct {
		name, url, addr string
	}{
		{"refused port 1", "redis://127.0.0.1:1/0", "127.0.0.1:1"},
		{"stopped server", "redis://" + closedPort + "/0", closedPort},
		{"server not answering", "redis://" + silent.Addr().String() + "/0?read_timeout=200ms&write_timeout=200ms&dial_timeout=200ms", silent.Addr().String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ratelimit.NewRedisURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			start := time.Now()
			d, err := l.Allow(t.Context(), "team", 10, time.Minute)
			elapsed := time.Since(start)
			if !domain.IsKind(err, domain.KindUnavailable) {
				t.Fatalf("Allow = %+v, %v (kind %s); want a KindUnavailable error", d, err, domain.KindOf(err))
			}
			if want := "Redis at " + tt.addr + " is unreachable"; !strings.Contains(domain.PublicMessage(err), want) {
				t.Errorf("message %q does not say %q", domain.PublicMessage(err), want)
			}
			if elapsed > 5*time.Second {
				t.Errorf("Allow took %s to report an unreachable Redis; want fast failure", elapsed)
			}
		})
	}
}

func TestNewRedisURLInvalid(t *testing.T) {
	tests := []struct{ name, url string }{
		{"wrong scheme", "http://127.0.0.1:6379"},
		{"bad db", "redis://127.0.0.1:6379/notanumber"},
		{"bad port with password", "redis://user:s3cret-pw@127.0.0.1:port/0"},
		{"bad query", "redis://127.0.0.1:6379/0?dial_timeout=soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ratelimit.NewRedisURL(tt.url)
			if !domain.IsKind(err, domain.KindInvalid) {
				if l != nil {
					l.Close()
				}
				t.Fatalf("NewRedisURL(%q) error = %v, want kind invalid", tt.url, err)
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}

// TestRedisRejectsUnrepresentable: the Redis limiter works in microseconds with doubles;
// arguments it cannot represent exactly are refused rather than rounded.
func TestRedisRejectsUnrepresentable(t *testing.T) {
	c, prefix := ratelimit.NewTestRedisClient(t)
	l := ratelimit.NewRedis(c, prefix)
	tests := []struct {
		limit  int64
		window time.Duration
		field  string
	}{
		{10, 500 * time.Nanosecond, "window"},
		{1 << 40, 24 * time.Hour, "limit"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d per %s", tt.limit, tt.window), func(t *testing.T) {
			_, err := l.Allow(t.Context(), "k", tt.limit, tt.window)
			if !domain.IsKind(err, domain.KindInvalid) || domain.FieldOf(err) != tt.field {
				t.Fatalf("error = %v, want kind invalid on field %q", err, tt.field)
			}
		})
	}
}
