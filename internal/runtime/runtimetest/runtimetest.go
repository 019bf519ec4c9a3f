// Package runtimetest is the contract every runtime driver passes: start, status, list,
// destroy, and re-attaching to a sandbox through its persisted handle from a new driver
// value (a restarted server). It exercises the runtime.Driver seam alone — the suite
// prepares the root filesystem (an overlay of the base template, id-mapped into each
// sandbox's own host id range for drivers that implement runtime.IDShifter) and runs a freshly built warren-agent as PID 1 — so
// it is what a new driver (Firecracker, Cloud Hypervisor, ...) must pass first. The
// behaviour of whole sandboxes on each driver (exec, files, limits, isolation, network)
// is the full-stack suite in test/stack.
//
// A driver package wires it in with one test:
//
//	func TestContract(t *testing.T) {
//		root := t.TempDir()
//		runtimetest.Run(t, func() runtime.Driver { d, _ := New(Config{Root: root}); return d })
//	}
//
// newDriver is called more than once and must return drivers over the same state (as a
// restarted server would build).
package runtimetest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/idmount"
	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/template"
	"github.com/warren-sh/warren/internal/testenv"
)

// Shared caches of a Warren host: the base template is built once per machine.
const (
	templateCache = "/var/cache/warren/templates"
	debCache      = "/var/cache/warren/debs"
)

// suite is the state shared by the cases of one run.
type suite struct {
	newDriver func() runtime.Driver
	drv       runtime.Driver
	caps      runtime.Capabilities
	lower     string // the base template's root filesystem
	agent     string // a warren-agent built for the run
	dir       string // sandbox directories live below it
	seq       int
}

// Run runs the driver contract against the drivers newDriver makes.
func Run(t *testing.T, newDriver func() runtime.Driver) {
	testenv.NeedsRoot(t, "runtimes create namespaces, cgroups and mounts")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s := &suite{newDriver: newDriver, drv: newDriver(), dir: t.TempDir()}
	s.caps = s.drv.Capabilities()
	// A user-namespaced sandbox's root is an unprivileged host id: it must be able to
	// traverse to its root filesystem (t.TempDir's folders are 0700).
	for _, d := range []string{filepath.Dir(s.dir), s.dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	lower, err := (&template.Builder{CacheDir: templateCache, DebCache: debCache}).Ensure(ctx, template.Base())
	if err != nil {
		t.Fatalf("building the base template: %v", err)
	}
	s.lower = lower
	s.agent = BuildAgent(t)
	for _, c := range []struct {
		name string
		run  func(t *testing.T, s *suite)
	}{
		{"capabilities", testCapabilities},
		{"start, status and list", testStartStatusList},
		{"re-attach from a persisted handle", testReattach},
		{"destroy leaves no trace", testDestroy},
		{"unknown handle is gone", testUnknown},
		{"failed start leaves no trace", testFailedStart},
		{"optional interfaces", testOptional},
		{"each user-namespaced sandbox has its own id range", testIDRanges},
		{"checkpoint and restore", testCheckpoint},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, s) })
	}
	if c, ok := s.drv.(interface{ Cleanup() }); ok {
		c.Cleanup()
	}
}

func testCapabilities(t *testing.T, s *suite) {
	c := s.caps
	if c.Name == "" || strings.ContainsAny(c.Name, " /") {
		t.Errorf("capabilities name %q: want a short word (it is stored in handles and chosen by users)", c.Name)
	}
	if c.Isolation < runtime.IsolationContainer || c.Isolation > runtime.IsolationMicroVM {
		t.Errorf("isolation %v is not one of container, sandbox, microvm", c.Isolation)
	}
	if c.RootFS != runtime.RootFSDirectory {
		t.Skipf("root filesystem kind %v: this suite prepares directories only", c.RootFS)
	}
	if _, ok := s.drv.(runtime.IDShifter); ok != c.UserNamespace {
		t.Errorf("UserNamespace is %v but the driver %s runtime.IDShifter", c.UserNamespace, map[bool]string{true: "implements", false: "does not implement"}[ok])
	}
}

func testStartStatusList(t *testing.T, s *suite) {
	ctx := context.Background()
	h := s.start(t)
	if h.ID == "" || h.Driver != s.caps.Name {
		t.Errorf("handle %+v: want the sandbox id and driver %q", h, s.caps.Name)
	}
	CheckCPUQuota(t, h.ID, limits.CPUCores)
	// PID 1 (the agent) must stay up: a sandbox whose init exited is not running.
	time.Sleep(500 * time.Millisecond)
	if st, err := s.drv.Status(ctx, h); err != nil || st != runtime.StatusRunning {
		t.Errorf("status after start: %v %v, want running", st, err)
	}
	ids, err := s.drv.List(ctx)
	if err != nil || !contains(ids, h.ID) {
		t.Errorf("list: %v %v, want it to contain %s", ids, err, h.ID)
	}
	s.destroy(t, h)
}

