// Package node runs sandboxes on this host: for each one it prepares a writable overlay
// of its template's root filesystem and a private network, starts it with a runtime
// driver, and takes all of that down again. It also finds and removes what a crashed
// server left behind.
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/idmount"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/network"
	"github.com/warren-sh/warren/internal/runtime"
)

// Config configures a Node.
type Config struct {
	// Dir holds one directory per sandbox (overlay layers, bundle, logs).
	Dir string
	// AgentPath is the host path of the static warren-agent binary.
	AgentPath string
	// Driver is the default runtime; Drivers are the others this node offers (a sandbox
	// asks for one by name).
	Driver  runtime.Driver
	Drivers []runtime.Driver
	Network *network.Manager
	// Egress enforces the name rules of network policies; nil leaves them unenforced.
	Egress Egress
	Log    *slog.Logger
	// Phases, when set, records how long each start's phases took: prepare (root
	// filesystem and network) and runtime_start (the driver's start or restore).
	Phases func(phase, runtime string, d time.Duration)
	// PrimeMigration, when set, is called while a sandbox of a driver that joins cgroups
	// starts, to keep the runtime's cgroup moves fast (oci.PrimeMigration; see
	// migrationWarmer).
	PrimeMigration func() error
}

// Node starts and stops sandboxes on this host.
type Node struct {
	*Checkpoints
	*Layered
	cfg     Config
	log     *slog.Logger
	disks   *diskImages
	drivers map[string]runtime.Driver
	order   []string // driver names, default first
	// migrations keeps cgroup moves fast while sandboxes start (cfg.PrimeMigration).
	migrations *migrationWarmer
}

// New checks cfg and returns a Node.
func New(cfg Config) (*Node, error) {
	if cfg.Driver == nil || cfg.Network == nil {
		return nil, errors.New("node: Driver and Network are required")
	}
	if err := checkAgentBinary(cfg.AgentPath); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o711); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: cfg.Log.With(logkey.Subsystem, "node"), disks: &diskImages{dir: filepath.Join(cfg.Dir, ".disks")},
		drivers: map[string]runtime.Driver{}}
	n.Checkpoints = &Checkpoints{n: n}
	n.Layered = &Layered{n: n}
	n.migrations = newMigrationWarmer(cfg.PrimeMigration, n.log)
	shifting := false
	for _, d := range append([]runtime.Driver{cfg.Driver}, cfg.Drivers...) {
		name := d.Capabilities().Name
		if _, dup := n.drivers[name]; dup {
			continue
		}
		n.drivers[name] = d
		n.order = append(n.order, name)
		if _, ok := d.(runtime.IDShifter); ok {
			shifting = true
		}
	}
	if shifting {
		// Root in a user-namespaced sandbox is an unprivileged host id: the runtime mounts
		// its root filesystem and the agent binary as that id, which needs search
		// permission on every directory above them.
		for _, p := range []string{cfg.Dir, filepath.Dir(cfg.AgentPath)} {
			if err := n.ensureTraversable(p); err != nil {
				return nil, err
			}
		}
	}
	return n, nil
}

// ensureTraversable gives "others" search permission (o+x, not read) on dir and every
// directory above it that lacks it, as Docker does for its data root with user
// namespaces: names stay unlistable; files keep their own permissions.
// A relative dir (serve --data-dir data) is taken from the working directory up.
func (n *Node) ensureTraversable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() && fi.Mode().Perm()&0o001 == 0 {
			mode := fi.Mode().Perm() | 0o001
			if err := os.Chmod(p, mode); err != nil {
				return fmt.Errorf("making %s searchable for sandboxes in a user namespace: %w", p, err)
			}
			n.log.Info("made a directory searchable for user-namespaced sandboxes", "dir", p, "mode", fmt.Sprintf("%04o", mode))
		}
		if filepath.Dir(p) == p {
			return nil
		}
	}
}

// DriverFor returns the driver with that name ("" = the default).
func (n *Node) DriverFor(name string) (runtime.Driver, bool) {
	if name == "" {
		return n.cfg.Driver, true
	}
	d, ok := n.drivers[name]
	return d, ok
}

