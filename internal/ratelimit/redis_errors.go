package ratelimit

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/warren-sh/warren/internal/domain"
)

// unavailablePrefixes are Redis replies that mean "up but not serving now", as opposed to
// a bug in the request or script.
var unavailablePrefixes = []string{"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY", "max number of clients"}

// classify turns a go-redis error into a classified one. The caller giving up (its ctx
// canceled) is passed through as is; anything that is not a Redis reply (refused or reset
// connections, timeouts, a closed client) means Redis is unreachable, as do the replies
// in unavailablePrefixes. Other Redis replies are internal errors.
func (r *Redis) classify(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("rate limiter: %w", ctx.Err())
	}
	addr := r.client.Options().Addr
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return &domain.Error{Kind: domain.KindUnavailable, Message: fmt.Sprintf("rate limiter: Redis at %s is unreachable", addr), Err: err}
	}
	for _, p := range unavailablePrefixes {
		if redis.HasErrorPrefix(err, p) {
			return &domain.Error{Kind: domain.KindUnavailable, Message: fmt.Sprintf("rate limiter: Redis at %s is not serving", addr), Err: err}
		}
	}
	return fmt.Errorf("rate limiter: Redis at %s: %w", addr, err)
}
