package sandbox

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// defaultReadyTimeout bounds a template's ready check that names no timeout.
const defaultReadyTimeout = 60 * time.Second

// waitReadyCheck waits until the template's ready check holds for the sandbox at addr.
// Only a port check is made here (a built template's waitForPort): the port must
// accept a TCP connection. The other kinds (URL, process, file, command) are checked
// by nothing yet and pass at once.
func waitReadyCheck(ctx context.Context, addr string, rc domain.ReadyCheck) error {
	if rc.Port <= 0 {
		return nil
	}
	timeout := rc.Timeout
	if timeout <= 0 {
		timeout = defaultReadyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	target := net.JoinHostPort(addr, strconv.Itoa(rc.Port))
	var d net.Dialer
	for {
		attempt, stop := context.WithTimeout(ctx, 2*time.Second)
		c, err := d.DialContext(attempt, "tcp", target)
		stop()
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return domain.Errorf(domain.KindUnavailable, "the template's start command did not open port %d within %s (its ready check); look at the sandbox's logs, or give the check a longer timeout",
				rc.Port, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// readyCheckErr keeps a ready check's own error, and wraps others.
func readyCheckErr(err error) error {
	if err == nil || domain.KindOf(err) != domain.KindInternal {
		return err
	}
	return fmt.Errorf("waiting for the template's ready check: %w", err)
}