// Drivers returns every driver of the node, the default first.
func (n *Node) Drivers() []runtime.Driver {
	out := make([]runtime.Driver, 0, len(n.order))
	for _, name := range n.order {
		out = append(out, n.drivers[name])
	}
	return out
}

// driverOf returns the driver that started the sandbox behind h (the default when h
// names none or an unknown one).
func (n *Node) driverOf(h *runtime.Handle) runtime.Driver {
	if h != nil {
		if d, ok := n.drivers[h.Driver]; ok {
			return d
		}
	}
	return n.cfg.Driver
}

// Slots is the number of address slots (sandboxes at once) of the node's network.
func (n *Node) Slots() int { return n.cfg.Network.Slots() }

// Reattach puts the node's state of a running sandbox in line with its row: its
// address is in the internet set exactly when sb.Internet is true, and sb.Network is
// the egress policy in force (nftables and the Egress hook). A restart of the server
// rebuilds the nftables table without the sandboxes that survived it, a warm pool
// member (started with internet on and no policy) may be claimed by a request that
// wants otherwise, and a policy update applies this way to new connections at once.
func (n *Node) Reattach(ctx context.Context, sb *domain.Sandbox) error {
	if err := n.cfg.Network.Allow(ctx, sb.Slot, sb.Internet); err != nil {
		return err
	}
	return applyPolicy(ctx, &n.cfg, sb.ID, sb.Slot, sb.Internet, sb.Network)
}

// AgentConfig is warren-agent's config (agent.Config's JSON), which the node writes to
// runtime.AgentConfigPath in the sandbox's root filesystem; the agent reads and removes
// it before anything else runs there.
type AgentConfig struct {
	Listen         string            `json:"listen"`
	AccessToken    string            `json:"access_token"`
	Env            map[string]string `json:"env,omitempty"`
	DefaultUser    string            `json:"default_user,omitempty"`
	DefaultWorkdir string            `json:"default_workdir,omitempty"`
	Hostname       string            `json:"hostname,omitempty"`
	StartCmd       string            `json:"start_cmd,omitempty"`
	// MemoryLimitBytes, when set, makes the agent kill the largest process once the
	// sandbox nears it. Start sets it from limits.memory_mb for drivers without
	// per-process OOM kills (runtime.Capabilities.PerProcessOOM).
	MemoryLimitBytes int64 `json:"memory_limit_bytes,omitempty"`
	// ProcessLimit, when set, is the RLIMIT_NPROC the agent gives every process it
	// starts (runtime.ProcessLimiter); the agent itself keeps none.
	ProcessLimit uint64 `json:"process_limit,omitempty"`
}

// startSpec is one sandbox to start.
type startSpec struct {
	ID string
	// Runtime names the driver ("" = the node's default).
	Runtime string
	Slot    int
	RootFS  string // the template's read-only root filesystem
	// Lowers, when set, are read-only layers stacked above RootFS, topmost first
	// (StartLayered).
	Lowers []string
	// Layered keeps the writable layer in overlayfs's plain format (StartLayered).
	Layered  bool
	Internet bool
	// Network is the sandbox's egress policy, in force before it runs.
	Network domain.NetworkPolicy
	Limits  domain.Limits
	Agent   AgentConfig
	// Image, when set, is a checkpoint image the sandbox is restored from instead of
	// booting (the driver must be a runtime.Checkpointer).
	Image string
	// Layer says where the sandbox's writable layer comes from.
	Layer layerSource
	// LayerFrom is the upper directory copied as the writable layer (layerCopy).
	LayerFrom string
}

// layerSource is where a starting sandbox's writable layer comes from.
type layerSource int

const (
	layerNew  layerSource = iota // an empty one (a fresh sandbox)
	layerKeep                    // the one already in the sandbox's directory (resume)
	layerCopy                    // a copy of startSpec.LayerFrom (a sandbox from a snapshot)
)

// started is a running sandbox.
type started struct {
	Handle  runtime.Handle
	Address string
}

func (n *Node) sandboxDir(id string) string { return filepath.Join(n.cfg.Dir, id) }

