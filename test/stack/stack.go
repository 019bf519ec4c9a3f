// Package stack is the full-stack conformance suite every runtime driver passes on top of
// the driver contract (internal/runtime/runtimetest). It drives a driver the way users
// do — through a real sandbox service on a real node (overlay root filesystems, network
// namespaces, nftables), a real SQLite store, the real base template and a freshly built
// warren-agent — and checks behaviour, limits, isolation and that nothing is left on the
// host afterwards. drivers_test.go runs it for every driver this host can run.
package stack

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/network"
	"github.com/warren-sh/warren/internal/node"
	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/runtimetest"
	"github.com/warren-sh/warren/internal/sandbox"
	"github.com/warren-sh/warren/internal/store/sqlite"
	"github.com/warren-sh/warren/internal/template"
	"github.com/warren-sh/warren/internal/testenv"
)

// Shared caches of a Warren host: the base template is built once per machine.
const (
	templateCache = "/var/cache/warren/templates"
	debCache      = "/var/cache/warren/debs"
)

// env is one node with its service, shared by the cases of a run.
type env struct {
	drv     runtime.Driver
	caps    runtime.Capabilities
	base    string // the run's temporary directory root: every file of the run is below it
	dataDir string // the node's and store's directory
	netName string
	netm    *network.Manager
	node    *node.Node
	store   *sqlite.Store
	svc     *sandbox.Service
	p       domain.Principal
	// inetN is the third octet of the fake internet host's 198.18.n.0/24.
	inetN int
}

// limits of the run's service: small defaults, room above them for the limit cases.
var (
	defaultLimits = domain.Limits{CPUCores: 1, MemoryMB: 512, DiskMB: 1024, MaxProcesses: 512}
	maxLimits     = domain.Limits{CPUCores: 2, MemoryMB: 2048, DiskMB: 4096, MaxProcesses: 2048}
)

type testCase struct {
	name string
	run  func(t *testing.T, e *env)
}

// cases run in order; restart recovery replaces the service, so it is not first.
var cases = []testCase{
	{"create", testCreate},
	{"exec", testExec},
	{"stdin", testStdin},
	{"signals", testSignals},
	{"pty", testPTY},
	{"files", testFiles},
	{"timeout expiry", testTimeoutExpiry},
	{"kill", testKill},
	{"restart recovery", testRecovery},
	{"networking", testNetworking},
	{"isolation", testIsolation},
	{"root is not host root", testRootIsolation},
	{"cpu limit", testCPULimit},
	{"memory limit", testMemoryLimit},
	{"pids limit", testPidsLimit},
	{"disk limit", testDiskLimit},
	{"node checkpoint primitives", testNodeCheckpoint},
	{"pause and resume", testPauseResume},
	{"calls in flight during a pause", testCallsDuringPause},
	{"restart during a pause", testCutPause},
	{"failed resume", testFailedResume},
	{"fork and snapshots", testForkAndSnapshots},
	{"cleanup", testCleanup},
}

// Run runs the conformance suite against the drivers newDriver makes. newDriver is
// called once, with the top-level t; the driver should keep its state in t.TempDir().
func Run(t *testing.T, newDriver func(t *testing.T) runtime.Driver) {
	testenv.NeedsRoot(t, "network namespaces, mounts, cgroups")
	for _, tool := range []string{"ip", "nft", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("stack: %s is not installed; run scripts/install-deps.sh", tool)
		}
	}
	e := setup(t, newDriver)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, e) })
	}
}

func setup(t *testing.T, newDriver func(t *testing.T) runtime.Driver) *env {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e := &env{}
	data := t.TempDir()
	e.base, e.dataDir = filepath.Dir(data), data
	agent := runtimetest.BuildAgent(t)
	rootfs, err := (&template.Builder{CacheDir: templateCache, DebCache: debCache}).Ensure(ctx, template.Base())
	if err != nil {
		t.Fatalf("building the base template: %v", err)
	}

	e.drv = newDriver(t)
	e.caps = e.drv.Capabilities()
	h := fnv.New32a()
	h.Write([]byte(e.caps.Name))
	pid := os.Getpid()
	e.netName = fmt.Sprintf("rt%.4s%d", e.caps.Name, pid%100000)
	pool := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(240 + h.Sum32()%12), byte(pid % 256), 0}), 24)
	e.inetN = 150 + int(h.Sum32()%50)
	if e.netm, err = network.New(network.Config{Name: e.netName, Pool: pool}); err != nil {
		t.Fatal(err)
	}
	if err := e.netm.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if e.node, err = node.New(node.Config{Dir: filepath.Join(data, "sandboxes"), AgentPath: agent, Driver: e.drv, Network: e.netm}); err != nil {
		t.Fatal(err)
	}
	if e.store, err = sqlite.Open(ctx, filepath.Join(data, "warren.db")); err != nil {
		t.Fatal(err)
	}
	team := &domain.Team{ID: domain.NewID(20), Name: "conformance", CreatedAt: time.Now().UTC()}
	if err := e.store.CreateTeam(ctx, team); err != nil {
		t.Fatal(err)
	}
	e.p = domain.Principal{TeamID: team.ID, Scopes: []domain.Scope{domain.ScopeAdmin}}
	if err := e.store.UpsertTemplate(ctx, &domain.Template{ID: "base", Hash: template.Base().Hash(), RootFS: rootfs, Ready: true, BuiltAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	e.svc = e.newService(t)
	t.Cleanup(func() { e.teardown(t) })
	return e
}

// files, processes and sweeper are the services of e.svc's sandboxes.
func (e *env) files() *sandbox.Files         { return sandbox.NewFiles(e.svc) }
func (e *env) processes() *sandbox.Processes { return sandbox.NewProcesses(e.svc) }
func (e *env) sweeper() *sandbox.Sweeper     { return sandbox.NewSweeper(e.svc) }

// newService returns a sandbox service on the run's store and node.
func (e *env) newService(t *testing.T) *sandbox.Service {
	svc, err := sandbox.New(sandbox.Config{
		Store: e.store, Node: e.node, DefaultTimeout: 3 * time.Minute, StartTimeout: time.Minute,
		DefaultLimits: defaultLimits, MaxLimits: maxLimits, SnapshotDir: e.snapshotsDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// teardown ends whatever a failed case left running and checks the whole run left
// nothing behind.
func (e *env) teardown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.svc.KillAll(ctx); err != nil {
		t.Errorf("killing the sandboxes left: %v", err)
	}
	e.svc.Close() // waits for background teardowns
	if n, err := e.sweeper().Sweep(ctx); err != nil || n > 0 {
		t.Errorf("final sweep: %d leftovers removed (a case leaked them), err %v", n, err)
	}
	if err := e.netm.Close(ctx); err != nil {
		t.Errorf("removing the nftables table: %v", err)
	}
	if c, ok := e.drv.(interface{ Cleanup() }); ok {
		c.Cleanup()
	}
	_ = e.store.Close()
	if out, _ := exec.Command("nft", "list", "table", "inet", e.netName).CombinedOutput(); len(out) > 0 && !containsAny(string(out), "No such file", "does not exist") {
		t.Errorf("leak: nftables table %s left behind", e.netName)
	}
}
