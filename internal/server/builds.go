package server

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/network"
	"github.com/warren-sh/warren/internal/node"
	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/gvisor"
	"github.com/warren-sh/warren/internal/runtime/oci"
	"github.com/warren-sh/warren/internal/template/layers"
	"github.com/warren-sh/warren/internal/templates"
)

// buildHost is the node template builds run their steps on: a node of its own, with
// its own gVisor state root, sandbox directory, nftables table and address pool
// (--build-cidr), so that the serving node's sweeper never takes a step's sandbox for
// a leftover and the two never hand out the same address.
type buildHost struct {
	netm    *network.Manager
	driver  *gvisor.Driver
	node    *node.Node
	builder *layers.Builder
	pruning context.Context // the caches' pruning runs until stop
	stop    context.CancelFunc
}

// buildNetworkName is the build node's network name: the serving node's, marked.
func buildNetworkName(name string) string {
	if len(name) > 11 {
		name = name[:11]
	}
	return name + "b"
}

// defaultBuildCIDR is the build node's pool when --build-cidr is not given: a /26 of
// 10.250.0.0/16 chosen by the network name, so that servers of different names on one
// host (the test suites') rarely share one.
func defaultBuildCIDR(networkName string) netip.Prefix {
	h := fnv.New32a()
	h.Write([]byte(networkName))
	n := h.Sum32() % 1024
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 250, byte(n >> 2), byte(n&3) << 6}), 26)
}

// startBuilder makes the layer builder on a build node of its own. A host that cannot
// run gVisor gets no builder: template builds then answer that they need it.
func startBuilder(ctx context.Context, c Config, deny []netip.Prefix, log *slog.Logger) (*buildHost, error) {
	pool := c.BuildCIDR
	if !pool.IsValid() {
		pool = defaultBuildCIDR(c.NetworkName)
	}
	if pool.Overlaps(c.SandboxCIDR) {
		return nil, fmt.Errorf("--build-cidr %s overlaps --sandbox-cidr %s: give template builds a range of their own", pool, c.SandboxCIDR)
	}
	dataDir, err := filepath.Abs(c.DataDir)
	if err != nil {
		return nil, err
	}
	drv, err := gvisor.New(gvisor.Config{Runsc: c.Runsc, Root: filepath.Join(dataDir, "build-runsc"), Platform: c.RunscPlatform,
		CgroupParent: "/" + buildNetworkName(c.NetworkName), Log: log})
	if err != nil {
		return nil, fmt.Errorf("template builds need gVisor: %w", err)
	}
	netm, err := network.New(network.Config{Name: buildNetworkName(c.NetworkName), Pool: pool, DenyCIDRs: deny, Log: log})
	if err != nil {
		return nil, err
	}
	if err := netm.Init(ctx); err != nil {
		return nil, err
	}
	b := &buildHost{netm: netm, driver: drv}
	fail := func(err error) (*buildHost, error) {
		b.close(context.WithoutCancel(ctx), log)
		return nil, err
	}
	b.node, err = node.New(node.Config{Dir: filepath.Join(dataDir, "build-sandboxes"), AgentPath: c.AgentPath, Driver: drv,
		Drivers: []runtime.Driver{drv}, Network: netm, Log: log, PrimeMigration: oci.PrimeMigration})
	if err != nil {
		return fail(err)
	}
	if b.builder, err = layers.New(layers.Config{Dir: filepath.Join(dataDir, "layers"), Node: b.node, Log: log,
		KeepUnused: c.LayerCacheKeep, MaxCacheBytes: c.LayerCacheMaxBytes}); err != nil {
		return fail(err)
	}
	// Step sandboxes never outlive their build: whatever a crash left is removed.
	if _, err := b.builder.Recover(ctx); err != nil {
		log.Warn("removing build step sandboxes a previous server left", logkey.Err, err)
	}
	pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	b.pruning, b.stop = pctx, stop
	go b.builder.RunPrune(pctx, time.Hour)
	return b, nil
}

// close removes the build node's nftables table and its driver's parent cgroups.
func (b *buildHost) close(ctx context.Context, log *slog.Logger) {
	if b == nil {
		return
	}
	if b.stop != nil {
		b.stop()
	}
	if err := b.netm.Close(ctx); err != nil {
		log.Error("removing the build node's nftables table", logkey.Err, err)
	}
	b.driver.Cleanup()
}

// startTemplateService makes the template service (with the layer builder when the
// build node started) and fails the builds a previous server left running.
func startTemplateService(ctx context.Context, c Config, store domain.Store, b *buildHost, log *slog.Logger) (*templates.Service, error) {
	images := NewImagePuller(c, log, nil)
	if b != nil { // images are pulled for builds alone
		go images.RunPrune(b.pruning, time.Hour, c.ImageCacheKeep)
	}
	cfg := templates.Config{Store: store, Images: images, FilesDir: filepath.Join(c.DataDir, "template-files"),
		MaxLimits: c.MaxLimits, Log: log}
	if b != nil {
		cfg.Builder = b.builder
	}
	ts, err := templates.New(cfg)
	if err != nil {
		return nil, err
	}
	n, err := ts.Recover(ctx)
	if err != nil {
		ts.Close()
		return nil, fmt.Errorf("recovering template builds: %w", err)
	}
	if n > 0 {
		log.Info(fmt.Sprintf("%d template builds interrupted by the restart marked failed", n))
	}
	return ts, nil
}