// Start prepares and starts the sandbox sb (its id, runtime, slot, limits, internet
// access, access token and env) on tpl's root filesystem, and returns the driver's
// handle and the sandbox's address. warren-agent runs as "user" by default, named
// after the sandbox, and starts tpl's start command. On error nothing of it is left.
func (n *Node) Start(ctx context.Context, sb *domain.Sandbox, tpl *domain.Template) (runtime.Handle, string, error) {
	st, err := n.start(ctx, specOf(sb, tpl))
	if err != nil {
		return runtime.Handle{}, "", err
	}
	return st.Handle, st.Address, nil
}

// specOf is what starting sb on tpl takes. A built template's USER (a name: the agent
// looks users up by name) and WORKDIR are its sandboxes' defaults.
func specOf(sb *domain.Sandbox, tpl *domain.Template) startSpec {
	user := "user"
	if tpl.User != "" && strings.Trim(tpl.User, "0123456789") != "" && !strings.Contains(tpl.User, ":") {
		user = tpl.User
	}
	return startSpec{
		ID: sb.ID, Runtime: sb.RuntimeName, Slot: sb.Slot, RootFS: tpl.RootFS, Internet: sb.Internet, Network: sb.Network, Limits: sb.Limits,
		Agent: AgentConfig{AccessToken: sb.AccessToken, Env: sb.Env, DefaultUser: user, DefaultWorkdir: tpl.Workdir, Hostname: sb.ID,
			StartCmd: tpl.StartCmd},
	}
}

// start prepares and starts a sandbox. On error nothing of it is left.
func (n *Node) start(ctx context.Context, s startSpec) (_ *started, err error) {
	dir := n.sandboxDir(s.ID)
	defer func() {
		if err == nil {
			return
		}
		cleanup := n.Stop
		if s.Layer == layerKeep {
			// A sandbox that failed to resume keeps its directory (its files and image).
			cleanup = n.Checkpoints.release
		}
		if cerr := cleanup(context.WithoutCancel(ctx), s.ID, s.Slot, nil); cerr != nil {
			n.log.Error("cleanup after failed start", logkey.SandboxID, s.ID, logkey.Err, cerr)
		}
	}()
	// 0711 for user-namespaced sandboxes: their root must reach dir/rootfs (see New).
	drv, ok := n.DriverFor(s.Runtime)
	if !ok {
		return nil, fmt.Errorf("runtime %q is not available on this node", s.Runtime)
	}
	defer n.migrations.hold(drv)()
	mode := os.FileMode(0o700)
	if _, ok := drv.(runtime.IDShifter); ok {
		mode = 0o711
	}
	if err := os.Mkdir(dir, mode); err != nil && !os.IsExist(err) {
		return nil, err
	}
	if err := os.Chmod(dir, mode); err != nil {
		return nil, err
	}
	t0 := time.Now()
	rootfs, att, err := prepare(ctx, n, s, dir)
	if err != nil {
		return nil, err
	}
	tPrep := time.Since(t0)
	spec, err := runtimeSpec(n.cfg.AgentPath, s, dir, rootfs, att)
	if err != nil {
		return nil, err
	}
	if s.Image == "" {
		if err := writeAgentConfig(drv, s.Slot, agentConfig(s, drv), rootfs); err != nil {
			return nil, err
		}
	}
	h, err := startRuntime(ctx, drv, s, spec)
	if err != nil {
		return nil, err
	}
	n.log.Debug("sandbox started", logkey.SandboxID, s.ID, "prepare", tPrep, "runtime_start", time.Since(t0)-tPrep)
	if n.cfg.Phases != nil {
		rt := drv.Capabilities().Name
		n.cfg.Phases("prepare", rt, tPrep)
		n.cfg.Phases("runtime_start", rt, time.Since(t0)-tPrep)
	}
	return &started{Handle: h, Address: att.Address.String()}, nil
}

