package gvisor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/oci"
)

func syscallKill(pid int) error     { return syscall.Kill(pid, syscall.SIGKILL) }
func syscallRmdir(dir string) error { return syscall.Rmdir(dir) }

func readInt(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v, err == nil
}

// readCgroupStats reads cgroup v1 accounting for the sandbox (the layout on our hosts).
func readCgroupStats(parent, id string) (runtime.Stats, error) {
	var st runtime.Stats
	p := oci.CgroupPath(parent, id)
	if v, ok := readInt(filepath.Join(cgroupRoot, "cpuacct", p, "cpuacct.usage")); ok {
		st.CPUSeconds = float64(v) / 1e9
	}
	if v, ok := readInt(filepath.Join(cgroupRoot, "memory", p, "memory.usage_in_bytes")); ok {
		st.MemoryBytes = v
	}
	if v, ok := readInt(filepath.Join(cgroupRoot, "memory", p, "memory.limit_in_bytes")); ok {
		st.MemoryLimit = v
	}
	if v, ok := readInt(filepath.Join(cgroupRoot, "pids", p, "pids.current")); ok {
		st.PIDs = v
	}
	return st, nil
}

// Cleanup removes the node's (empty) parent cgroups. Call it when no sandbox is left.
func (d *Driver) Cleanup() {
	ctrls, _ := os.ReadDir(cgroupRoot)
	for _, c := range ctrls {
		_ = syscallRmdir(filepath.Join(cgroupRoot, c.Name(), d.cfg.CgroupParent))
	}
}
