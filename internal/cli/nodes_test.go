package cli

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/api/rest"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
)

// newNodesEnv serves a node table of two nodes to platform admins (keyA is one).
func newNodesEnv(t *testing.T) (*testEnv, map[string]*domain.Node) {
	t.Helper()
	hb := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	nodes := map[string]*domain.Node{
		"n1": {Name: "n1", Address: "10.0.0.1:3000", State: domain.NodeReady, Sandboxes: 2, HeartbeatAt: hb,
			Free: domain.NodeCapacity{CPUCores: 1.5, MemoryMB: 800, DiskMB: 4000, Slots: 7}},
		"n2": {Name: "n2", Address: "10.0.0.2:3000", State: domain.NodeDown, HeartbeatAt: hb},
	}
	admin := func(p domain.Principal) error {
		if !p.Admin {
			return domain.Errorf(domain.KindForbidden, "nodes are the platform's")
		}
		return nil
	}
	set := func(st domain.NodeState) func(context.Context, domain.Principal, string) (*domain.Node, error) {
		return func(_ context.Context, p domain.Principal, name string) (*domain.Node, error) {
			if err := admin(p); err != nil {
				return nil, err
			}
			n, ok := nodes[name]
			if !ok {
				return nil, domain.NotFound("node", name)
			}
			n.State = st
			c := *n
			return &c, nil
		}
	}
	ns := &fake.Nodes{
		ListNodesFn: func(_ context.Context, p domain.Principal) ([]*domain.Node, error) {
			if err := admin(p); err != nil {
				return nil, err
			}
			return []*domain.Node{nodes["n1"], nodes["n2"]}, nil
		},
		DrainFn: set(domain.NodeDraining), UndrainFn: set(domain.NodeReady),
	}
	srv := httptest.NewServer(restServer(newMemService(), rest.WithNodes(ns)))
	t.Cleanup(srv.Close)
	return &testEnv{t: t, url: srv.URL, vars: map[string]string{"WARREN_API_URL": srv.URL, "WARREN_API_KEY": keyA}}, nodes
}

func TestNodesCLI(t *testing.T) {
	e, nodes := newNodesEnv(t)
	out := e.ok("nodes", "list").stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[1], "n1") ||
		!strings.Contains(lines[1], "ready") || !strings.Contains(lines[1], "10.0.0.1:3000") || !strings.Contains(lines[1], "1.5") ||
		!strings.Contains(lines[2], "down") {
		t.Errorf("nodes list:\n%s", out)
	}
	var list []struct {
		Name, State, Address string
		Sandboxes            int
		Free                 struct{ Slots int } `json:"free"`
	}
	if err := json.Unmarshal([]byte(e.ok("nodes", "list", "-o", "json").stdout), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "n1" || list[0].Sandboxes != 2 || list[0].Free.Slots != 7 || list[1].State != "down" {
		t.Errorf("nodes list -o json: %+v", list)
	}
	if out := e.ok("nodes", "drain", "n1").stdout; !strings.Contains(out, "node n1 is draining") || !strings.Contains(out, "warren nodes undrain n1") {
		t.Errorf("drain said %q", out)
	}
	if nodes["n1"].State != domain.NodeDraining {
		t.Errorf("node n1 is %s after drain", nodes["n1"].State)
	}
	if out := e.ok("nodes", "undrain", "n1").stdout; !strings.Contains(out, "node n1 is ready") {
		t.Errorf("undrain said %q", out)
	}
	if r := e.run("nodes", "drain", "nope"); r.code != 1 || !strings.Contains(r.stderr, `node "nope" not found`) {
		t.Errorf("drain of an unknown node: %d %q", r.code, r.stderr)
	}
	if r := e.run("nodes", "drain"); r.code != 2 {
		t.Errorf("drain without a name exited %d, want 2 (usage)", r.code)
	}
	e.vars["WARREN_API_KEY"] = keyB // a team's key, not the platform's
	if r := e.run("nodes", "list"); r.code != 1 || !strings.Contains(r.stderr, "platform") {
		t.Errorf("nodes list with a team key: %d %q", r.code, r.stderr)
	}
}