// prepare gives the sandbox s on n its network (attachment) and its root filesystem in dir,
// in parallel: they are independent. The caller's cleanup removes both on error.
func prepare(ctx context.Context, n *Node, s startSpec, dir string) (_ string, _ *network.Attachment, err error) {
	ctx, span := startSpan(ctx, "node.prepare", s.ID)
	defer func() { endSpan(span, err) }()
	type netResult struct {
		a   *network.Attachment
		err error
	}
	netc := make(chan netResult, 1)
	t0 := time.Now()
	var tNet time.Duration
	go func() {
		a, err := n.cfg.Network.Attach(ctx, s.ID, s.Slot, s.Internet)
		tNet = time.Since(t0)
		netc <- netResult{a, err}
	}()
	rootfs, rerr := n.prepareRootFS(ctx, s, dir)
	tRoot := time.Since(t0)
	nr := <-netc
	n.log.Debug("sandbox prepared", logkey.SandboxID, s.ID, "network", tNet, "rootfs", tRoot)
	if rerr != nil {
		return "", nil, rerr
	}
	if nr.err != nil {
		return "", nil, nr.err
	}
	if !s.Network.IsZero() {
		// Before anything runs in the sandbox: its first connection meets its policy.
		if err := applyPolicy(ctx, &n.cfg, s.ID, s.Slot, s.Internet, s.Network); err != nil {
			return "", nil, err
		}
	}
	return rootfs, nr.a, nil
}

// startRuntime starts the prepared sandbox s with drv, or restores it from its
// checkpoint image (s.Image).
func startRuntime(ctx context.Context, drv runtime.Driver, s startSpec, spec runtime.Spec) (h runtime.Handle, err error) {
	name := "node.runtime_start"
	if s.Image != "" {
		name = "node.runtime_restore"
	}
	ctx, span := startSpan(ctx, name, s.ID, attribute.String("warren.runtime", drv.Capabilities().Name))
	defer func() { endSpan(span, err) }()
	if s.Image != "" {
		cp, ok := drv.(runtime.Checkpointer)
		if !ok {
			return h, cannotCheckpoint(drv)
		}
		if h, err = cp.Restore(ctx, spec, s.Image); err != nil {
			return h, fmt.Errorf("restoring %s sandbox: %w", drv.Capabilities().Name, err)
		}
		return h, nil
	}
	if h, err = drv.Start(ctx, spec); err != nil {
		return h, fmt.Errorf("starting %s sandbox: %w", drv.Capabilities().Name, err)
	}
	return h, nil
}

// runtimeSpec is what drv needs to start (or restore) the sandbox s in dir, on rootfs
// and in the network namespace of att, with the agent binary at agentPath. It writes the
// sandbox's resolv.conf.
// The agent's config is not in it: a fresh start writes it to the root filesystem first
// (writeAgentConfig); a restored agent keeps the config it had and takes a new identity
// through /init.
func runtimeSpec(agentPath string, s startSpec, dir, rootfs string, att *network.Attachment) (runtime.Spec, error) {
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, resolvConf("/etc/resolv.conf", att.Gateway), 0o644); err != nil {
		return runtime.Spec{}, err
	}
	return runtime.Spec{
		ID:         s.ID,
		RootFS:     rootfs,
		StateDir:   dir,
		NetNSPath:  att.NetNSPath,
		Hostname:   s.Agent.Hostname,
		AgentPath:  agentPath,
		AgentArgs:  []string{"--config", runtime.AgentConfigPath},
		ResolvConf: resolv,
		Limits:     s.Limits,
		Slot:       s.Slot,
	}, nil
}

// agentConfig is the config warren-agent starts with for s on drv.
func agentConfig(s startSpec, drv runtime.Driver) AgentConfig {
	c := s.Agent
	c.Listen = fmt.Sprintf(":%d", runtime.AgentPort)
	if s.Limits.MemoryMB > 0 && !drv.Capabilities().PerProcessOOM {
		c.MemoryLimitBytes = s.Limits.MemoryMB << 20
	}
	if pl, ok := drv.(runtime.ProcessLimiter); ok {
		c.ProcessLimit = pl.ProcessLimit(s.Limits)
	}
	return c
}

