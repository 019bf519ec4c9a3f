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

// The node's warmer primes at once and then repeatedly for a driver that joins
// cgroups, never for one that does not or without a PrimeMigration, stops when the
// last hold is released or has lapsed (primeFor), and after a failed prime (the next
// hold tries again).
func TestMigrationWarmer(t *testing.T) {
	every, bound := primeEvery, primeFor
	t.Cleanup(func() { primeEvery, primeFor = every, bound })
	primeEvery, primeFor = time.Millisecond, time.Hour
	warmer := func(prime func() error) *migrationWarmer {
		return newMigrationWarmer(prime, slog.New(slog.DiscardHandler))
	}
	settle := func() { time.Sleep(20 * primeEvery) }
	// stopped waits until w's loop has ended.
	stopped := func(t *testing.T, w *migrationWarmer) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			w.mu.Lock()
			running := w.running
			w.mu.Unlock()
			if !running {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the priming loop did not end")
			}
			time.Sleep(time.Millisecond)
		}
	}

	t.Run("driver joins no cgroups", func(t *testing.T) {
		var calls atomic.Int64
		release := warmer(func() error { calls.Add(1); return nil }).hold(&fakeDriver{})
		settle()
		release()
		if calls.Load() != 0 {
			t.Errorf("%d primes for a driver that joins no cgroups", calls.Load())
		}
	})
	t.Run("no PrimeMigration", func(t *testing.T) {
		warmer(nil).hold(&fakeDriver{joins: true})()
	})
	t.Run("repeats until released", func(t *testing.T) {
		var calls atomic.Int64
		w := warmer(func() error { calls.Add(1); return nil })
		release := w.hold(&fakeDriver{joins: true})
		waitCount(t, &calls, 3)
		release()
		stopped(t, w)
		at := calls.Load()
		settle()
		if got := calls.Load(); got != at {
			t.Errorf("%d primes after the loop ended (%d when it did)", got, at)
		}
	})
	t.Run("one loop for concurrent starts, until the last is released", func(t *testing.T) {
		var calls, inPrime, most atomic.Int64
		w := warmer(func() error {
			n := inPrime.Add(1)
			defer inPrime.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			calls.Add(1)
			return nil
		})
		var releases []func()
		for i := 0; i < 10; i++ {
			releases = append(releases, w.hold(&fakeDriver{joins: true}))
		}
		waitCount(t, &calls, 5)
		for _, r := range releases[:9] {
			r()
		}
		at := calls.Load()
		waitCount(t, &calls, at+3) // the last hold keeps it going
		releases[9]()
		stopped(t, w)
		if most.Load() != 1 {
			t.Errorf("%d primes at once: want one loop", most.Load())
		}
	})
	t.Run("ends after primeFor", func(t *testing.T) {
		primeFor = 10 * time.Millisecond
		defer func() { primeFor = time.Hour }()
		var calls atomic.Int64
		w := warmer(func() error { calls.Add(1); return nil })
		release := w.hold(&fakeDriver{joins: true})
		defer release()
		waitCount(t, &calls, 1)
		stopped(t, w)
	})
	t.Run("stops at an error, and the next hold tries again", func(t *testing.T) {
		var calls atomic.Int64
		w := warmer(func() error { calls.Add(1); return errors.New("no cgroup filesystem") })
		release := w.hold(&fakeDriver{joins: true})
		defer release()
		waitCount(t, &calls, 1)
		stopped(t, w)
		settle()
		if got := calls.Load(); got != 1 {
			t.Errorf("%d primes after a failed one, want it to stop at 1", got)
		}
		w.hold(&fakeDriver{joins: true})()
		waitCount(t, &calls, 2)
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
	n.migrations = newMigrationWarmer(func() error {
		if calls.Add(1) == 1 {
			close(primed)
		}
		return nil
	}, n.log)
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