func testReattach(t *testing.T, s *suite) {
	ctx := context.Background()
	h := s.start(t)
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back runtime.Handle
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	// A restarted server: a new driver value over the same state, the handle from JSON.
	again := s.newDriver()
	if st, err := again.Status(ctx, back); err != nil || st != runtime.StatusRunning {
		t.Errorf("status through a new driver and the persisted handle: %v %v, want running", st, err)
	}
	if ids, err := again.List(ctx); err != nil || !contains(ids, h.ID) {
		t.Errorf("list through a new driver: %v %v, want %s", ids, err, h.ID)
	}
	if err := again.Destroy(ctx, back); err != nil {
		t.Fatalf("destroy through a new driver: %v", err)
	}
	if st, _ := s.drv.Status(ctx, h); st == runtime.StatusRunning {
		t.Error("the sandbox still runs after a new driver destroyed it")
	}
	s.unmount(t, h.ID)
}

func testDestroy(t *testing.T, s *suite) {
	ctx := context.Background()
	h := s.start(t)
	s.destroy(t, h)
	if st, err := s.drv.Status(ctx, h); err != nil || st == runtime.StatusRunning {
		t.Errorf("status after destroy: %v %v, want not running", st, err)
	}
	if ids, _ := s.drv.List(ctx); contains(ids, h.ID) {
		t.Errorf("list after destroy still has %s", h.ID)
	}
	if err := s.drv.Destroy(ctx, h); err != nil {
		t.Errorf("destroying twice: %v (must succeed on an already destroyed sandbox)", err)
	}
	if tr := waitNoTraces(h.ID); len(tr) > 0 {
		t.Errorf("traces left after destroy: %v", tr)
	}
}

func testUnknown(t *testing.T, s *suite) {
	h := runtime.Handle{ID: "never-started-" + domain.NewID(8), Driver: s.caps.Name}
	if st, err := s.drv.Status(context.Background(), h); err != nil || st == runtime.StatusRunning {
		t.Errorf("status of a sandbox that never existed: %v %v, want gone or stopped", st, err)
	}
	if err := s.drv.Destroy(context.Background(), h); err != nil {
		t.Errorf("destroy of a sandbox that never existed: %v, want success", err)
	}
}

func testFailedStart(t *testing.T, s *suite) {
	id := s.nextID()
	dir := filepath.Join(s.dir, id)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	_, err := s.drv.Start(context.Background(), runtime.Spec{
		ID: id, RootFS: filepath.Join(dir, "no-such-rootfs"), StateDir: dir, Hostname: id,
		AgentPath: s.agent, AgentEnv: agentEnv(), Limits: limits, Slot: s.seq,
	})
	if err == nil {
		t.Fatal("start on a missing root filesystem succeeded")
	}
	if ids, _ := s.drv.List(context.Background()); contains(ids, id) {
		t.Errorf("a failed start is still listed: %s", id)
	}
	_ = s.drv.Destroy(context.Background(), runtime.Handle{ID: id, Driver: s.caps.Name})
	if tr := waitNoTraces(id); len(tr) > 0 {
		t.Errorf("traces left after a failed start: %v", tr)
	}
}