// writeAgentConfig writes s.Agent to runtime.AgentConfigPath in the sandbox's root
// filesystem, readable by the sandbox's root only. The file and its directory belong to
// the sandbox's root (its host id range's root for a user-namespaced driver), so the
// agent can remove the file once read; until then no other process exists in the
// sandbox, and on the host it sits below the sandbox's private directory.
func writeAgentConfig(drv runtime.Driver, slot int, cfg AgentConfig, rootfs string) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	uid, gid := 0, 0
	if sh, ok := drv.(runtime.IDShifter); ok {
		r, err := sh.IDRange(slot)
		if err != nil {
			return err
		}
		uid, gid = int(r.UID), int(r.GID)
	}
	// Nothing here follows a symlink: the template's files are the tenant's.
	path := filepath.Join(rootfs, runtime.AgentConfigPath)
	dir := filepath.Dir(path)
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return fmt.Errorf("writing the agent's config: %w", err)
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("writing the agent's config: the template's %s is not a directory (it is reserved for warren-agent)", filepath.Dir(runtime.AgentConfigPath))
	}
	if err := os.Lchown(dir, uid, gid); err != nil {
		return fmt.Errorf("writing the agent's config: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("writing the agent's config: %w", err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("writing the agent's config: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("writing the agent's config: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chown(uid, gid)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the agent's config: %w", err)
	}
	return nil
}

// prepareRootFS mounts the sandbox's root filesystem at dir/rootfs: an overlay of the
// template below the sandbox's writable layer, which lives on a disk of limits.disk_mb
// when that is set. For a user-namespaced driver the template is first mounted at
// dir/lower id-mapped into the sandbox's own host id range (from its slot), and that
// range's root owns the writable layer: no file of the sandbox belongs to another's ids.
// Everything is mounted below dir, so Stop's unmountAll takes it all down.
func (n *Node) prepareRootFS(ctx context.Context, s startSpec, dir string) (string, error) {
	lower, layer := s.RootFS, dir
	rootUID, rootGID := 0, 0
	drv, _ := n.DriverFor(s.Runtime)
	if _, ok := drv.(runtime.IDShifter); ok && len(s.Lowers) > 0 {
		return "", fmt.Errorf("the %s runtime maps ids: layered sandboxes (template builds) need one that does not (gvisor)", drv.Capabilities().Name)
	}
	if sh, ok := drv.(runtime.IDShifter); ok {
		r, err := sh.IDRange(s.Slot)
		if err != nil {
			return "", err
		}
		lower = filepath.Join(dir, "lower")
		if err := os.Mkdir(lower, 0o755); err != nil && !os.IsExist(err) {
			return "", err
		}
		if err := idmount.Mount(s.RootFS, lower, idmount.Range{UID: r.UID, GID: r.GID, Size: r.Size}); err != nil {
			return "", fmt.Errorf("mounting the template id-mapped for the sandbox's user namespace (needs Linux ≥ 5.19): %w", err)
		}
		rootUID, rootGID = int(r.UID), int(r.GID)
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if s.Limits.DiskMB > 0 {
		mnt, err := n.disks.mountDisk(ctx, dir, s.Limits.DiskMB, s.Layer == layerKeep)
		if err != nil {
			return "", err
		}
		layer = mnt
	}
	if s.Layer == layerCopy {
		if err := copyLayer(ctx, s.LayerFrom, filepath.Join(layer, "upper")); err != nil {
			return "", err
		}
	}
	return mountOverlayStack(append(append([]string{}, s.Lowers...), lower), layer, dir, rootUID, rootGID, s.Layered)
}

// resolvConf gives sandboxes the name servers of the host's resolv.conf at path, minus
// loopback ones (which would point into the sandbox itself). A host that has only
// loopback ones (systemd-resolved's 127.0.0.53, a local dnsmasq) gives the sandbox its
// gateway instead: the DNS of a sandbox with internet access is redirected to Warren's
// resolver whatever server it names (network.egressRules), and that resolver forwards
// to the host's own servers, loopback ones included.
func resolvConf(path string, gateway netip.Addr) []byte {
	b, _ := os.ReadFile(path)
	var out strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" && !strings.HasPrefix(f[1], "127.") && f[1] != "::1" {
			out.WriteString(line + "\n")
		}
	}
	if out.Len() == 0 {
		if gateway.IsValid() {
			return []byte("# the host has only loopback name servers: Warren's resolver answers here\nnameserver " + gateway.String() + "\n")
		}
		return []byte("# no usable name server on the host\n")
	}
	return []byte(out.String())
}

