package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/warren-sh/warren/internal/domain"
)

// TestGCRALimitChange: a state stored under one limit stays valid under another.
func TestGCRALimitChange(t *testing.T) {
	tests := []struct {
		name          string
		now           int64
		st            gcraState
		limit, window int64
		want          gcraResult
	}{
		{
			name: "fraction from a larger limit is carried into whole units",
			now:  100, st: gcraState{tat: 100, frac: 2500}, limit: 1000, window: 1000,
			// 2500/1000 = 2.5 units of debt, plus 1 per request: allowed at 100 >= 103.5-1000.
			want: gcraResult{allowed: true, next: gcraState{tat: 103, frac: 500}, remaining: 996, reset: 4},
		},
		{
			name: "fraction too large for the new limit",
			now:  0, st: gcraState{tat: 10, frac: 7}, limit: 3, window: 10,
			// 7/3 = 2 whole + 1/3: TAT 12 1/3, new TAT 15 2/3, allowAt 5 2/3 > 0.
			want: gcraResult{retryAfter: 6, reset: 13},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gcra(tt.now, tt.st, tt.limit, tt.window); got != tt.want {
				t.Fatalf("gcra = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestGCRALuaMatchesGo runs the same random request sequences through gcra and the Lua
// script (with a fixed clock, in microseconds since the Unix epoch so the numbers are as
// large as in production) and requires identical decisions: the script is a port of gcra,
// and only gcra's arithmetic is tested exactly elsewhere.
func TestGCRALuaMatchesGo(t *testing.T) {
	c, prefix := NewTestRedisClient(t)
	ctx := t.Context()
	if err := gcraScript.Load(ctx, c).Err(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		limits []int64 // the limit switches to the next one every steps/len(limits) steps
		window int64   // µs
		// advances, when set, are the clock steps to take (µs); otherwise they are random.
		advances []int64
	}{
		{limits: []int64{3}, window: 1_000_000},
		{limits: []int64{7}, window: 100_000},
		{limits: []int64{1}, window: 5},
		{limits: []int64{1000}, window: 999_999},
		{limits: []int64{60}, window: 60_000_000},
		{limits: []int64{601, 7, 1, 13}, window: 59_999_999},
		{limits: []int64{9_000_000}, window: 1_000_000_000},
		// The exact boundary with a fractional interval of 333333.33µs: at 333333 after
		// the burst the request is still 1/3µs early.
		{limits: []int64{3}, window: 1_000_000, advances: []int64{0, 0, 0, 0, 333_333, 1, 0, 333_332, 1, 1_000_000}},
		// A limit lowered while the key holds debt with a fraction (in 1/1000µs) that the
		// new limit cannot hold.
		{limits: []int64{1000, 3}, window: 999_999, advances: append(make([]int64, 21), slices.Repeat([]int64{100_000}, 19)...)},
	}
	const randomSteps = 400
	rng := rand.New(rand.NewPCG(1, 2))
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%v per %dus %d", tt.limits, tt.window, i), func(t *testing.T) {
			key := fmt.Sprintf("%sdiff-%d", prefix, i)
			now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).UnixMicro()
			var st gcraState
			fresh := true
			steps := randomSteps
			if tt.advances != nil {
				steps = len(tt.advances)
			}
			for step := range steps {
				limit := tt.limits[step*len(tt.limits)/steps]
				switch interval := max(tt.window/limit, 1); {
				case tt.advances != nil:
					now += tt.advances[step]
				case rng.IntN(20) == 0:
					now += tt.window // an idle spell
				default:
					now += rng.Int64N(2 * interval) // often inside the interval, sometimes past it
				}
				if fresh {
					st = gcraState{tat: now}
				}
				want := gcra(now, st, limit, tt.window)

				pipe := c.TxPipeline() // PERSIST in the same transaction: fake time must not expire keys
				res := pipe.EvalSha(ctx, gcraScript.Hash(), []string{key}, limit, tt.window, now)
				pipe.Persist(ctx, key)
				if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
					t.Fatalf("step %d: %v", step, err)
				}
				vals, err := res.Int64Slice()
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				got := gcraResult{allowed: vals[0] == 1, remaining: vals[1], retryAfter: vals[2], reset: vals[3]}
				wantCmp := want
				wantCmp.next = gcraState{}
				if got != wantCmp {
					t.Fatalf("step %d (now %d, limit %d, state %+v): Lua %+v, Go %+v", step, now, limit, st, got, wantCmp)
				}
				if want.allowed {
					st, fresh = want.next, false
				}
				stored, err := c.HMGet(ctx, key, "t", "f").Result()
				if err != nil {
					t.Fatal(err)
				}
				if gotSt := fmt.Sprintf("%v %v", stored...); gotSt != fmt.Sprint(st.tat, " ", st.frac) {
					t.Fatalf("step %d: Lua stored %s, Go state %d %d", step, gotSt, st.tat, st.frac)
				}
			}
		})
	}
}

// replyErr is a Redis error reply, as go-redis returns them.
type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}

func TestRedisClassify(t *testing.T) {
	r := NewRedis(redis.NewClient(&redis.Options{Addr: "redis.example:6379"}), "")
	t.Cleanup(func() { r.client.Close() })
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	timedOut, cancel2 := context.WithTimeout(context.Background(), 0)
	defer cancel2()
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	tests := []struct {
		name     string
		ctx      context.Context
		err      error
		kind     domain.Kind
		wantWrap error
	}{
		{"connection refused", context.Background(), dialErr, domain.KindUnavailable, dialErr},
		{"connection dropped", context.Background(), io.EOF, domain.KindUnavailable, io.EOF},
		{"closed client", context.Background(), redis.ErrClosed, domain.KindUnavailable, redis.ErrClosed},
		{"pool timeout", context.Background(), redis.ErrPoolTimeout, domain.KindUnavailable, redis.ErrPoolTimeout},
		{"deadline while Redis is slow", timedOut, context.DeadlineExceeded, domain.KindUnavailable, context.DeadlineExceeded},
		{"loading", context.Background(), replyErr("LOADING Redis is loading the dataset in memory"), domain.KindUnavailable, nil},
		{"read-only replica", context.Background(), replyErr("READONLY You can't write against a read only replica."), domain.KindUnavailable, nil},
		{"script error", context.Background(), replyErr("ERR user_script:1: Script attempted to access nonexistent global variable"), domain.KindInternal, nil},
		{"wrong type", context.Background(), replyErr("WRONGTYPE Operation against a key holding the wrong kind of value"), domain.KindInternal, nil},
		{"caller canceled", canceled, context.Canceled, domain.KindInternal, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.classify(tt.ctx, tt.err)
			if k := domain.KindOf(err); k != tt.kind {
				t.Fatalf("classify(%v) = %v, kind %s; want kind %s", tt.err, err, k, tt.kind)
			}
			if tt.wantWrap != nil && !errors.Is(err, tt.wantWrap) {
				t.Errorf("classify(%v) = %v, does not wrap %v", tt.err, err, tt.wantWrap)
			}
			if tt.kind == domain.KindUnavailable && !strings.Contains(domain.PublicMessage(err), "redis.example:6379") {
				t.Errorf("message %q does not name the address", domain.PublicMessage(err))
			}
		})
	}
}
