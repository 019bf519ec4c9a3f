// Package layers is the layer engine of template builds (domain.StepBuilder): it runs a
// build's steps one by one over a parent root filesystem, each RUN in a gVisor sandbox
// of its own (through the node, never on the host), keeps each step's result as an
// overlayfs layer cached by a key that hashes everything the step depends on, and
// flattens the layers over the parent into the finished template's root filesystem.
//
// Keys: the first is a hash of the parent root filesystem's identity (Parent.ID); each
// step's is sha256(previous key, step kind and arguments, and for a COPY the content of
// the files it selects). A step whose layer is cached is skipped; a Force step reruns,
// and so does every step after it. ENV, WORKDIR and USER change the metadata the later
// steps run with (and take part in their keys through the chain).
//
// Cache layout under Config.Dir:
//
//	l/<key[:32]>/d          a layer: an overlayfs upper directory, whiteouts included
//	l/<key[:32]>/meta.json  written last: the full key and the layer's size
//	r/<key[:32]>/rootfs     a finished root filesystem (parent and layers flattened)
//	work/<pid>-...          scratch of running builds (overlay views of COPY and finish)
//	trash/                  layers replaced by Force, removed a day later
//
// Layers are evicted by Prune (prune.go): unused for Config.KeepUnused, or least recently
// used while the cache is over Config.MaxCacheBytes.
//
// Layers and roots are made beside their place and renamed into it, so two builds of
// one key never see each other's half-made files: the second rename loses and its
// copy is dropped.
package layers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/node"
	"github.com/warren-sh/warren/internal/runtime"
)

// Sandboxes is what the builder needs of a node: *node.Node. Give each builder a node
// of its own (its own network name and address pool), used by nothing else: the
// builder hands out that node's address slots itself.
type Sandboxes interface {
	StartLayered(ctx context.Context, s node.LayeredSpec) (runtime.Handle, string, error)
	Halt(ctx context.Context, id string, slot int, h *runtime.Handle) error
	SaveLayer(ctx context.Context, id, dst string) error
	Stop(ctx context.Context, id string, slot int, h *runtime.Handle) error
	Leftovers(ctx context.Context, prefix string) ([]string, error)
	Slots() int
}

// idPrefix starts every step sandbox's id: not a sandbox id's shape (20 of [a-z0-9]),
// so the sweeper leaves them alone, and Recover finds them.
const idPrefix = "build-"

// Config configures a Builder.
type Config struct {
	// Dir holds the layer cache and the finished root filesystems.
	Dir string
	// Node runs the steps' sandboxes.
	Node Sandboxes
	// Limits bound each step's sandbox; DiskMB bounds what one step may write.
	// Zero fields take DefaultLimits'.
	Limits domain.Limits
	// Timeout bounds a build whose spec sets none (default 30 minutes).
	Timeout time.Duration
	// MaxCopyBytes bounds the tar archive a COPY reads and what it unpacks (default
	// 2 GiB); MaxCopyEntries the archive's entries (default 200,000).
	MaxCopyBytes   int64
	MaxCopyEntries int
	// KeepUnused is how long Prune keeps a layer no build used (0: for ever);
	// MaxCacheBytes is the layers' size Prune brings the cache down to, least recently
	// used first (0: no bound). See prune.go.
	KeepUnused    time.Duration
	MaxCacheBytes int64
	Log           *slog.Logger
}

// DefaultLimits are a step sandbox's limits: enough for apt, pip and npm installs.
var DefaultLimits = domain.Limits{CPUCores: 2, MemoryMB: 2048, DiskMB: 8192, MaxProcesses: 1024}

// Builder runs template builds. It is safe for concurrent use.
type Builder struct {
	cfg   Config
	log   *slog.Logger
	slots slots
	mu    sync.Mutex
	keys  map[string]*sync.Mutex // held while a key's layer is looked up or made
}

var _ domain.StepBuilder = (*Builder)(nil)

