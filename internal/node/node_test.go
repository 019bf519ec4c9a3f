package node

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/network"
	"github.com/warren-sh/warren/internal/runtime"
)

// fakeDriver is a runtime.Driver whose calls do nothing unless a function is set.
type fakeDriver struct {
	start func(runtime.Spec) (runtime.Handle, error)
	joins bool // Capabilities().JoinsCgroups
}

func (f *fakeDriver) Capabilities() runtime.Capabilities {
	return runtime.Capabilities{Name: "fake", JoinsCgroups: f.joins}
}
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
	n, err := New(Config{Dir: filepath.Join(t.TempDir(), "sandboxes"), AgentPath: writeFakeAgent(t), Driver: drv, Network: netm})
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
	st, err := n.start(context.Background(), startSpec{ID: id, Slot: 3, RootFS: lower, Limits: domain.Limits{DiskMB: 64},
		Agent: AgentConfig{AccessToken: "node-test-token"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(n.cfg.Dir, id)
	if got.RootFS != filepath.Join(dir, "rootfs") || got.NetNSPath == "" || got.ResolvConf == "" || got.StateDir != dir {
		t.Errorf("driver spec %+v", got)
	}
	checkAgentConfig(t, got, "node-test-token", 0, 0)
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

// shiftingDriver is a fakeDriver whose sandboxes run in a user namespace: each slot has
// its own host id range, as runc's do.
type shiftingDriver struct{ fakeDriver }

func (*shiftingDriver) IDRange(slot int) (runtime.IDRange, error) {
	base := uint32(100000 + 65536*(slot+1))
	return runtime.IDRange{UID: base, GID: base, Size: 65536}, nil
}

// TestStartIDRanges starts two sandboxes of a user-namespaced driver (one with a disk
// limit) and checks that each sees the template through an id-mapped mount owned by its
// own range, that its writable layer belongs to its own root, that the driver gets the
// slot, and that Stop leaves no mount behind.
func TestStartIDRanges(t *testing.T) {
	var got []runtime.Spec
	drv := &shiftingDriver{fakeDriver{start: func(s runtime.Spec) (runtime.Handle, error) {
		got = append(got, s)
		return runtime.Handle{ID: s.ID, Driver: "fake"}, nil
	}}}
	n := testNode(t, drv)
	lower := t.TempDir()
	if err := os.MkdirAll(filepath.Join(lower, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lower, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	type sb struct {
		id   string
		slot int
		h    runtime.Handle
	}
	var sbs []sb
	for i, slot := range []int{1, 2} {
		id := domain.NewID(20)
		st, err := n.start(context.Background(), startSpec{ID: id, Slot: slot, RootFS: lower, Limits: domain.Limits{DiskMB: int64(64 * i)}})
		if err != nil {
			t.Fatal(err)
		}
		sbs = append(sbs, sb{id, slot, st.Handle})
		t.Cleanup(func() { _ = n.Stop(context.Background(), id, slot, &st.Handle) })
	}
	for i, s := range sbs {
		r, _ := drv.IDRange(s.slot)
		dir := filepath.Join(n.cfg.Dir, s.id)
		checkAgentConfig(t, got[i], "", r.UID, r.GID)
		if got[i].Slot != s.slot {
			t.Errorf("driver got slot %d, want %d", got[i].Slot, s.slot)
		}
		for _, p := range []string{"lower/etc/passwd", "rootfs/etc/passwd", "rootfs"} {
			if uid, gid := owner(t, filepath.Join(dir, p)); uid != r.UID || gid != r.GID {
				t.Errorf("slot %d: %s is owned by %d:%d, want its range's root %d", s.slot, p, uid, gid, r.UID)
			}
		}
		if uid, _ := owner(t, lower+"/etc/passwd"); uid != 0 {
			t.Errorf("the template itself changed owner to %d", uid)
		}
	}
	for _, s := range sbs {
		if err := n.Stop(context.Background(), s.id, s.slot, &s.h); err != nil {
			t.Fatal(err)
		}
		if m, _ := mountsUnder(filepath.Join(n.cfg.Dir, s.id)); len(m) != 0 {
			t.Errorf("mounts left: %v", m)
		}
	}
}

// checkAgentConfig checks that the driver got the agent's config as a file (never in
// the environment), readable only by the sandbox's root (uid:gid on the host), in a
// directory that root owns so that the agent can remove it.
func checkAgentConfig(t *testing.T, s runtime.Spec, token string, uid, gid uint32) {
	t.Helper()
	for _, e := range s.AgentEnv {
		if strings.HasPrefix(e, "WARREN_AGENT_CONFIG=") || (token != "" && strings.Contains(e, token)) {
			t.Errorf("the agent's config is in its environment: %q", e)
		}
	}
	if !slices.Equal(s.AgentArgs, []string{"--config", runtime.AgentConfigPath}) {
		t.Errorf("agent args %q, want --config %s", s.AgentArgs, runtime.AgentConfigPath)
	}
	path := filepath.Join(s.RootFS, runtime.AgentConfigPath)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the agent's config file: %v", err)
	}
	if !strings.Contains(string(b), `"access_token":"`+token+`"`) {
		t.Errorf("config file %s", b)
	}
	if fi, _ := os.Lstat(path); fi.Mode() != 0o600 {
		t.Errorf("config file mode %v, want 0600", fi.Mode())
	}
	for _, p := range []string{path, filepath.Dir(path)} {
		if u, g := owner(t, p); u != uid || g != gid {
			t.Errorf("%s is owned by %d:%d, want the sandbox's root %d:%d", p, u, g, uid, gid)
		}
	}
}

// limitingDriver is a fakeDriver that asks for an RLIMIT_NPROC for the agent's processes.
type limitingDriver struct{ fakeDriver }

func (*limitingDriver) ProcessLimit(l domain.Limits) uint64 { return uint64(l.MaxProcesses / 2) }

// TestAgentConfigFile checks that the process limit reaches the agent's config file and
// that a template whose /.warren is a symlink is refused rather than followed.
func TestAgentConfigFile(t *testing.T) {
	var got runtime.Spec
	n := testNode(t, &limitingDriver{fakeDriver{start: func(s runtime.Spec) (runtime.Handle, error) {
		got = s
		return runtime.Handle{ID: s.ID, Driver: "fake"}, nil
	}}})
	lower := t.TempDir()
	id := domain.NewID(20)
	st, err := n.start(context.Background(), startSpec{ID: id, Slot: 4, RootFS: lower, Limits: domain.Limits{MaxProcesses: 100}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(got.RootFS, runtime.AgentConfigPath))
	if !strings.Contains(string(b), `"process_limit":50`) {
		t.Errorf("config file %s, want process_limit 50", b)
	}
	if err := n.Stop(context.Background(), id, 4, &st.Handle); err != nil {
		t.Fatal(err)
	}

	evil := t.TempDir()
	target := t.TempDir()
	if err := os.Symlink(target, filepath.Join(evil, ".warren")); err != nil {
		t.Fatal(err)
	}
	id = domain.NewID(20)
	if _, err := n.start(context.Background(), startSpec{ID: id, Slot: 5, RootFS: evil}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("start with a symlinked /.warren: %v, want a refusal", err)
	}
	if ents, _ := os.ReadDir(target); len(ents) != 0 {
		t.Errorf("the node wrote through the template's symlink: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(n.cfg.Dir, id)); !os.IsNotExist(err) {
		t.Errorf("the failed start left its directory: %v", err)
	}
}

func owner(t *testing.T, path string) (uid, gid uint32) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
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
