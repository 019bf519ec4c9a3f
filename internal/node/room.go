package node

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/domain"
)

// Default reserves of Room: what the host keeps for itself (the server, the kernel's
// caches, the database, logs) beyond anything sandboxes may use.
const (
	DefaultMemoryReserveMB = 512
	DefaultDiskReserveMB   = 1024
	// defaultRoomRetryAfter is how long a refused client is told to wait: sandboxes end
	// and release memory and disk on the scale of their timeouts.
	defaultRoomRetryAfter = 30 * time.Second
)

// Room is node admission: whether this host has room for one more sandbox, by its free
// memory and the free disk under the sandbox directory. Quotas bound what one team may
// hold; Room keeps the teams together from exhausting the host.
type Room struct {
	// Dir is the directory whose file system holds the sandboxes' disks.
	Dir string
	// MemoryReserveMB and DiskReserveMB are kept free beyond a sandbox's limits.
	MemoryReserveMB, DiskReserveMB int64
	// RetryAfter is the wait a refusal suggests (default 30 s).
	RetryAfter time.Duration
	// Read returns the host's free memory (MemAvailable) and Dir's free disk, in MiB;
	// nil reads /proc/meminfo and statfs(2). Tests give a fake.
	Read func(dir string) (memMB, diskMB int64, err error)
}

// Admit returns nil when the host has a sandbox with limits l's memory and disk limits
// free, plus the reserves, and otherwise a domain.NodeFull error (KindUnavailable). A
// reading that fails admits: the quotas still hold, and an unreadable /proc must not
// stop every create.
func (r *Room) Admit(_ context.Context, l domain.Limits) error {
	read := r.Read
	if read == nil {
		read = ReadFree
	}
	mem, disk, err := read(r.Dir)
	if err != nil {
		return nil
	}
	wait := r.RetryAfter
	if wait <= 0 {
		wait = defaultRoomRetryAfter
	}
	if need := l.MemoryMB + r.MemoryReserveMB; mem < need {
		return domain.NodeFull("memory", need, mem, wait)
	}
	if need := l.DiskMB + r.DiskReserveMB; disk < need {
		return domain.NodeFull("disk", need, disk, wait)
	}
	return nil
}

// ReadFree reads the host's available memory (MemAvailable in /proc/meminfo) and the
// space free to unprivileged users on dir's file system, in MiB.
func ReadFree(dir string) (memMB, diskMB int64, err error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	if memMB, err = memAvailableMB(b); err != nil {
		return 0, 0, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return memMB, int64(st.Bavail) * st.Bsize >> 20, nil
}

// memAvailableMB finds MemAvailable in the text of /proc/meminfo.
func memAvailableMB(meminfo []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 2 && string(f[0]) == "MemAvailable:" {
			kb, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/meminfo MemAvailable %q: %w", f[1], err)
			}
			return kb >> 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/meminfo has no MemAvailable")
}
