package node

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime/gvisor"
	"github.com/warren-sh/warren/internal/template"
	"github.com/warren-sh/warren/internal/testenv"
)

// TestReadUsageGVisor starts a real gVisor sandbox whose PID 1 writes 8 MiB to its
// disk and then spins, and checks every part of ReadUsage: CPU grows by about the wall
// time (one core's worth, the sandbox's limit), memory is charged, the disk shows the
// file, traffic sent to the sandbox counts as received, and after Stop the usage is
// KindNotFound.
func TestReadUsageGVisor(t *testing.T) {
	needRoot(t)
	for _, tool := range []string{"runsc", "ip", "nft", "mkfs.ext4"} {
		testenv.NeedsTool(t, tool)
	}
	// The first test of a fresh machine to need the base template builds it (debootstrap,
	// minutes on a busy 2-core machine), so the build gets its own, longer deadline.
	buildCtx, cancelBuild := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancelBuild()
	rootfs, err := (&template.Builder{CacheDir: template.DefaultCacheDir, DebCache: template.DefaultDebCache}).Ensure(buildCtx, template.Base())
	if err != nil {
		t.Fatalf("building the base template: %v", err)
	}
	drv, err := gvisor.New(gvisor.Config{Root: t.TempDir(), CgroupParent: "/warren-test-usage"})
	if err != nil {
		t.Fatalf("gvisor driver: %v", err)
	}
	t.Cleanup(drv.Cleanup)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n := testNode(t, drv)
	// PID 1 is this script instead of warren-agent.
	script := "#!/bin/sh\ndd if=/dev/zero of=/var/tmp/fill bs=1M count=8 2>/dev/null\nwhile :; do :; done\n"
	if err := os.WriteFile(n.cfg.AgentPath, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	id := domain.NewID(20)
	const slot = 5
	st, err := n.start(ctx, startSpec{ID: id, Slot: slot, RootFS: rootfs,
		Limits: domain.Limits{CPUCores: 1, MemoryMB: 256, DiskMB: 64, MaxProcesses: 256}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = n.Stop(context.Background(), id, slot, &st.Handle)
		}
	})
	h := &st.Handle

	// The disk shows the file once the script has written it.
	var u0 Usage
	deadline := time.Now().Add(20 * time.Second)
	for {
		if u0, err = n.ReadUsage(ctx, id, h); err != nil {
			t.Fatal(err)
		}
		if u0.DiskBytes >= 8<<20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if u0.DiskBytes < 8<<20 || u0.DiskBytes > 16<<20 {
		t.Errorf("disk use %d bytes after writing 8 MiB to a fresh 64 MiB disk", u0.DiskBytes)
	}
	if u0.MemoryBytes <= 0 {
		t.Errorf("memory %d bytes", u0.MemoryBytes)
	}

	// CPU: the sandbox spins on its one core.
	t0 := time.Now()
	time.Sleep(time.Second)
	u1, err := n.ReadUsage(ctx, id, h)
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(t0)
	cpu := time.Duration(u1.CPUMicros-u0.CPUMicros) * time.Microsecond
	t.Logf("over %v of wall time: cpu +%v, memory %d MiB, disk %d KiB", wall.Round(time.Millisecond), cpu, u1.MemoryBytes>>20, u1.DiskBytes>>10)
	// Other work on the (2 shared core) host can take some of the core; the cgroup's
	// quota caps the sandbox at about one core.
	if cpu < wall*3/10 || cpu > wall*12/10 {
		t.Errorf("a sandbox spinning on one core used %v of CPU in %v", cpu, wall)
	}

	// Traffic into the sandbox counts as received.
	c, err := net.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(st.Address), 9))
	for i := 0; i < 10; i++ {
		if _, err := c.WriteTo(make([]byte, 1000), dst); err != nil {
			t.Fatal(err)
		}
	}
	// The datagrams wait in the host's neighbour queue until the sandbox answers ARP.
	var u2 Usage
	for deadline := time.Now().Add(5 * time.Second); ; {
		if u2, err = n.ReadUsage(ctx, id, h); err != nil {
			t.Fatal(err)
		}
		if u2.NetRxBytes-u1.NetRxBytes >= 10*1000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := u2.NetRxBytes - u1.NetRxBytes; got < 10*1000 {
		t.Errorf("sent 10 x 1000 bytes to the sandbox: rx +%d", got)
	}
	if u2.CPUMicros < u1.CPUMicros || u2.NetTxBytes < u1.NetTxBytes {
		t.Errorf("counters went backwards: %+v then %+v", u1, u2)
	}

	if err := n.Stop(ctx, id, slot, h); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if _, err := n.ReadUsage(ctx, id, h); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("usage of a stopped sandbox: err %v, want KindNotFound", err)
	}
	for _, left := range []string{n.sandboxDir(id), "/sys/fs/cgroup/cpuacct/warren-test-usage/" + id, "/sys/fs/cgroup/memory/warren-test-usage/" + id} {
		if _, err := os.Stat(left); !os.IsNotExist(err) {
			t.Errorf("leak: %s is left after Stop (%v)", left, err)
		}
	}
}

// TestDiskUsageNoLimit measures a writable layer that lives on the node's own file
// system: the allocated blocks of the upper and work directories, hard links once.
func TestDiskUsageNoLimit(t *testing.T) {
	n := &Node{cfg: Config{Dir: t.TempDir()}}
	id := "dddddddddddddddddddd"
	if _, err := n.diskUsage(context.Background(), id); !domain.IsKind(err, domain.KindNotFound) {
		t.Fatalf("no sandbox: err %v, want KindNotFound", err)
	}
	dir := n.sandboxDir(id)
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{filepath.Join(upper, "sub"), work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	empty, err := n.diskUsage(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(upper, "sub", "big")
	if err := os.WriteFile(big, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(big, filepath.Join(upper, "link")); err != nil {
		t.Fatal(err)
	}
	// A file outside the layer does not count.
	if err := os.WriteFile(filepath.Join(dir, "console.log"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := n.diskUsage(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(big)
	if err != nil {
		t.Fatal(err)
	}
	want := empty + fi.Sys().(*syscall.Stat_t).Blocks*512
	if got != want {
		t.Errorf("layer use %d bytes, want %d (empty layer %d + one 1 MiB file counted once)", got, want, empty)
	}
}
