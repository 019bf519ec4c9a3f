package abuse

import (
	"strings"
	"testing"
)

func init() {
	register(
		probe{name: "escape/mount", run: func(t *testing.T, e *env) string {
			// Mounting needs CAP_SYS_ADMIN in the sandbox's own user namespace at most; the
			// host's file systems must stay out of reach either way.
			r := e.Exec("mkdir -p /tmp/m && mount -t proc proc /tmp/m 2>&1; mount -t ext4 /dev/vda /tmp/m 2>&1; ls /tmp/m/1/root/var/lib/warren 2>&1; echo end")
			if strings.Contains(r.Stdout, "admin.key") {
				t.Fatalf("the host's data dir is visible from the sandbox: %s", r.Stdout)
			}
			return "no host file system reachable"
		}},
	)
}
