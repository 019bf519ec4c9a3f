package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/network"
	"github.com/warren-sh/warren/internal/node"
	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/gvisor"
	"github.com/warren-sh/warren/internal/template"
	"github.com/warren-sh/warren/internal/testenv"
)

// agentBin is a warren-agent built once for the package's tests (TestMain).
var (
	agentOnce sync.Once
	agentBin  string
	agentErr  error
	agentDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if agentDir != "" {
		os.RemoveAll(agentDir)
	}
	os.Exit(code)
}

func buildAgent(tb testing.TB) string {
	tb.Helper()
	agentOnce.Do(func() {
		agentDir, agentErr = os.MkdirTemp("", "layers-agent")
		if agentErr != nil {
			return
		}
		agentBin = filepath.Join(agentDir, "warren-agent")
		cmd := exec.Command("go", "build", "-o", agentBin, "github.com/warren-sh/warren/cmd/warren-agent")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			agentErr = fmt.Errorf("building warren-agent: %v: %s", err, out)
		}
	})
	if agentErr != nil {
		tb.Fatal(agentErr)
	}
	return agentBin
}

// memFiles is a domain.BuildFiles in memory.
type memFiles map[string][]byte

func (m memFiles) Open(_ context.Context, hash string) (io.ReadCloser, error) {
	b, ok := m[hash]
	if !ok {
		return nil, domain.Errorf(domain.KindNotFound, "no files %s", hash)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// add stores a tar archive of entries and returns its hash.
func (m memFiles) add(t testing.TB, entries ...*tar.Header) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = h.Linkname // the content rides in Linkname for brevity
			h.Linkname = ""
			h.Size = int64(len(body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if body != "" {
			if _, err := tw.Write([]byte(body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	h := hex.EncodeToString(sum[:])
	m[h] = buf.Bytes()
	return h
}

func file(name, body string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Linkname: body}
}
func dir(name string) *tar.Header { return &tar.Header{Typeflag: tar.TypeDir, Name: name} }

// countingNode counts the step sandboxes started.
type countingNode struct {
	Sandboxes
	starts atomic.Int64
	ids    sync.Map
}

func (c *countingNode) StartLayered(ctx context.Context, s node.LayeredSpec) (runtime.Handle, string, error) {
	c.starts.Add(1)
	c.ids.Store(s.ID, true)
	return c.Sandboxes.StartLayered(ctx, s)
}

// env is a real build environment: the base template, a gVisor driver, a network of
// its own and a builder on a fresh cache.
type env struct {
	base    string
	node    *countingNode
	netm    *network.Manager
	netName string
	dir     string // the builder's cache
	nodeDir string
	runsc   string // the driver's --root
	drv     *gvisor.Driver
	cgroup  string
	b       *Builder
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	testenv.NeedsRoot(tb, "mount overlays and run gVisor sandboxes")
	for _, tool := range []string{"runsc", "ip", "nft", "mkfs.ext4", "cp"} {
		testenv.NeedsTool(tb, tool)
	}
	buildCtx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	base, err := (&template.Builder{CacheDir: template.DefaultCacheDir, DebCache: template.DefaultDebCache}).Ensure(buildCtx, template.Base())
	if err != nil {
		tb.Fatalf("building the base template: %v", err)
	}
	e := &env{base: base, runsc: tb.TempDir(), cgroup: fmt.Sprintf("/warren-test-layers%d", os.Getpid()), nodeDir: tb.TempDir()}
	drv, err := gvisor.New(gvisor.Config{Root: e.runsc, CgroupParent: e.cgroup})
	if err != nil {
		tb.Fatal(err)
	}
	e.drv = drv
	tb.Cleanup(drv.Cleanup)
	e.netName = fmt.Sprintf("ly%d", os.Getpid()%100000)
	e.node, e.netm = e.newNode(tb, e.netName, 0, e.nodeDir)
	e.fresh(tb)
	tb.Cleanup(func() { e.checkClean(tb) })
	return e
}

// newNode is a node on e's driver with a network of its own (name, the k-th pool of
// the test) and its sandboxes in dir.
func (e *env) newNode(tb testing.TB, name string, k int, dir string) (*countingNode, *network.Manager) {
	tb.Helper()
	netm, err := network.New(network.Config{Name: name, Pool: netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/28", 251-k, os.Getpid()%256))})
	if err != nil {
		tb.Fatal(err)
	}
	if err := netm.Init(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = netm.Close(context.Background()) })
	n, err := node.New(node.Config{Dir: dir, AgentPath: buildAgent(tb), Driver: e.drv, Network: netm})
	if err != nil {
		tb.Fatal(err)
	}
	return &countingNode{Sandboxes: n}, netm
}

// fresh gives e a builder on an empty cache.
func (e *env) fresh(tb testing.TB) {
	tb.Helper()
	e.dir = tb.TempDir()
	b, err := New(Config{Dir: e.dir, Node: e.node, Limits: domain.Limits{CPUCores: 1, MemoryMB: 512, DiskMB: 1024, MaxProcesses: 256}})
	if err != nil {
		tb.Fatal(err)
	}
	e.b = b
}

// run builds spec on the base template, returning the result, the step results and
// the log.
func (e *env) run(ctx context.Context, spec domain.BuildSpec, files domain.BuildFiles) (*Result, []domain.StepResult, []string, error) {
	var mu sync.Mutex
	var steps []domain.StepResult
	var logs []string
	p, err := ParentOf(e.base)
	if err != nil {
		return nil, nil, nil, err
	}
	res, err := e.b.BuildFrom(ctx, spec, p, files, func(l domain.BuildLogLine) {
		mu.Lock()
		logs = append(logs, l.Message)
		mu.Unlock()
	}, func(r domain.StepResult) { steps = append(steps, r) })
	return res, steps, logs, err
}

// checkClean fails when a build sandbox left anything on the host: runsc state or
// processes, mounts, network namespaces or veths, cgroups, scratch.
func (e *env) checkClean(tb testing.TB) {
	tb.Helper()
	if out, _ := exec.Command("runsc", "--root", e.runsc, "list", "-quiet").Output(); strings.TrimSpace(string(out)) != "" {
		tb.Errorf("runsc sandboxes left: %s", out)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(e.runsc)) {
			tb.Errorf("a runsc process is left: %s", bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, d := range []string{e.nodeDir, e.dir} {
		if bytes.Contains(mounts, []byte(" "+d)) {
			tb.Errorf("mounts left under %s", d)
		}
	}
	if ids, _ := e.netm.List(context.Background()); len(ids) > 0 {
		tb.Errorf("network namespaces left: %v", ids)
	}
	e.node.ids.Range(func(k, _ any) bool {
		if _, err := os.Stat(filepath.Join(e.nodeDir, k.(string))); err == nil {
			tb.Errorf("sandbox directory %s left", k)
		}
		for _, ctrl := range []string{"memory", "pids", "cpu"} {
			if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", ctrl, e.cgroup, k.(string))); err == nil {
				tb.Errorf("cgroup %s/%s left", ctrl, k)
			}
		}
		h := fnv.New32a()
		h.Write([]byte(e.netName + "/" + k.(string)))
		if _, err := os.Stat(fmt.Sprintf("/sys/class/net/wv%08x", h.Sum32())); err == nil {
			tb.Errorf("veth of %s left", k)
		}
		return true
	})
	if ents, _ := os.ReadDir(filepath.Join(e.dir, "work")); len(ents) > 0 {
		tb.Errorf("build scratch left: %v", ents)
	}
}
