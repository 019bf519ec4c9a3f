package node

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/network"
	"github.com/warren-sh/warren/internal/runtime"
)

// fakeDriver is a runtime.Driver whose calls do nothing unless a function is set.
type fakeDriver struct {
	start func(runtime.Spec) (runtime.Handle, error)
}

func (f *fakeDriver) Capabilities() runtime.Capabilities { return runtime.Capabilities{Name: "fake"} }
func (f *fakeDriver) Start(_ context.Context, s runtime.Spec) (runtime.Handle, error) {
	if f.start != nil {
		return f.start(s)
	}
	return runtime.Handle{ID: s.ID, Driver: "fake"}, nil
}
func (f *fakeDriver) Status(context.Context, runtime.Handle) (runtime.Status, error) {
	return runtime.StatusGone, nil
}
func (f *fakeDriver) Destroy(context.Context, runtime.Handle) error { return nil }
func (f *fakeDriver) List(context.Context) ([]string, error)        { return nil, nil }

// testNode is a node with a real network manager (its own name and pool) and drv.
func testNode(t testing.TB, drv runtime.Driver) *Node {
	t.Helper()
	needRoot(t)
	name := fmt.Sprintf("nt%d", os.Getpid()%100000)
	netm, err := network.New(network.Config{Name: name, Pool: netip.MustParsePrefix(fmt.Sprintf("10.253.%d.0/24", os.Getpid()%256))})
	if err != nil {
		t.Fatal(err)
	}
	if err := netm.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netm.Close(context.Background()) })
	agent := filepath.Join(t.TempDir(), "warren-agent")
	if err := os.WriteFile(agent, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Dir: filepath.Join(t.TempDir(), "sandboxes"), AgentPath: agent, Driver: drv, Network: netm})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStartStopDisk starts a sandbox with a disk limit on a fake driver and checks
// the spec the driver gets and that Stop leaves nothing.
func TestStartStopDisk(t *testing.T) {
	var got runtime.Spec
	n := testNode(t, &fakeDriver{start: func(s runtime.Spec) (runtime.Handle, error) {
		got = s
		return runtime.Handle{ID: s.ID, Driver: "fake"}, nil
	}})
	lower := t.TempDir()
	id := domain.NewID(20)
	st, err := n.start(context.Background(), startSpec{ID: id, Slot: 3, RootFS: lower, Limits: domain.Limits{DiskMB: 64}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(n.cfg.Dir, id)
	if got.RootFS != filepath.Join(dir, "rootfs") || got.NetNSPath == "" || got.ResolvConf == "" || got.StateDir != dir {
		t.Errorf("driver spec %+v", got)
	}
	if m, _ := mountsUnder(dir); len(m) != 2 {
		t.Errorf("mounts %v, want the disk and the overlay", m)
	}
	if err := n.Stop(context.Background(), id, 3, &st.Handle); err != nil {
		t.Fatal(err)
	}
	if m, _ := mountsUnder(dir); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if devs := LoopDevicesUnder(n.cfg.Dir); len(devs) > 0 {
		t.Errorf("loop devices left: %v", devs)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("sandbox directory left: %v", err)
	}
}

// BenchmarkStart measures Node.Start (network and root filesystem, prepared in
// parallel, with a driver that does nothing) with and without a disk limit, the two
// alternating so that both see the same host load. Stop is not timed.
func BenchmarkStart(b *testing.B) {
	n := testNode(b, &fakeDriver{})
	lower := b.TempDir()
	var took [2]time.Duration
	for i := 0; i < b.N; i++ {
		for k, disk := range []int64{0, 2048} {
			id := domain.NewID(20)
			t0 := time.Now()
			st, err := n.start(context.Background(), startSpec{ID: id, Slot: 1, RootFS: lower, Limits: domain.Limits{DiskMB: disk}})
			took[k] += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			if err := n.Stop(context.Background(), id, 1, &st.Handle); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(took[0].Microseconds())/float64(b.N)/1000, "plain-ms/start")
	b.ReportMetric(float64(took[1].Microseconds())/float64(b.N)/1000, "disk-ms/start")
}
