package node

import (
	"log/slog"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/runtime"
)

// primeEvery is how often the node primes while starts run. A cgroup move within
// ~10 ms of the last one is fast (oci.PrimeMigration); every 4 ms keeps the runtime's
// own move inside that window whenever it comes. (Variables for tests.)
var primeEvery = 4 * time.Millisecond

// primeFor bounds how long one start keeps the priming going: the runtime has joined
// its cgroups long before (runsc does it first, ~10 ms after it is started).
var primeFor = 400 * time.Millisecond

// migrationWarmer keeps cgroup migrations fast while sandboxes start: one loop per
// node, however many starts run at once (a fork of 10 starts ten), that calls prime at
// once when the first start comes (that prime waits out the RCU grace period while the
// sandbox is prepared, see oci.PrimeMigration), then every primeEvery while any start
// holds it, each for at most primeFor. A prime that fails ends the loop and drops the
// holds: the host has nothing to gain (the next start tries again).
type migrationWarmer struct {
	prime func() error
	log   *slog.Logger

	mu      sync.Mutex
	holds   map[uint64]time.Time // the starts under way, and when each lapses
	next    uint64
	running bool
}

func newMigrationWarmer(prime func() error, log *slog.Logger) *migrationWarmer {
	return &migrationWarmer{prime: prime, log: log, holds: map[uint64]time.Time{}}
}

// hold keeps migrations fast while a sandbox of drv starts, if drv's start moves
// processes into cgroups, until the returned release is called or primeFor has passed.
func (w *migrationWarmer) hold(drv runtime.Driver) (release func()) {
	if w == nil || w.prime == nil || !drv.Capabilities().JoinsCgroups {
		return func() {}
	}
	w.mu.Lock()
	id := w.next
	w.next++
	w.holds[id] = time.Now().Add(primeFor)
	if !w.running {
		w.running = true
		go w.loop()
	}
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		delete(w.holds, id)
		w.mu.Unlock()
	}
}

// loop primes until no hold is left.
func (w *migrationWarmer) loop() {
	tick := time.NewTicker(primeEvery)
	defer tick.Stop()
	for {
		err := w.prime()
		if err != nil {
			w.log.Debug("cgroup migrations not primed", logkey.Err, err)
		}
		w.mu.Lock()
		now := time.Now()
		for id, until := range w.holds {
			if err != nil || now.After(until) {
				delete(w.holds, id)
			}
		}
		if len(w.holds) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		<-tick.C
	}
}
