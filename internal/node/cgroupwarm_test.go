package node

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// waitCount waits until *n reaches at least want (at most 5 s).
func waitCount(t *testing.T, n *atomic.Int64, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%d primes, want at least %d", n.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// warmMigrations primes at once and then repeatedly for a driver that joins cgroups,
// never for one that does not or without a PrimeMigration, stops when told, when
// primeFor has passed, and after the first failed prime.
func TestWarmMigrations(t *testing.T) {
	every, bound := primeEvery, primeFor
	t.Cleanup(func() { primeEvery, primeFor = every, bound })
	primeEvery, primeFor = time.Millisecond, time.Hour
	warm := func(prime func() error, drv runtime.Driver) func() {
		return warmMigrations(prime, drv, slog.New(slog.DiscardHandler))
	}
	settle := func() { time.Sleep(20 * primeEvery) }

	t.Run("driver joins no cgroups", func(t *testing.T) {
		var calls atomic.Int64
		stop := warm(func() error { calls.Add(1); return nil }, &fakeDriver{})
		settle()
		stop()
		if calls.Load() != 0 {
			t.Errorf("%d primes for a driver that joins no cgroups", calls.Load())
		}
	})
	t.Run("no PrimeMigration", func(t *testing.T) {
		warm(nil, &fakeDriver{joins: true})()
	})
	t.Run("repeats until stopped", func(t *testing.T) {
		var calls atomic.Int64
		stop := warm(func() error { calls.Add(1); return nil }, &fakeDriver{joins: true})
		waitCount(t, &calls, 3)
		stop()
		at := calls.Load()
		settle()
		if got := calls.Load(); got > at+1 { // one may have been under way
			t.Errorf("%d primes after stop (%d at stop)", got, at)
		}
	})
	t.Run("ends after primeFor", func(t *testing.T) {
		primeFor = 10 * time.Millisecond
		defer func() { primeFor = time.Hour }()
		var calls atomic.Int64
		stop := warm(func() error { calls.Add(1); return nil }, &fakeDriver{joins: true})
		defer stop()
		waitCount(t, &calls, 1)
		time.Sleep(primeFor + 5*primeEvery)
		at := calls.Load()
		settle()
		if got := calls.Load(); got != at {
			t.Errorf("priming went on past primeFor: %d primes, then %d", at, got)
		}
	})
	t.Run("stops at the first error", func(t *testing.T) {
		var calls atomic.Int64
		stop := warm(func() error { calls.Add(1); return errors.New("no cgroup filesystem") }, &fakeDriver{joins: true})
		defer stop()
		waitCount(t, &calls, 1)
		settle()
		if got := calls.Load(); got != 1 {
			t.Errorf("%d primes after a failed one, want it to stop at 1", got)
		}
	})
}

// A start on a driver that joins cgroups primes before the driver starts the sandbox
// (the prime's wait then runs beside the preparation), and primes no more once it is
// done.
func TestStartPrimesMigrations(t *testing.T) {
	primed := make(chan struct{})
	var calls atomic.Int64
	n := testNode(t, &fakeDriver{joins: true, start: func(s runtime.Spec) (runtime.Handle, error) {
		select {
		case <-primed:
		case <-time.After(5 * time.Second):
			return runtime.Handle{}, errors.New("the driver started before any prime")
		}
		return runtime.Handle{ID: s.ID, Driver: "fake"}, nil
	}})
	n.cfg.PrimeMigration = func() error {
		if calls.Add(1) == 1 {
			close(primed)
		}
		return nil
	}
	id := domain.NewID(20)
	st, err := n.start(context.Background(), startSpec{ID: id, Slot: 4, RootFS: t.TempDir(), Agent: AgentConfig{AccessToken: "node-test-token"}})
	if err != nil {
		t.Fatal(err)
	}
	at := calls.Load()
	time.Sleep(20 * primeEvery)
	if got := calls.Load(); got > at+1 {
		t.Errorf("%d primes after the start returned (%d when it did)", got, at)
	}
	if err := n.Stop(context.Background(), id, 4, &st.Handle); err != nil {
		t.Fatal(err)
	}
}
