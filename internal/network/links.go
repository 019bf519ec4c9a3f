package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The namespace and veth pair of a sandbox are made with netlink from this process,
// not with ip(8): each ip run is a process start (14 ms for `ip -V` on a 2-core test
// guest, 20-30 ms a batch), and the two batches were the longest step before
// `runsc run` on a cold create. The result is what `ip netns add` and the batches
// made: a namespace file bind-mounted under the (shared) netns directory, so that
// ip-netns(8) and the runtimes find it as before.

// netnsDirs are the netns directories already made shared mount points (by dir).
var (
	netnsDirsMu sync.Mutex
	netnsDirs   = map[string]bool{}
)

// prepareNetnsDir creates dir and makes it a shared mount point, as `ip netns add`
// does: a namespace mounted there later shows in every mount namespace that was
// copied from this one (runsc's and runc's included). Done once per directory; a
// failure is tried again on the next call.
func prepareNetnsDir(dir string) error {
	netnsDirsMu.Lock()
	defer netnsDirsMu.Unlock()
	if netnsDirs[dir] {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) { // not a mount point yet
		if err = unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err == nil {
			err = unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
		}
	}
	if err != nil {
		return fmt.Errorf("making %s a shared mount point: %w", dir, err)
	}
	netnsDirs[dir] = true
	return nil
}

// newNamedNetns creates a network namespace and pins it at path (a bind mount of it),
// without moving the calling goroutine: the new namespace is entered on a locked
// thread that goes back to its own before it is released.
func newNamedNetns(path string) (err error) {
	if err := prepareNetnsDir(filepath.Dir(path)); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	f.Close()
	defer func() {
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("opening this thread's network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		merr := unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), path, "none", unix.MS_BIND, "")
		if err := netns.Set(orig); err != nil {
			// The thread stays in the new namespace: keep it locked, so that it ends
			// with this goroutine instead of running other goroutines there.
			done <- errors.Join(merr, fmt.Errorf("returning to the original network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		if merr != nil {
			merr = fmt.Errorf("bind-mounting the new namespace on %s: %w", path, merr)
		}
		done <- merr
	}()
	return <-done
}

// removeNamedNetns unpins the namespace at path and removes the file, as
// `ip netns del` does; the namespace ends once nothing else holds it. A missing file
// is not an error.
func removeNamedNetns(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}

// attachLinks creates a's namespace and veth pair, and configures both ends: the host
// end (a.HostIf) with the gateway address, eth0 in the namespace with the sandbox's,
// lo and both ends up, and a default route via the gateway.
func attachLinks(a *Attachment) error {
	if err := newNamedNetns(a.NetNSPath); err != nil {
		return fmt.Errorf("creating network namespace %s: %w", a.NetNSName, err)
	}
	ns, err := netns.GetFromPath(a.NetNSPath)
	if err != nil {
		return fmt.Errorf("opening network namespace %s: %w", a.NetNSName, err)
	}
	defer ns.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a.HostIf}, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns)}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("creating veth pair %s/eth0: %w", a.HostIf, err)
	}
	host, err := netlink.LinkByName(a.HostIf)
	if err != nil {
		return fmt.Errorf("finding %s: %w", a.HostIf, err)
	}
	if err := netlink.AddrAdd(host, ipNet(a.Gateway, a.Prefix)); err != nil {
		return fmt.Errorf("adding %s/%d to %s: %w", a.Gateway, a.Prefix, a.HostIf, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("setting %s up: %w", a.HostIf, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in namespace %s: %w", a.NetNSName, err)
	}
	defer h.Close()
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("finding eth0 in %s: %w", a.NetNSName, err)
	}
	if err := h.AddrAdd(eth0, ipNet(a.Address, a.Prefix)); err != nil {
		return fmt.Errorf("adding %s/%d to eth0 in %s: %w", a.Address, a.Prefix, a.NetNSName, err)
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("finding lo in %s: %w", a.NetNSName, err)
	}
	for _, l := range []netlink.Link{lo, eth0} {
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("setting %s up in %s: %w", l.Attrs().Name, a.NetNSName, err)
		}
	}
	route := &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.IP(a.Gateway.AsSlice())}
	if err := h.RouteAdd(route); err != nil {
		return fmt.Errorf("adding the default route via %s in %s: %w", a.Gateway, a.NetNSName, err)
	}
	// A link set up sends nothing until the kernel's link watcher has activated its
	// queue (it drops packets meanwhile, an ARP request too, which is retried only a
	// second later). ip's process starts used to hide that; wait for both ends.
	for _, end := range []struct {
		h    *netlink.Handle
		name string
	}{{nil, a.HostIf}, {h, "eth0"}} {
		if err := waitOperUp(end.h, end.name, operUpWait); err != nil {
			return fmt.Errorf("%s in %s: %w", end.name, a.NetNSName, err)
		}
	}
	return nil
}

// operUpWait bounds the wait for a veth end to be operationally up: the link watcher
// handles a veth's change at once (it is urgent), so this is a guard, not a delay.
const operUpWait = 2 * time.Second

// waitOperUp polls the link called name (through h, or this thread's namespace when h
// is nil) until its operational state is up, or for at most limit.
func waitOperUp(h *netlink.Handle, name string, limit time.Duration) error {
	byName := netlink.LinkByName
	if h != nil {
		byName = h.LinkByName
	}
	deadline := time.Now().Add(limit)
	for {
		l, err := byName(name)
		if err != nil {
			return fmt.Errorf("reading its state: %w", err)
		}
		st := l.Attrs().OperState
		if st == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not up %v after it was set up (operational state %s)", limit, st)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// ipNet is addr/prefix as netlink takes an interface address.
func ipNet(addr netip.Addr, prefix int) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(addr.AsSlice()), Mask: net.CIDRMask(prefix, addr.BitLen())}}
}

// deleteLink removes the link called name; a missing one is not an error.
func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("finding %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil && !linkGone(name) {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	return nil
}
