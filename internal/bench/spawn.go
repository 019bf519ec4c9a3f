package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// spawnScript times, inside the sandbox and with its own clock, posix_spawn and wait
// of /bin/true, back to back after a few untimed ones, and prints each time in
// microseconds, one per line. Python is in every built-in template.
const spawnScript = `python3 -c '
import os, sys, time
n = int(sys.argv[1])
for i in range(-5, n):
    t = time.perf_counter_ns()
    os.waitpid(os.posix_spawn("/bin/true", ["/bin/true"], os.environ), 0)
    if i >= 0:
        print((time.perf_counter_ns() - t) // 1000)
' `

// spawnInSandbox measures what one process costs in sandbox id's runtime: the floor
// under every command round trip (Exec) and every create's first output, which no
// server or agent work adds to.
func (b *runner) spawnInSandbox(ctx context.Context, id string) Stats {
	out, err := b.c.output(ctx, id, spawnScript+strconv.Itoa(b.o.ExecCalls))
	if err != nil {
		return failed(err)
	}
	ds, err := parseMicros(out)
	if err != nil {
		return absent("failed: " + err.Error())
	}
	if len(ds) != b.o.ExecCalls {
		return absent(fmt.Sprintf("failed: the sandbox printed %d spawn times, want %d", len(ds), b.o.ExecCalls))
	}
	s := summarize(ds)
	b.progress("spawn of /bin/true inside the sandbox: p50 %.1f ms, p95 %.1f ms (n=%d)", s.P50, s.P95, s.N)
	return s
}

// parseMicros reads one whole number of microseconds per line.
func parseMicros(out string) ([]time.Duration, error) {
	var ds []time.Duration
	for _, line := range strings.Fields(out) {
		us, err := strconv.ParseInt(line, 10, 64)
		if err != nil || us < 0 {
			return nil, fmt.Errorf("the sandbox printed %.40q where a spawn time in microseconds belongs", line)
		}
		ds = append(ds, time.Duration(us)*time.Microsecond)
	}
	return ds, nil
}
