package agent

import (
	"os"
	"syscall"
)

// setHostname gives the sandbox a new host name (sethostname(2)), unless it already has
// it: a sandbox restored from a snapshot or forked from another takes its own name this
// way. Only the sandbox's init may call it: anywhere else it would rename the host.
func setHostname(name string) error {
	if cur, err := os.Hostname(); err == nil && cur == name {
		return nil
	}
	return syscall.Sethostname([]byte(name))
}
