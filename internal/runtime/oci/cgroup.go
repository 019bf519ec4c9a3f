package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// CgroupRoot is where the cgroup hierarchies are mounted (one directory per v1
// controller, plus "unified" for cgroup2 on hybrid hosts).
var CgroupRoot = "/sys/fs/cgroup"

// CgroupDirs returns the sandbox's cgroup directory in every hierarchy where it exists.
func CgroupDirs(parent, id string) []string {
	ctrls, _ := os.ReadDir(CgroupRoot)
	var out []string
	for _, c := range ctrls {
		dir := filepath.Join(CgroupRoot, c.Name(), CgroupPath(parent, id))
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			out = append(out, dir)
		}
	}
	return out
}

// CgroupsGone reports whether the sandbox has no cgroup directory left.
func CgroupsGone(parent, id string) bool { return len(CgroupDirs(parent, id)) == 0 }

// CgroupPIDs returns the pids of every process in the sandbox's cgroup (nested cgroups
// included), read from the pids controller, or the memory one if pids is not mounted.
func CgroupPIDs(parent, id string) []int {
	var pids []int
	for _, ctrl := range []string{"pids", "memory"} {
		root := filepath.Join(CgroupRoot, ctrl, CgroupPath(parent, id))
		if _, err := os.Stat(root); err != nil {
			continue
		}
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
		return pids
	}
	return nil
}

// KillCgroup sends SIGKILL to every process in the sandbox's cgroup. It is the last
// resort when the runtime's own state is gone or broken.
func KillCgroup(parent, id string) {
	for _, pid := range CgroupPIDs(parent, id) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// RemoveCgroups removes the sandbox's cgroup directories (children first) in every
// hierarchy. rmdir of a cgroup whose tasks are still exiting fails with EBUSY, so it
// retries for up to a second.
func RemoveCgroups(parent, id string) error {
	var errs []error
	for _, dir := range CgroupDirs(parent, id) {
		var last error
		for try := 0; try < 50; try++ {
			if last = rmdirTree(dir); last == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if last != nil {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dir, last))
		}
	}
	return errors.Join(errs...)
}

// RemoveParentCgroups removes the node's parent cgroups if they are empty.
func RemoveParentCgroups(parent string) {
	ctrls, _ := os.ReadDir(CgroupRoot)
	for _, c := range ctrls {
		_ = syscall.Rmdir(filepath.Join(CgroupRoot, c.Name(), parent))
	}
}

func rmdirTree(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := rmdirTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func readInt(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v, err == nil
}

// ReadCgroupStats reads the sandbox's cgroup v1 accounting (the layout on our hosts).
// A sandbox with no cgroup left (gone, or never started here) is KindNotFound: its
// counters can no longer be read, which callers must not take for a reset to zero.
func ReadCgroupStats(parent, id string) (runtime.Stats, error) {
	var st runtime.Stats
	p := CgroupPath(parent, id)
	ok := false
	if v, found := readInt(filepath.Join(CgroupRoot, "cpuacct", p, "cpuacct.usage")); found {
		st.CPUSeconds, ok = float64(v)/1e9, true
	}
	if v, found := readInt(filepath.Join(CgroupRoot, "memory", p, "memory.usage_in_bytes")); found {
		st.MemoryBytes, ok = v, true
	}
	if v, found := readInt(filepath.Join(CgroupRoot, "memory", p, "memory.limit_in_bytes")); found {
		st.MemoryLimit = v
	}
	if v, found := readInt(filepath.Join(CgroupRoot, "pids", p, "pids.current")); found {
		st.PIDs, ok = v, true
	}
	if !ok {
		return st, domain.Errorf(domain.KindNotFound, "sandbox %s has no cgroup under %s", id, CgroupRoot)
	}
	return st, nil
}

// SetCPUQuota sets the CFS quota of the sandbox's cgroup to c: cpu.cfs_period_us and
// cpu.cfs_quota_us in the cgroup v1 cpu hierarchy, or cpu.max on a cgroup2-only host.
// It fails when the sandbox has no cpu cgroup to write: the caller must not leave the
// sandbox running without its limit.
func SetCPUQuota(parent, id string, c CPU) error {
	p := CgroupPath(parent, id)
	v1 := filepath.Join(CgroupRoot, "cpu", p)
	if fi, err := os.Stat(v1); err == nil && fi.IsDir() {
		// The period first: a quota is checked against the period in force.
		if err := os.WriteFile(filepath.Join(v1, "cpu.cfs_period_us"), []byte(strconv.FormatUint(c.Period, 10)), 0o644); err != nil {
			return fmt.Errorf("setting the sandbox's CPU period: %w", err)
		}
		if err := os.WriteFile(filepath.Join(v1, "cpu.cfs_quota_us"), []byte(strconv.FormatInt(c.Quota, 10)), 0o644); err != nil {
			return fmt.Errorf("setting the sandbox's CPU quota: %w", err)
		}
		return nil
	}
	v2 := filepath.Join(CgroupRoot, p)
	if _, err := os.Stat(filepath.Join(v2, "cpu.max")); err != nil {
		return fmt.Errorf("the sandbox has no cpu cgroup (neither %s nor %s/cpu.max): %w", v1, v2, err)
	}
	if err := os.WriteFile(filepath.Join(v2, "cpu.max"), []byte(fmt.Sprintf("%d %d", c.Quota, c.Period)), 0o644); err != nil {
		return fmt.Errorf("setting the sandbox's CPU quota: %w", err)
	}
	return nil
}
