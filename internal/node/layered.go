package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// Layered sandboxes are what template builds run their steps in: a sandbox on a stack
// of read-only layers (the steps before, over the parent root filesystem) whose
// writable layer, once the step is done, is saved as the step's own layer
// (SaveLayer). Their ids must not have the shape of a sandbox id
// (domain.ValidSandboxID): the sweeper then never takes them for a sandbox's leftovers.

// Layered is the node's job of running layered sandboxes (a part of Node: its methods
// are the Node's).
type Layered struct{ n *Node }

// LayeredSpec is a layered sandbox to start.
type LayeredSpec struct {
	ID   string
	Slot int
	// RootFS is the parent root filesystem, and Lowers the layers above it, topmost
	// first. None of them is written.
	RootFS   string
	Lowers   []string
	Internet bool
	// Limits bound the sandbox; DiskMB bounds its writable layer (the step's layer).
	Limits domain.Limits
	Agent  AgentConfig
}

// StartLayered starts s on the node's default runtime and returns its handle and
// address. Stop removes it (SaveLayer first to keep its writable layer). On error
// nothing of it is left.
func (l *Layered) StartLayered(ctx context.Context, s LayeredSpec) (runtime.Handle, string, error) {
	n := l.n
	if domain.ValidSandboxID(s.ID) {
		return runtime.Handle{}, "", fmt.Errorf("layered sandbox id %q has the shape of a sandbox id: the sweeper would remove it", s.ID)
	}
	st, err := n.start(ctx, startSpec{ID: s.ID, Slot: s.Slot, RootFS: s.RootFS, Lowers: s.Lowers, Layered: true, Internet: s.Internet,
		Limits: s.Limits, Agent: s.Agent})
	if err != nil {
		return runtime.Handle{}, "", err
	}
	return st.Handle, st.Address, nil
}

// SaveLayer copies the writable layer of the sandbox id to dst (which must not exist),
// whiteouts and opaque directories included. The sandbox must not write any more
// (halt it first); its directory stays until Stop.
func (l *Layered) SaveLayer(ctx context.Context, id, dst string) error {
	n := l.n
	dir := n.sandboxDir(id)
	src := filepath.Join(dir, "disk", "upper")
	if _, err := os.Stat(src); err != nil {
		src = filepath.Join(dir, "upper")
	}
	return copyLayer(ctx, src, dst)
}

// MountLayers mounts on the host an overlay of lowers (topmost first) with its upper
// and work directories in layer, at dir/rootfs, and returns that path: a view in
// which the host writes a layer itself (a build's COPY) or reads a stack whole. The
// upper directory's "/" copies the last lower's. UnmountAll(dir) takes it down.
func MountLayers(lowers []string, layer, dir string) (string, error) {
	if len(lowers) == 0 {
		return "", fmt.Errorf("mounting layers: no lower layer")
	}
	return mountOverlayStack(lowers, layer, dir, 0, 0, true)
}

// UnmountAll unmounts everything mounted at or below dir, deepest first.
func UnmountAll(dir string) error { return unmountAll(dir) }

// Leftovers returns the ids starting with prefix that have any trace on this host
// (runtime state, network namespace or directory): layered sandboxes a crashed
// server left behind, for Stop (slot -1) to remove.
func (l *Layered) Leftovers(ctx context.Context, prefix string) ([]string, error) {
	if prefix == "" {
		return nil, fmt.Errorf("leftovers: an empty prefix would name every sandbox")
	}
	var ids []string
	for _, d := range l.n.Drivers() {
		got, err := d.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing %s sandboxes: %w", d.Capabilities().Name, err)
		}
		ids = append(ids, got...)
	}
	nets, err := l.n.cfg.Network.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing network namespaces: %w", err)
	}
	ids = append(ids, nets...)
	ents, _ := os.ReadDir(l.n.cfg.Dir)
	for _, e := range ents {
		if e.IsDir() {
			ids = append(ids, e.Name())
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if strings.HasPrefix(id, prefix) && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}
