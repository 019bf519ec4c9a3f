package runc

import (
	"fmt"
	"os"

	"github.com/warren-sh/warren/internal/netns"
)

// netnsSysctls are set in the sandbox's network namespace before it starts. The
// namespace belongs to the host's user namespace, so root in the sandbox holds no
// network capability there: without these, it could neither listen on ports below 1024
// nor ping. Both settings are per network namespace and give nothing beyond that.
var netnsSysctls = map[string]string{
	"net/ipv4/ip_unprivileged_port_start": "0",
	"net/ipv4/ping_group_range":           "0 2147483647",
}

// setNetnsSysctls writes netnsSysctls inside the network namespace at nsPath, from a
// thread that has joined it (/proc/sys/net shows the calling thread's namespace).
func setNetnsSysctls(nsPath string) error {
	return netns.Do(nsPath, func() error {
		var werr error
		for k, v := range netnsSysctls {
			if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil && werr == nil {
				werr = fmt.Errorf("setting %s in the sandbox's network namespace: %w", k, err)
			}
		}
		return werr
	})
}
