package oci

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// Moving a process into a cgroup (what runsc and runc do first when they start a
// sandbox: they write themselves into its cgroup.procs) takes the kernel's
// cgroup_threadgroup_rwsem for writing. After a quiet spell that waits for an RCU grace
// period: 7-19 ms on our machines, measured as the first of runsc's joins, while a move
// within ~10 ms of the last one takes 0.03 ms. A create is such a first move, every
// time, and nothing of the sandbox starts before it. (A bare `runsc run` with no
// cgroups, the bench's baseline, pays none of it.)
//
// PrimeMigration makes that wait start early: it moves this process into the cgroup it
// is already in (a move to the same place changes nothing, but takes the same lock),
// so the grace period runs while the caller prepares the sandbox, and the runtime's own
// move finds it passed, or under way. It blocks for the grace period; call it in a
// goroutine. One call runs at a time: the others return at once, as the one running
// serves them too. An error (no cgroup filesystem, a read-only one) only means
// there is nothing to gain.
func PrimeMigration() error {
	if !priming.CompareAndSwap(false, true) {
		return nil
	}
	defer priming.Store(false)
	path, err := ownProcsFile(CgroupRoot)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("priming cgroup migrations: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString("0"); err != nil { // 0: the writing process
		return fmt.Errorf("priming cgroup migrations with %s: %w", path, err)
	}
	return nil
}

var priming atomic.Bool

// ownProcsFile is the cgroup.procs of this process's own cgroup in one hierarchy below
// root: a cgroup v1 controller's (the rwsem is shared by all hierarchies), or cgroup
// v2's where it is the only one.
func ownProcsFile(root string) (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	return procsFileFrom(root, b)
}

// procsFileFrom picks the cgroup.procs file from the lines of /proc/self/cgroup
// (ID:controllers:path): the first v1 hierarchy mounted below root, else cgroup v2's
// (at root itself, or at root/unified on a hybrid host).
func procsFileFrom(root string, selfCgroup []byte) (string, error) {
	var v2 string
	sc := bufio.NewScanner(bytes.NewReader(selfCgroup))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") || strings.Contains(parts[2], "..") {
			continue
		}
		if parts[1] == "" {
			v2 = parts[2]
			continue
		}
		dir := filepath.Join(root, strings.TrimPrefix(parts[1], "name="), parts[2])
		if exists(filepath.Join(dir, "cgroup.procs")) {
			return filepath.Join(dir, "cgroup.procs"), nil
		}
	}
	if v2 != "" {
		for _, mnt := range []string{root, filepath.Join(root, "unified")} {
			if p := filepath.Join(mnt, v2, "cgroup.procs"); exists(filepath.Join(mnt, "cgroup.controllers")) && exists(p) {
				return p, nil
			}
		}
	}
	return "", errors.New("priming cgroup migrations: this process's cgroup is not below " + root)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
