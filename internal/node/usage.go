package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// Usage is one reading of a sandbox's resource use. CPU and network are cumulative
// counters since the sandbox started (they only go backwards if the runtime's
// accounting was recreated); memory and disk are gauges at the time of the reading.
type Usage struct {
	// CPUMicros is the CPU time of every host task of the sandbox (for gVisor that
	// includes the sentry and gofer: what the sandbox costs the host), from the
	// driver's cgroup accounting (runtime.StatsReader). Zero when the driver reads no
	// stats.
	CPUMicros int64
	// MemoryBytes is the sandbox cgroup's current memory use (page cache included).
	MemoryBytes int64
	// DiskBytes is the space used by the sandbox's writable layer; see diskUsage.
	DiskBytes int64
	// NetRxBytes and NetTxBytes count the bytes into and out of the sandbox over its
	// link (network.Manager.Counters).
	NetRxBytes int64
	NetTxBytes int64
}

// ReadUsage reads the resource use of the sandbox id, started with handle h (nil when
// unknown: the default driver is asked). A sandbox whose network link, runtime
// accounting or writable layer is gone (halted, stopped, or never started here) gives
// KindNotFound: its final counters can no longer be read, so a caller that meters must
// read before Halt or Stop.
func (n *Node) ReadUsage(ctx context.Context, id string, h *runtime.Handle) (Usage, error) {
	var u Usage
	var err error
	// The link goes first at Halt, so it is the cheapest test that the sandbox is there.
	if u.NetRxBytes, u.NetTxBytes, err = n.cfg.Network.Counters(id); err != nil {
		return Usage{}, err
	}
	if sr, ok := n.driverOf(h).(runtime.StatsReader); ok {
		handle := runtime.Handle{ID: id}
		if h != nil {
			handle = *h
		}
		st, err := sr.Stats(ctx, handle)
		if err != nil {
			return Usage{}, fmt.Errorf("reading the runtime accounting of sandbox %s: %w", id, err)
		}
		// A driver may read a missing cgroup as zeros; a sandbox that exists has at
		// least some memory charged, so all zeros means its accounting is gone and must
		// not be taken for a counter reset.
		if st.CPUSeconds == 0 && st.MemoryBytes == 0 && st.PIDs == 0 {
			return Usage{}, domain.Errorf(domain.KindNotFound, "sandbox %q has no runtime accounting (its cgroup is gone)", id)
		}
		u.CPUMicros = int64(math.Round(st.CPUSeconds * 1e6))
		u.MemoryBytes = st.MemoryBytes
	}
	if u.DiskBytes, err = n.diskUsage(ctx, id); err != nil {
		return Usage{}, err
	}
	return u, nil
}

// ext4Magic is the statfs f_type of ext4 (EXT4_SUPER_MAGIC).
const ext4Magic = 0xEF53

// diskUsage returns the bytes used by the sandbox's writable layer (the overlay's upper
// and work directories):
//
//   - with a disk limit, the layer is the only thing on the sandbox's ext4 image mounted
//     at <dir>/disk (see disk.go), and the used space is statfs's (f_blocks - f_bfree) x
//     f_bsize. ext4 leaves its own metadata (inode tables, bitmaps) out of f_blocks, so
//     this is the layer's data and directory blocks, plus a few KiB for the root and
//     lost+found directories; delayed allocations count as used at once, and deleted
//     files stop counting at once. (The image file's allocated blocks would instead
//     include the formatted metadata and never shrink.)
//   - without one, the layer is the upper and work directories in <dir> on the node's
//     own file system, and the used space is the sum of their files' allocated blocks
//     (st_blocks x 512, each inode once). That costs one lstat per file of the layer.
func (n *Node) diskUsage(ctx context.Context, id string) (int64, error) {
	dir := n.sandboxDir(id)
	mnt := filepath.Join(dir, "disk")
	if _, err := os.Stat(mnt); err == nil {
		var sf unix.Statfs_t
		if err := unix.Statfs(mnt, &sf); err != nil {
			return 0, fmt.Errorf("reading the disk use of sandbox %s: %w", id, err)
		}
		if sf.Type != ext4Magic {
			// The image is unmounted (the sandbox is being removed): mnt is now a plain
			// directory of the node's file system.
			return 0, domain.Errorf(domain.KindNotFound, "sandbox %q has no mounted disk", id)
		}
		return int64(sf.Blocks-sf.Bfree) * sf.Bsize, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("reading the disk use of sandbox %s: %w", id, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "upper")); errors.Is(err, os.ErrNotExist) {
		return 0, domain.Errorf(domain.KindNotFound, "sandbox %q has no writable layer on this node", id)
	}
	return allocatedBytes(ctx, filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
}

// allocatedBytes sums the allocated blocks of every file and directory under roots,
// counting hard-linked inodes once. Files that vanish during the walk are skipped.
func allocatedBytes(ctx context.Context, roots ...string) (int64, error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			fi, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				return nil
			}
			k := inode{uint64(st.Dev), st.Ino}
			if st.Nlink > 1 && !fi.IsDir() {
				if seen[k] {
					return nil
				}
				seen[k] = true
			}
			total += st.Blocks * 512
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("measuring the writable layer %s: %w", root, err)
		}
	}
	return total, nil
}
