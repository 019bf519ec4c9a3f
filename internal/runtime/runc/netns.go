package runc

import (
	"fmt"
	"os"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// netnsSysctls are set in the sandbox's network namespace before it starts. The
// namespace belongs to the host's user namespace, so root in the sandbox holds no
// network capability there: without these, it could neither listen on ports below 1024
// nor ping. Both settings are per network namespace and give nothing beyond that.
var netnsSysctls = map[string]string{
	"net/ipv4/ip_unprivileged_port_start": "0",
	"net/ipv4/ping_group_range":           "0 2147483647",
}

// setNetnsSysctls writes netnsSysctls inside the network namespace at nsPath. It runs
// on a locked OS thread that joins the namespace (/proc/sys/net shows the calling
// thread's namespace) and returns to the original one; if it cannot return, the thread
// is left locked so that it dies with its goroutine instead of serving others.
func setNetnsSysctls(nsPath string) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			errc <- fmt.Errorf("opening network namespace: %w", err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("joining network namespace: %w", err)
			return
		}
		var werr error
		for k, v := range netnsSysctls {
			if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil && werr == nil {
				werr = fmt.Errorf("setting %s in the sandbox's network namespace: %w", k, err)
			}
		}
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("returning to the host network namespace: %w", err)
			return // the thread stays locked and exits with this goroutine
		}
		goruntime.UnlockOSThread()
		errc <- werr
	}()
	return <-errc
}
