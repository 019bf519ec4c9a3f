package netns

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/testenv"
	"golang.org/x/sys/unix"
)

// inode identifies the network namespace at path (a /proc link or a bind mount).
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestDoErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, c := range []struct {
		name, path string
		f          func() error
		want       string
	}{
		{"missing namespace", "/nonexistent/ns", func() error { return nil }, "opening network namespace /nonexistent/ns"},
		{"not a namespace", "/proc/self/status", func() error { return nil }, "joining network namespace /proc/self/status"},
		{"f's own error", "/proc/thread-self/ns/net", func() error { return boom }, "boom"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := Do(c.path, c.f)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Do(%s) = %v, want an error containing %q", c.path, err, c.want)
			}
		})
	}
}

// TestDoRestores: f runs in the target namespace, a listener it opens stays there, and
// neither the calling threads nor the main thread are left in it, however many calls run
// at once.
func TestDoRestores(t *testing.T) {
	testenv.NeedsRoot(t, "network namespaces")
	testenv.NeedsTool(t, "ip")
	name := fmt.Sprintf("wtnetns%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v %s", err, out)
	}
	path := "/var/run/netns/" + name
	host, target := inode(t, "/proc/self/ns/net"), inode(t, path)
	if host == target {
		t.Fatal("the new namespace is the host's")
	}

	if err := Do(path, func() error {
		if got := inode(t, "/proc/thread-self/ns/net"); got != target {
			t.Errorf("f ran in namespace %d, want %d", got, target)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(path, "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := ListenPacket(path, "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := Listen("/nonexistent/ns", "tcp4", "127.0.0.1:0"); err == nil {
		t.Error("Listen in a missing namespace succeeded")
	}
	defer ln.Close()
	// The sockets are in the namespace: dials from there reach them.
	if err := Do(path, func() error {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			return err
		}
		c.Close()
		u, err := net.Dial("udp4", pc.LocalAddr().String())
		if err != nil {
			return err
		}
		defer u.Close()
		if _, err := u.Write([]byte("hi")); err != nil {
			return err
		}
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 8)
		n, _, err := pc.ReadFrom(b)
		if err != nil || string(b[:n]) != "hi" {
			return fmt.Errorf("udp read %q: %v", b[:n], err)
		}
		return nil
	}); err != nil {
		t.Errorf("reaching the sockets from their namespace: %v", err)
	}

	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Do(path, func() error { return nil }); err != nil {
				t.Error(err)
			}
			if got := inode(t, "/proc/thread-self/ns/net"); got != host {
				t.Errorf("a goroutine after Do runs in namespace %d, want the host's %d", got, host)
			}
		}()
	}
	wg.Wait()
	if got := inode(t, "/proc/self/ns/net"); got != host {
		t.Errorf("the main thread is in namespace %d after Do, want the host's %d", got, host)
	}
}