// New checks cfg and returns a Builder. Scratch left by a crashed process (work/) and
// layers that Force builds replaced more than a day ago (trash/) are removed.
func New(cfg Config) (*Builder, error) {
	if cfg.Node == nil || cfg.Dir == "" {
		return nil, errors.New("layers: Config.Node and Config.Dir are required")
	}
	if !filepath.IsAbs(cfg.Dir) || strings.ContainsAny(cfg.Dir, ":,\\") {
		return nil, fmt.Errorf("layers: cache directory %q must be absolute and hold no ':', ',' or '\\' (overlay options)", cfg.Dir)
	}
	l := &cfg.Limits
	d := DefaultLimits
	l.CPUCores, l.MemoryMB, l.DiskMB, l.MaxProcesses = or(l.CPUCores, d.CPUCores), or(l.MemoryMB, d.MemoryMB), or(l.DiskMB, d.DiskMB), or(l.MaxProcesses, d.MaxProcesses)
	cfg.Timeout = or(cfg.Timeout, 30*time.Minute)
	cfg.MaxCopyBytes = or(cfg.MaxCopyBytes, 2<<30)
	cfg.MaxCopyEntries = or(cfg.MaxCopyEntries, 200_000)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{"l", "r", "work", "trash"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	if err := clearStale(cfg.Dir); err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	return &Builder{cfg: cfg, log: cfg.Log.With(logkey.Subsystem, "layers"), slots: slots{n: cfg.Node.Slots(), used: map[int]bool{}},
		keys: map[string]*sync.Mutex{}}, nil
}

// clearStale removes what no running build can use: scratch of processes that are
// gone (work/<pid>-...: its mounts first), half-made layers and roots of those
// processes (.tmp-<pid>-...), and layers replaced more than a day ago.
func clearStale(dir string) error {
	var errs []error
	for _, sub := range []string{"work", "l", "r"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			name := strings.TrimPrefix(e.Name(), ".tmp-")
			if sub != "work" && name == e.Name() {
				continue // a committed layer or root
			}
			pid, _, ok := strings.Cut(name, "-")
			if n, err := strconv.Atoi(pid); ok && err == nil && processAlive(n) {
				continue
			}
			p := filepath.Join(dir, sub, e.Name())
			if err := node.UnmountAll(p); err != nil {
				errs = append(errs, err)
				continue
			}
			errs = append(errs, os.RemoveAll(p))
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "trash"))
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, "trash", e.Name())))
		}
	}
	return errors.Join(errs...)
}

// processAlive says whether a process pid exists.
func processAlive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) != syscall.ESRCH
}

// scratchPrefix starts the names of this process's scratch and half-made directories.
func scratchPrefix() string { return strconv.Itoa(os.Getpid()) + "-" }

// Recover removes the step sandboxes a crashed server left on the node (runtime
// state, network, mounts, directories) and returns how many. Call it before the first
// build.
func (b *Builder) Recover(ctx context.Context) (int, error) {
	ids, err := b.cfg.Node.Leftovers(ctx, idPrefix)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, id := range ids {
		b.log.Info("removing a build sandbox left behind", logkey.SandboxID, id)
		errs = append(errs, b.cfg.Node.Stop(ctx, id, -1, nil))
	}
	return len(ids), errors.Join(errs...)
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Parent is the root filesystem a build starts from.
type Parent struct {
	RootFS string
	// ID names its content: the same ID must always mean the same files (a built-in
	// template's recipe hash, an image's manifest digest, a built template's Key).
	ID string
}

// ParentOf is the Parent Build uses for a root filesystem directory: its path and
// inode. Every root filesystem the node has lives at a path named by its content
// (built-ins by recipe hash, images by manifest digest, built templates by their last
// key), and the inode tells a directory made anew at the same path from the old one.
func ParentOf(rootfs string) (Parent, error) {
	abs, err := filepath.Abs(rootfs)
	if err != nil {
		return Parent{}, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return Parent{}, fmt.Errorf("the parent root filesystem: %w", err)
	}
	if !fi.IsDir() {
		return Parent{}, fmt.Errorf("the parent root filesystem %s is not a directory", abs)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return Parent{RootFS: abs, ID: fmt.Sprintf("dir:%s:%d:%d", abs, st.Dev, st.Ino)}, nil
}

// Build implements domain.StepBuilder on ParentOf(parentRootFS).
func (b *Builder) Build(ctx context.Context, spec domain.BuildSpec, parentRootFS string, files domain.BuildFiles,
	logs func(domain.BuildLogLine), steps func(domain.StepResult)) (string, int64, error) {
	p, err := ParentOf(parentRootFS)
	if err != nil {
		return "", 0, err
	}
	res, err := b.BuildFrom(ctx, spec, p, files, logs, steps)
	if err != nil {
		return "", 0, err
	}
	return res.RootFS, res.Size, nil
}

// Result is a finished build.
type Result struct {
	RootFS string
	Size   int64
	// Key is the last step's key: the identity of RootFS as a parent (Parent.ID).
	Key string
	// Config is the metadata the template's sandboxes start with (the steps' ENV,
	// WORKDIR and USER).
	Config Meta
}

// keyLock serialises the lookup and making of one key's layer in this process.
func (b *Builder) keyLock(key string) func() {
	b.mu.Lock()
	m := b.keys[key]
	if m == nil {
		m = &sync.Mutex{}
		b.keys[key] = m
	}
	b.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// slots hands out the node's address slots to step sandboxes.
type slots struct {
	mu   sync.Mutex
	n    int
	used map[int]bool
}

func (s *slots) take() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < s.n; i++ {
		if !s.used[i] {
			s.used[i] = true
			return i, nil
		}
	}
	return 0, domain.Errorf(domain.KindUnavailable, "all %d build sandbox addresses are in use; try again when a build has finished", s.n)
}

func (s *slots) give(i int) {
	s.mu.Lock()
	delete(s.used, i)
	s.mu.Unlock()
}
