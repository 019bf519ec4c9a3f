package node

import (
	"log/slog"
	"time"

	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/runtime"
)

// primeEvery is how often warmMigrations primes while a start runs. A cgroup move
// within ~10 ms of the last one is fast (oci.PrimeMigration); every 4 ms keeps the
// runtime's own move inside that window whenever it comes. (Variables for tests.)
var primeEvery = 4 * time.Millisecond

// primeFor bounds how long one start keeps priming: the runtime has joined its
// cgroups long before (runsc does it first, ~10 ms after it is started).
var primeFor = 400 * time.Millisecond

// warmMigrations keeps cgroup migrations fast while a sandbox of drv starts, if drv's
// start moves processes into cgroups: it calls prime at once (the first prime waits out the
// RCU grace period while the sandbox is prepared, see oci.PrimeMigration), then every
// primeEvery until the returned stop is called or primeFor has passed. A prime that
// fails stops it: the host has nothing to gain.
func warmMigrations(prime func() error, drv runtime.Driver, log *slog.Logger) (stop func()) {
	if prime == nil || !drv.Capabilities().JoinsCgroups {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		deadline := time.NewTimer(primeFor)
		defer deadline.Stop()
		tick := time.NewTicker(primeEvery)
		defer tick.Stop()
		for {
			if err := prime(); err != nil {
				log.Debug("cgroup migrations not primed", logkey.Err, err)
				return
			}
			select {
			case <-done:
				return
			case <-deadline.C:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done) }
}
