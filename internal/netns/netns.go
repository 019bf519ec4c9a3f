// Package netns runs code inside a Linux network namespace. Sockets opened there stay in
// that namespace after the call returns, so a listener or a dialled connection made by f
// can be used from any goroutine.
package netns

import (
	"fmt"
	"net"
	"os"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// Do runs f on a locked OS thread that has joined the network namespace at path (a
// /var/run/netns/<name> bind mount or a /proc/<pid>/ns/net link) and returns f's error.
//
// The thread goes back to its own namespace before it is unlocked. If it cannot, it is
// left locked, so that the Go runtime ends it with its goroutine instead of letting it
// serve other goroutines from the wrong namespace. Never pass "/proc/self/ns/net" for
// "the host": that is the namespace of the process's main thread, which the runtime
// cannot end and only parks, so after such a failure it may be anywhere; the current
// goroutine's namespace is simply the caller's own, with no Do at all.
func Do(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			goruntime.UnlockOSThread() // nothing changed yet
			errc <- fmt.Errorf("opening this thread's network namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open(path)
		if err != nil {
			goruntime.UnlockOSThread()
			errc <- fmt.Errorf("opening network namespace %s: %w", path, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			goruntime.UnlockOSThread()
			errc <- fmt.Errorf("joining network namespace %s: %w", path, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("returning from network namespace %s: %w", path, err)
			return // still locked: the thread ends with this goroutine
		}
		goruntime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Listen opens a listener (net.Listen's network and address) inside the network
// namespace at path; it keeps serving there from any goroutine.
func Listen(path, network, addr string) (ln net.Listener, err error) {
	err = Do(path, func() error {
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// ListenPacket opens a packet socket (net.ListenPacket's network and address) inside
// the network namespace at path.
func ListenPacket(path, network, addr string) (pc net.PacketConn, err error) {
	err = Do(path, func() error {
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}
