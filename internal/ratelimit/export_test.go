package ratelimit

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// NewTestRedisClient connects to the test Redis at WARREN_TEST_REDIS_URL and returns a
// client and a key prefix unique to this test; cleanup deletes every key under the
// prefix, then closes the client. Without the variable the test is skipped, except in CI
// (CI set), where a missing service is a failure.
func NewTestRedisClient(t *testing.T) (*redis.Client, string) {
	t.Helper()
	raw := os.Getenv("WARREN_TEST_REDIS_URL")
	if raw == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("WARREN_TEST_REDIS_URL is unset in CI: .ci/run must start Redis with scripts/test-services.sh and export what it writes")
		}
		t.Skip("WARREN_TEST_REDIS_URL is unset: run scripts/test-services.sh (packages from scripts/install-deps.sh with WARREN_TEST_DEPS=1), then export the variables it writes to .test-services.env")
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatalf("WARREN_TEST_REDIS_URL: %v", err)
	}
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	c := redis.NewClient(opts)
	prefix := "warren-test:ratelimit:" + strings.NewReplacer("/", ":", " ", "_").Replace(t.Name()) + ":" + rand.Text()[:10] + ":"
	t.Cleanup(func() { DeleteTestKeys(t, c, prefix) })
	return c, prefix
}

// NewTestRedisReplica returns a second client to the test Redis, closed in cleanup: a
// limiter on it plays another API replica.
func NewTestRedisReplica(t *testing.T) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(os.Getenv("WARREN_TEST_REDIS_URL"))
	if err != nil {
		t.Fatalf("WARREN_TEST_REDIS_URL: %v", err)
	}
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// DeleteTestKeys deletes every key under prefix, fails the test if any survive, and
// closes c.
func DeleteTestKeys(t *testing.T, c *redis.Client, prefix string) {
	t.Helper()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var keys []string
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Errorf("listing test keys under %q: %v", prefix, err)
		return
	}
	if len(keys) > 0 {
		if err := c.Del(ctx, keys...).Err(); err != nil {
			t.Errorf("deleting %d test keys under %q: %v", len(keys), prefix, err)
		}
	}
	if n, err := c.Keys(ctx, prefix+"*").Result(); err != nil || len(n) != 0 {
		t.Errorf("keys left under %q after cleanup: %v (err %v)", prefix, n, err)
	}
}
