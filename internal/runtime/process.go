package runtime

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// ProcessRunning reports whether host process pid exists and is not a zombie: the
// test for a sandbox's root process (Handle.PID), whose parent (runsc or runc, gone
// after --detach) is not the server, so it may linger as a zombie once it has exited.
// A pid of 0 or less is never running.
func ProcessRunning(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state is the first field after the command name, which is in parentheses
	// and may itself hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	fields := strings.Fields(string(b[i+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}
