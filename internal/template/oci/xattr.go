package oci

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// paxXattr prefixes the PAX records that carry extended attributes (GNU tar, Docker).
const paxXattr = "SCHILY.xattr."

// keptXattrs are the extended attributes a layer may set: file capabilities, which
// Debian's ping and others rely on instead of setuid. Others (SELinux labels, user.*,
// trusted.*) are the host's business, not the image's.
var keptXattrs = map[string]bool{"security.capability": true}

// setXattrs applies the kept extended attributes of a regular file's PAX records,
// through the descriptor opened beneath the root.
func setXattrs(f *os.File, pax map[string]string) error {
	for k, v := range pax {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok || !keptXattrs[name] {
			continue
		}
		if err := unix.Fsetxattr(int(f.Fd()), name, []byte(v), 0); err != nil {
			return fmt.Errorf("setting %s: %w", name, err)
		}
	}
	return nil
}

func hasXattrs(pax map[string]string) bool {
	for k := range pax {
		if name, ok := strings.CutPrefix(k, paxXattr); ok && keptXattrs[name] {
			return true
		}
	}
	return false
}