func testOptional(t *testing.T, s *suite) {
	ctx := context.Background()
	h := s.start(t)
	defer s.destroy(t, h)
	if sr, ok := s.drv.(runtime.StatsReader); ok {
		st, err := sr.Stats(ctx, h)
		if err != nil || st.PIDs < 1 || st.MemoryBytes <= 0 {
			t.Errorf("stats of a running sandbox: %+v %v, want at least one process and some memory", st, err)
		}
	}
	if k, ok := s.drv.(runtime.Killer); ok {
		if err := k.Kill(ctx, h); err != nil {
			t.Fatalf("kill: %v", err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for st, _ := s.drv.Status(ctx, h); st == runtime.StatusRunning; st, _ = s.drv.Status(ctx, h) {
			if time.Now().After(deadline) {
				t.Fatal("the sandbox still runs 10 s after Kill")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// testIDRanges starts two sandboxes of a user-namespaced driver and checks that their
// user namespaces map to disjoint host ranges, that each one's writable layer and its
// view of the template belong to its own range, and that the handle records the range.
func testIDRanges(t *testing.T, s *suite) {
	if _, ok := s.drv.(runtime.IDShifter); !ok {
		t.Skip("the driver runs no user namespace")
	}
	type seen struct {
		base    uint64
		uidMap  string
		upper   uint32
		lowerFS uint32
	}
	var got []seen
	for i := 0; i < 2; i++ {
		h := s.start(t)
		defer s.destroy(t, h)
		base, err := strconv.ParseUint(h.Data["host_uid"], 10, 32)
		if err != nil {
			t.Fatalf("handle %+v records no host_uid: %v", h, err)
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", h.PID))
		if err != nil {
			t.Fatalf("uid map of the sandbox's init (pid %d): %v", h.PID, err)
		}
		f := strings.Fields(string(b))
		if len(f) != 3 || f[0] != "0" || f[1] != h.Data["host_uid"] || f[2] != "65536" {
			t.Errorf("sandbox %s: uid map %q, want 0 %s 65536", h.ID, b, h.Data["host_uid"])
		}
		var up, low unix.Stat_t
		if err := unix.Lstat(filepath.Join(s.dir, h.ID, "upper"), &up); err != nil {
			t.Fatal(err)
		}
		if err := unix.Lstat(filepath.Join(s.dir, h.ID, "rootfs", "etc", "passwd"), &low); err != nil {
			t.Fatal(err)
		}
		got = append(got, seen{base, string(b), up.Uid, low.Uid})
	}
	a, b := got[0], got[1]
	if a.base == b.base || a.base+65536 > b.base && b.base+65536 > a.base {
		t.Errorf("two live sandboxes share host ids: bases %d and %d", a.base, b.base)
	}
	for _, g := range got {
		if uint64(g.upper) != g.base || uint64(g.lowerFS) != g.base {
			t.Errorf("range %d: the writable layer is owned by %d and the template's /etc/passwd by %d, want both %d", g.base, g.upper, g.lowerFS, g.base)
		}
	}
}

// limits are small: the contract is about lifecycle, not capacity.
var limits = domain.Limits{CPUCores: 1, MemoryMB: 256, MaxProcesses: 256}

func agentEnv() []string {
	return []string{`WARREN_AGENT_CONFIG={"listen":":49983","access_token":"contract"}`}
}

func (s *suite) nextID() string {
	s.seq++
	return fmt.Sprintf("rtc%d%s", s.seq, strings.ToLower(domain.NewID(8)))
}

// start prepares a root filesystem and starts a sandbox with no network (the contract
// does not need one), destroying it when the test ends if the case did not.
func (s *suite) start(t *testing.T) runtime.Handle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := s.nextID()
	dir := filepath.Join(s.dir, id)
	slot := s.seq // unique among the run's sandboxes, as a node's slots are
	rootfs := s.prepare(t, ctx, id, dir, slot)
	h, err := s.drv.Start(ctx, runtime.Spec{
		ID: id, RootFS: rootfs, StateDir: dir, Hostname: id,
		AgentPath: s.agent, AgentEnv: agentEnv(), Limits: limits, Slot: slot,
	})
	if err != nil {
		s.unmount(t, id)
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		_ = s.drv.Destroy(context.Background(), h)
		s.unmount(t, id)
	})
	return h
}

// prepare mounts dir/rootfs as the node does: an overlay of the base template under a
// writable layer owned by the sandbox's root. For a user-namespaced driver the template
// is first mounted id-mapped into the sandbox's own range at dir/lower.
func (s *suite) prepare(t *testing.T, ctx context.Context, id, dir string, slot int) string {
	t.Helper()
	lower, uid, gid := s.lower, 0, 0
	upper, work, merged := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "rootfs")
	for _, d := range []string{upper, work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	if sh, ok := s.drv.(runtime.IDShifter); ok {
		r, err := sh.IDRange(slot)
		if err != nil {
			t.Fatalf("id range of slot %d: %v", slot, err)
		}
		lower, uid, gid = filepath.Join(dir, "lower"), int(r.UID), int(r.GID)
		if err := os.Mkdir(lower, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := idmount.Mount(s.lower, lower, idmount.Range{UID: r.UID, GID: r.GID, Size: r.Size}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Lchown(upper, uid, gid); err != nil {
		s.unmount(t, id)
		t.Fatal(err)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		s.unmount(t, id)
		t.Fatalf("mounting the overlay: %v", err)
	}
	return merged
}

func (s *suite) destroy(t *testing.T, h runtime.Handle) {
	t.Helper()
	if err := s.drv.Destroy(context.Background(), h); err != nil {
		t.Errorf("destroy: %v", err)
	}
	s.unmount(t, h.ID)
}

// unmount removes the sandbox's root filesystem mounts (the node's job, not the
// driver's): the overlay, then the id-mapped lower layer if there is one.
func (s *suite) unmount(t *testing.T, id string) {
	for _, name := range []string{"rootfs", "lower"} {
		mnt := filepath.Join(s.dir, id, name)
		for i := 0; i < 50; i++ {
			err := unix.Unmount(mnt, 0)
			if err == nil || err == unix.EINVAL || err == unix.ENOENT {
				break
			}
			time.Sleep(100 * time.Millisecond)
			if i == 49 {
				_ = unix.Unmount(mnt, unix.MNT_DETACH)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// BuildAgent builds a static warren-agent for a run, in a directory any host id may read
// (the agent is bind-mounted into sandboxes, possibly by an unprivileged host id).
func BuildAgent(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "warren-agent")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/warren-agent")
	cmd.Dir = ModuleRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building warren-agent: %v\n%s", err, b)
	}
	return out
}

// ModuleRoot is the directory of the module's go.mod above the working directory.
func ModuleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("runtimetest: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// waitNoTraces gives the host up to 10 s to finish reaping a destroyed sandbox (killed
// processes leave /proc a moment after the kill) and returns what is still there.
func waitNoTraces(id string) []string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		tr := Traces(id)
		if len(tr) == 0 || time.Now().After(deadline) {
			return tr
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Traces lists what of sandbox id is left on the host: cgroups and processes.
func Traces(id string) []string { return append(CgroupTraces(id), ProcessTraces(id)...) }

// CgroupTraces finds cgroup directories named id in every hierarchy (three levels deep:
// controller/parent/id, and one more for runtimes that nest), as "cgroup <path>".
func CgroupTraces(id string) []string {
	var out []string
	root := "/sys/fs/cgroup"
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if d.Name() == id {
			out = append(out, "cgroup "+p)
			return filepath.SkipDir
		}
		if strings.Count(strings.TrimPrefix(p, root), "/") >= 4 {
			return filepath.SkipDir
		}
		return nil
	})
	return out
}

// CheckCPUQuota fails t unless the CFS quota of sandbox id's cgroup is cores over its
// period once the driver's Start or Restore has returned (a driver may boot with more,
// never hand out a sandbox with more). It reads the cgroup v1 cpu hierarchy, nested
// runtimes' cgroups included, or cpu.max on a cgroup2-only host.
func CheckCPUQuota(t *testing.T, id string, cores float64) {
	t.Helper()
	var found []string
	for _, tr := range CgroupTraces(id) {
		found = append(found, strings.TrimPrefix(tr, "cgroup "))
	}
	checked := 0
	for _, dir := range found {
		quota, qerr := os.ReadFile(filepath.Join(dir, "cpu.cfs_quota_us"))
		period, perr := os.ReadFile(filepath.Join(dir, "cpu.cfs_period_us"))
		if qerr != nil || perr != nil {
			b, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
			if err != nil {
				continue // another controller's directory
			}
			f := strings.Fields(string(b))
			if len(f) != 2 {
				t.Errorf("%s/cpu.max holds %q", dir, b)
				continue
			}
			quota, period = []byte(f[0]), []byte(f[1])
		}
		q, qerr := strconv.ParseFloat(strings.TrimSpace(string(quota)), 64)
		per, perr := strconv.ParseFloat(strings.TrimSpace(string(period)), 64)
		if qerr != nil || perr != nil || per <= 0 {
			t.Errorf("%s: quota %q over period %q: not numbers (a quota of max is no limit)", dir, quota, period)
			continue
		}
		checked++
		if got := q / per; got < cores-0.001 || got > cores+0.001 {
			t.Errorf("%s: CPU quota %.0f over period %.0f is %.3f cores, want %.3f", dir, q, per, got, cores)
		}
	}
	if checked == 0 {
		t.Errorf("no cpu cgroup of sandbox %s found under /sys/fs/cgroup (directories named so: %v)", id, found)
	}
}

// ProcessTraces finds host processes whose command line or cgroup names id.
func ProcessTraces(id string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmd, _ := os.ReadFile(p + "/cmdline")
		cg, _ := os.ReadFile(p + "/cgroup")
		if strings.Contains(string(cmd), id) || strings.Contains(string(cg), id) {
			out = append(out, fmt.Sprintf("process %s: %s", filepath.Base(p), strings.ReplaceAll(string(cmd), "\x00", " ")))
		}
	}
	return out
}
