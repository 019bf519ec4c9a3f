package rest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// nodesFake is a domain.NodeService over one node that answers platform admins only,
// as cluster.Nodes.
type nodesFake struct{ node *domain.Node }

func (f *nodesFake) admin(p domain.Principal) error {
	if !p.Admin {
		return domain.Errorf(domain.KindForbidden, "nodes are the platform's")
	}
	return nil
}

func (f *nodesFake) ListNodes(_ context.Context, p domain.Principal) ([]*domain.Node, error) {
	if err := f.admin(p); err != nil {
		return nil, err
	}
	return []*domain.Node{f.node}, nil
}

func (f *nodesFake) set(p domain.Principal, name string, st domain.NodeState) (*domain.Node, error) {
	if err := f.admin(p); err != nil {
		return nil, err
	}
	if name != f.node.Name {
		return nil, domain.NotFound("node", name)
	}
	f.node.State = st
	c := *f.node
	return &c, nil
}

func (f *nodesFake) Drain(_ context.Context, p domain.Principal, name string) (*domain.Node, error) {
	return f.set(p, name, domain.NodeDraining)
}

func (f *nodesFake) Undrain(_ context.Context, p domain.Principal, name string) (*domain.Node, error) {
	return f.set(p, name, domain.NodeReady)
}

func TestNodes(t *testing.T) {
	hb := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	fake := &nodesFake{node: &domain.Node{Name: "n1", Address: "10.0.0.1:3000", State: domain.NodeReady,
		Capacity: domain.NodeCapacity{CPUCores: 2, MemoryMB: 1000, DiskMB: 5000, Slots: 10},
		Free:     domain.NodeCapacity{CPUCores: 1.5, MemoryMB: 800, DiskMB: 4000, Slots: 9}, Sandboxes: 1, HeartbeatAt: hb}}
	h := newHarness(t, WithNodes(fake))
	h.as(domain.Principal{TeamID: "team_root", KeyID: "key_root", Admin: true})
	res := h.do("GET", "/v1/nodes", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	nodes, _ := res.Obj(t)["nodes"].([]any)
	if len(nodes) != 1 {
		t.Fatalf("nodes %s", res.Body)
	}
	n := nodes[0].(map[string]any)
	free, _ := n["free"].(map[string]any)
	if n["name"] != "n1" || n["state"] != "ready" || n["sandboxes"] != 1.0 || free["slots"] != 9.0 || free["cpu_cores"] != 1.5 ||
		n["heartbeat_at"] != "2030-01-02T03:04:05Z" {
		t.Errorf("node %v", n)
	}
	if rt, ok := n["runtimes"].([]any); !ok || len(rt) != 0 {
		t.Errorf("runtimes %v, want []", n["runtimes"])
	}
	res = h.do("POST", "/v1/nodes/n1/drain", nil)
	if res.Status != http.StatusOK || res.Obj(t)["state"] != "draining" {
		t.Fatalf("drain: %d %s", res.Status, res.Body)
	}
	res = h.do("POST", "/v1/nodes/n1/undrain", nil)
	if res.Status != http.StatusOK || res.Obj(t)["state"] != "ready" {
		t.Fatalf("undrain: %d %s", res.Status, res.Body)
	}
	h.wantError(h.do("POST", "/v1/nodes/nope/drain", nil), http.StatusNotFound, "not_found", "")

	h.as(domain.Principal{TeamID: "team_a", Scopes: []domain.Scope{domain.ScopeAdmin}})
	for _, c := range []struct{ method, path string }{{"GET", "/v1/nodes"}, {"POST", "/v1/nodes/n1/drain"}, {"POST", "/v1/nodes/n1/undrain"}} {
		h.wantError(h.do(c.method, c.path, nil), http.StatusForbidden, "forbidden", "")
	}
	if fake.node.State != domain.NodeReady {
		t.Errorf("a refused drain left the node %s", fake.node.State)
	}

	none := newHarness(t)
	none.as(domain.Principal{TeamID: "team_root", Admin: true})
	none.wantError(none.do("GET", "/v1/nodes", nil), http.StatusNotFound, "not_found", "")
}
