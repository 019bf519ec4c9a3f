package forward

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// createFields are what placement reads of a create's body: the REST API's template,
// runtime and snapshot, the E2B API's templateID (a template or a snapshot).
type createFields struct {
	Template   string `json:"template"`
	TemplateID string `json:"templateID"`
	Runtime    string `json:"runtime"`
	Snapshot   string `json:"snapshot"`
}

// create places a new sandbox of p's team and forwards its request to the node
// placed on, or the next one when a node cannot be reached.
func (f *Forwarder) create(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	head, whole, err := readBody(r, f.cfg.MaxCreateBody)
	if err != nil {
		return err
	}
	var want createFields
	if whole {
		_ = json.Unmarshal(head, &want) // a body that is not JSON is the node's to refuse
	}
	nodes, err := f.cfg.Store.ListNodes(r.Context())
	if err != nil {
		return err
	}
	cands, err := f.candidates(r.Context(), p, nodes, want)
	if err != nil {
		return err
	}
	var last error
	for i, n := range cands {
		if i > 0 {
			if !whole {
				break // the body is on its way to the first node: it cannot be sent again
			}
			r.Body = io.NopCloser(bytes.NewReader(head))
		}
		f.placed.add(n.Name)
		err := f.send(w, r, n, false)
		var u *unreachable
		if err == nil || !errors.As(err, &u) || !dialFailed(u.err) {
			return err
		}
		last = err
	}
	return last
}

// candidates are the nodes a create may go to, best first; a create from a snapshot
// goes to the node that holds it.
func (f *Forwarder) candidates(ctx context.Context, p domain.Principal, nodes []*domain.Node, want createFields) ([]*domain.Node, error) {
	tpl := cmp.Or(want.Template, want.TemplateID)
	snap := want.Snapshot
	if snap == "" && want.TemplateID != "" && p.TeamID != "" {
		// E2B starts a sandbox from a snapshot by naming it as the template.
		if _, err := f.cfg.Store.GetSnapshot(ctx, p.TeamID, want.TemplateID); err == nil {
			snap = want.TemplateID
		}
	}
	if snap != "" && p.TeamID != "" {
		if node, ok := f.snapshotNode(ctx, p, snap); ok {
			for _, n := range nodes {
				if n.Name == node && n.State == domain.NodeReady && n.Address != "" {
					return []*domain.Node{n}, nil
				}
			}
			return nil, domain.Errorf(domain.KindUnavailable, "snapshot %q is held by node %q, which takes no new sandboxes now (down, draining or gone); try again when it is ready", snap, node)
		}
	}
	if tpl != "" && !listedAnywhere(nodes, tpl) && p.TeamID != "" {
		// A name or alias: placement goes by the template's id.
		if t, err := f.cfg.Store.GetTemplate(ctx, p.TeamID, baseName(tpl)); err == nil {
			tpl = t.ID
		}
	}
	cands := Candidates(f.placed.adjust(nodes), tpl, want.Runtime)
	if len(cands) == 0 {
		// The creates sent since the heartbeats may have ended already: the nodes
		// themselves admit by what they hold.
		cands = Candidates(nodes, tpl, want.Runtime)
	}
	if len(cands) == 0 {
		return nil, noNode(nodes, tpl, want.Runtime)
	}
	return cands, nil
}

// snapshotNode returns the node of the sandbox snapshot ref was taken of.
func (f *Forwarder) snapshotNode(ctx context.Context, p domain.Principal, ref string) (string, bool) {
	s, err := f.cfg.Store.GetSnapshot(ctx, p.TeamID, ref)
	if err != nil {
		return "", false
	}
	sb, err := f.cfg.Store.GetSandbox(ctx, domain.AnyTeam, s.SandboxID)
	if err != nil || sb.Node == "" {
		return "", false
	}
	return sb.Node, true
}

// baseName is a template reference without its tag (name:tag).
func baseName(ref string) string {
	name, _, _ := strings.Cut(ref, domain.TagSeparator)
	return name
}

