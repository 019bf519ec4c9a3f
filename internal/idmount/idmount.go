// Package idmount makes id-mapped bind mounts (Linux ≥ 5.19 for overlayfs over them):
// a view of a directory tree in which every owner is shifted into a host id range,
// without copying or chowning a single file. The node uses one per user-namespaced
// sandbox as the lower layer of its overlay, so each sandbox's range owns its view of
// the template and nothing else.
package idmount

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Range maps ids 0..Size-1 of the tree to host ids UID..UID+Size-1 (GID.. for groups).
type Range struct {
	UID, GID, Size uint32
}

// Mount mounts src at dst (an existing directory) with owners shifted by r: a file src
// shows as owned by uid u is shown at dst as owned by r.UID+u (ids at or above r.Size
// show as the overflow id, 65534). The node uses it only as an overlay's lower layer,
// which overlayfs never writes to. Unmount it with unix.Unmount(dst, 0).
func Mount(src, dst string, r Range) error {
	nsfd, err := userNS(r)
	if err != nil {
		return fmt.Errorf("making a user namespace for the id mapping %d:%d+%d: %w", r.UID, r.GID, r.Size, err)
	}
	defer unix.Close(nsfd)
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("cloning %s for an id-mapped mount (open_tree): %w", src, err)
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(nsfd)}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("id-mapping %s (mount_setattr; needs Linux ≥ 5.12 and a filesystem that supports id-mapped mounts): %w", src, err)
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mounting the id-mapped %s at %s (move_mount): %w", src, dst, err)
	}
	return nil
}

// userNS returns an open file descriptor of a new user namespace whose uid and gid maps
// are r. The namespace is made by a child that is stopped (traced) before it runs
// anything of the executable, and is killed and reaped at once: the descriptor keeps
// the namespace alive on its own, and nothing else is left.
func userNS(r Range) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	// A traced child can only be waited for by the tracer thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command(exe)
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(r.UID), Size: int(r.Size)}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(r.GID), Size: int(r.Size)}},
		Ptrace:      true, // stops at exec: the program never runs
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return -1, err
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	kerr := cmd.Process.Kill()
	_ = cmd.Wait()
	if err != nil {
		return -1, errors.Join(err, kerr)
	}
	return fd, nil
}