// Halt makes a sandbox stop at once: its processes are killed (where the driver can) and
// its network is removed, so its address can be reused. Stop must follow to reclaim the
// rest; until then the slot must stay reserved.
func (n *Node) Halt(ctx context.Context, id string, slot int, h *runtime.Handle) error {
	var errs []error
	if k, ok := n.driverOf(h).(runtime.Killer); ok && h != nil {
		if err := k.Kill(ctx, *h); err != nil {
			errs = append(errs, fmt.Errorf("killing sandbox: %w", err))
		}
	}
	if err := detachNetwork(ctx, &n.cfg, id, slot); err != nil {
		errs = append(errs, fmt.Errorf("removing network: %w", err))
	}
	return errors.Join(errs...)
}

// Stop removes everything of a sandbox: its processes and runtime state (via the driver),
// its network, its overlay mount and its directory. h may be nil when the handle is
// unknown (a failed start or an orphan); then the driver is asked by id. Stop succeeds on
// a sandbox that is already gone.
func (n *Node) Stop(ctx context.Context, id string, slot int, h *runtime.Handle) error {
	var errs []error
	if h != nil && h.ID != id {
		// A handle naming another sandbox (or none: a row whose start was cut off before
		// its handle was recorded) must not be destroyed in id's place: ask by id.
		h = nil
	}
	handle := runtime.Handle{ID: id}
	if h != nil {
		handle = *h
	}
	t0 := time.Now()
	if h != nil {
		if err := n.driverOf(h).Destroy(ctx, handle); err != nil {
			errs = append(errs, fmt.Errorf("destroying runtime: %w", err))
		}
	} else {
		// Unknown handle (failed start, orphan): every driver removes what it has of id.
		for _, d := range n.Drivers() {
			if err := d.Destroy(ctx, handle); err != nil {
				errs = append(errs, fmt.Errorf("destroying %s runtime: %w", d.Capabilities().Name, err))
			}
		}
	}
	tDestroy := time.Since(t0)
	if err := detachNetwork(ctx, &n.cfg, id, slot); err != nil {
		errs = append(errs, fmt.Errorf("removing network: %w", err))
	}
	dir := n.sandboxDir(id)
	if err := unmountAll(dir); err != nil {
		errs = append(errs, err)
	}
	if err := detachLoops(dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("removing sandbox directory: %w", err))
	}
	n.log.Debug("sandbox removed", logkey.SandboxID, id, "runtime_destroy", tDestroy, "total", time.Since(t0))
	return errors.Join(errs...)
}

// Orphans returns the ids of sandboxes that have any trace on this host (runtime state,
// network namespace or directory) and are not in live.
func (n *Node) Orphans(ctx context.Context, live map[string]bool) ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	for _, d := range n.Drivers() {
		got, err := d.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing %s sandboxes: %w", d.Capabilities().Name, err)
		}
		ids = append(ids, got...)
	}
	nets, err := n.cfg.Network.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing network namespaces: %w", err)
	}
	ids = append(ids, nets...)
	ents, _ := os.ReadDir(n.cfg.Dir)
	for _, e := range ents {
		if e.IsDir() {
			ids = append(ids, e.Name())
		}
	}
	var out []string
	for _, id := range ids {
		if !live[id] && !seen[id] && domain.ValidSandboxID(id) {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// StopOrphan removes a sandbox whose slot is unknown: its network is found by name.
func (n *Node) StopOrphan(ctx context.Context, id string) error {
	return n.Stop(ctx, id, -1, nil)
}

// LogPath is the file the sandbox's console (its agent's log) is written to.
func (n *Node) LogPath(id string) string { return filepath.Join(n.sandboxDir(id), "console.log") }

// OpenLog opens the sandbox's console log for reading from its start. A sandbox that
// has not written it yet (or was removed) is an error satisfying
// errors.Is(err, fs.ErrNotExist). Reading the open log past its end returns io.EOF until
// more is written, and goes on working after the sandbox's directory is removed.
func (n *Node) OpenLog(id string) (io.ReadCloser, error) { return os.Open(n.LogPath(id)) }