// listedAnywhere reports whether some node lists template id.
func listedAnywhere(nodes []*domain.Node, id string) bool {
	for _, n := range nodes {
		if slices.Contains(n.Templates, baseName(id)) {
			return true
		}
	}
	return false
}

// Candidates returns the nodes a new sandbox of template (an id; "" any) on runtime
// ("" the default) may go to, best first: ready, with an address and a free slot,
// offering the runtime, and having the template when some node lists it (a template no
// node lists is the chosen node's to resolve or refuse); the most free slots first,
// then free memory, then free cores, then by name.
func Candidates(nodes []*domain.Node, template, runtime string) []*domain.Node {
	tpl := baseName(template)
	known := tpl != "" && listedAnywhere(nodes, tpl)
	var out []*domain.Node
	for _, n := range nodes {
		switch {
		case n.State != domain.NodeReady, n.Address == "", n.Free.Slots <= 0:
		case runtime != "" && !slices.Contains(n.Runtimes, runtime):
		case known && !slices.Contains(n.Templates, tpl):
		default:
			out = append(out, n)
		}
	}
	slices.SortStableFunc(out, func(a, b *domain.Node) int {
		return cmp.Or(
			cmp.Compare(b.Free.Slots, a.Free.Slots),
			cmp.Compare(b.Free.MemoryMB, a.Free.MemoryMB),
			cmp.Compare(b.Free.CPUCores, a.Free.CPUCores),
			cmp.Compare(a.Name, b.Name))
	})
	return out
}

// noNode says why no node can take a create.
func noNode(nodes []*domain.Node, template, runtime string) error {
	ready := 0
	for _, n := range nodes {
		if n.State == domain.NodeReady && n.Address != "" {
			ready++
		}
	}
	switch {
	case ready == 0:
		return domain.Errorf(domain.KindUnavailable, "no node can take sandboxes now (%d in the node table, none ready); start a node (warren serve --role node) or undrain one (warren nodes undrain NAME)", len(nodes))
	case runtime != "":
		return domain.Errorf(domain.KindUnavailable, "no ready node with a free slot offers runtime %q and template %q; try another runtime, or again when sandboxes end", runtime, template)
	}
	return domain.Errorf(domain.KindUnavailable, "no ready node with a free slot has template %q; try again when sandboxes end, or add a node", template)
}

// buildNode is where template builds run: the ready node first by name, so that every
// control replica picks the same one for a build's request, upload and start.
func (f *Forwarder) buildNode(ctx context.Context) (*domain.Node, error) {
	nodes, err := f.cfg.Store.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	var best *domain.Node
	for _, n := range nodes {
		if n.State == domain.NodeReady && n.Address != "" && (best == nil || n.Name < best.Name) {
			best = n
		}
	}
	if best == nil {
		return nil, domain.Errorf(domain.KindUnavailable, "no node can build templates now (%d in the node table, none ready); start a node (warren serve --role node)", len(nodes))
	}
	return best, nil
}

// placements remembers the creates this replica sent to each node since the node's
// last heartbeat, whose free figures do not count them yet: without it a burst of
// creates would all go to the node that looked emptiest at its last heartbeat.
type placements struct {
	mu sync.Mutex
	at map[string][]time.Time // per node, when creates were sent; Preconditions: mu held
}

// add records a create sent to node now.
func (p *placements) add(node string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.at == nil {
		p.at = map[string][]time.Time{}
	}
	p.at[node] = append(p.at[node], time.Now())
}

// adjust returns copies of nodes whose free slots leave out the creates sent since
// each one's heartbeat, and forgets the creates the heartbeats now count.
func (p *placements) adjust(nodes []*domain.Node) []*domain.Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*domain.Node, len(nodes))
	for i, n := range nodes {
		c := *n
		sent := p.at[n.Name]
		k := 0
		for _, t := range sent {
			if t.After(n.HeartbeatAt) {
				sent[k] = t
				k++
			}
		}
		if k == 0 {
			delete(p.at, n.Name)
		} else {
			p.at[n.Name] = sent[:k]
		}
		c.Free.Slots -= k
		out[i] = &c
	}
	return out
}
