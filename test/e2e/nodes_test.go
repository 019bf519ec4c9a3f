package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/store/sqlite"
)

// nodeJSON is the part of a node the suite reads (warren nodes list -o json).
type nodeJSON struct {
	Name      string `json:"name"`
	Address   string `json:"address"`
	State     string `json:"state"`
	Sandboxes int    `json:"sandboxes"`
	Runtimes  []string
	Free      struct {
		Slots    int   `json:"slots"`
		MemoryMB int64 `json:"memory_mb"`
	} `json:"free"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
}

// nodes runs 'warren nodes list -o json' against s.
func (s *server) nodes() map[string]nodeJSON {
	s.T.Helper()
	out, errOut, code := s.CLI(context.Background(), nil, "nodes", "list", "-o", "json")
	if code != 0 {
		s.T.Fatalf("warren nodes list: exit %d: %s", code, errOut)
	}
	var list []nodeJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		s.T.Fatalf("warren nodes list -o json: %v\n%s", err, out)
	}
	m := map[string]nodeJSON{}
	for _, n := range list {
		m[n.Name] = n
	}
	return m
}

// waitFor polls cond every 200 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestNodesDrain runs one real server as a named node: 'warren nodes list -o json'
// shows it with its address and figures, a sandbox shows its node, a drained node
// refuses creates with a 503 naming it and saying how to undrain (its sandbox runs
// on), and creates work again after undrain.
func TestNodesDrain(t *testing.T) {
	name := "e2e-node-" + domain.NewID(6)
	s := startServer(t, serverOpts{ExtraEnv: []string{"WARREN_NODE_NAME=" + name, "WARREN_NODE_TIMEOUT=3s"}})
	n, ok := s.nodes()[name]
	if !ok || n.State != "ready" || n.Address != s.Listen || n.Free.Slots < 1 || n.Free.MemoryMB < 1 || len(n.Runtimes) == 0 {
		t.Fatalf("node %s in the list: %+v (found %v)", name, n, ok)
	}
	sb := s.Create(map[string]any{"timeout": 120})
	var got struct {
		Node string `json:"node"`
	}
	if code, raw := s.API("GET", "/v1/sandboxes/"+sb.ID, nil, &got); code != 200 || got.Node != name {
		t.Fatalf("GET sandbox: %d %s; want node %s", code, raw, name)
	}
	waitFor(t, 15*time.Second, "the heartbeat counting the sandbox", func() bool { return s.nodes()[name].Sandboxes == 1 })

	if out, errOut, code := s.CLI(context.Background(), nil, "nodes", "drain", name); code != 0 || !strings.Contains(out, "draining") {
		t.Fatalf("warren nodes drain: exit %d: %s %s", code, out, errOut)
	}
	code, raw := s.API("POST", "/v1/sandboxes", map[string]any{"timeout": 60}, nil)
	if code != 503 || !strings.Contains(string(raw), name) || !strings.Contains(string(raw), "warren nodes undrain "+name) {
		t.Fatalf("create on a drained node: %d %s; want 503 naming the node and how to undrain it", code, raw)
	}
	if r := s.Exec(sb.ID, "echo still here"); r.Stdout != "still here\n" {
		t.Errorf("the sandbox of a drained node: %+v", r)
	}
	if n := s.nodes()[name]; n.State != "draining" {
		t.Errorf("node state after drain: %q", n.State)
	}
	time.Sleep(2 * time.Second) // heartbeats go on and leave the node drained
	if n := s.nodes()[name]; n.State != "draining" {
		t.Errorf("node state two heartbeats after drain: %q", n.State)
	}
	if out, errOut, code := s.CLI(context.Background(), nil, "nodes", "undrain", name); code != 0 || !strings.Contains(out, "ready") {
		t.Fatalf("warren nodes undrain: exit %d: %s %s", code, out, errOut)
	}
	s.Create(map[string]any{"timeout": 60})
}

// TestNodeMonitorAndReturn: another node's row whose heartbeat is stale, with a running
// sandbox, is marked down by the server's monitor and its sandbox lost. Then this node
// is killed, marked down meanwhile as another replica's monitor would, and started
// again: the sandbox it ran, lost with the node, is removed from the host and its row
// stays lost.
func TestNodeMonitorAndReturn(t *testing.T) {
	name := "e2e-node-" + domain.NewID(6)
	env := []string{"WARREN_NODE_NAME=" + name, "WARREN_NODE_TIMEOUT=3s"}
	s := startServer(t, serverOpts{ExtraEnv: env})
	var me struct {
		Team struct {
			ID string `json:"id"`
		} `json:"team"`
	}
	if code, raw := s.API("GET", "/v1/me", nil, &me); code != 200 || me.Team.ID == "" {
		t.Fatalf("GET /v1/me: %d %s", code, raw)
	}
	db := func() *sqlite.Store {
		st, err := sqlite.Open(context.Background(), filepath.Join(s.DataDir, "warren.db"))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := db()
	ghost := "ghost-" + domain.NewID(6)
	now := time.Now().UTC()
	if _, err := st.UpsertNode(context.Background(), &domain.Node{Name: ghost, Address: "127.0.0.1:1", StartedAt: now.Add(-time.Hour), HeartbeatAt: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	onGhost := &domain.Sandbox{ID: domain.NewID(20), TeamID: me.Team.ID, TemplateID: "base", State: domain.StateRunning,
		RuntimeName: "gvisor", Node: ghost, Slot: 9999, CreatedAt: now, StartedAt: now, EndsAt: now.Add(time.Hour)}
	if err := st.CreateSandbox(context.Background(), onGhost); err != nil {
		t.Fatal(err)
	}
	st.Close()
	waitFor(t, 20*time.Second, "the monitor marking the stale node down", func() bool { return s.nodes()[ghost].State == "down" })
	var lost sandboxJSON
	if code, raw := s.API("GET", "/v1/sandboxes/"+onGhost.ID, nil, &lost); code != 200 || lost.State != "stopped" ||
		!strings.HasPrefix(lost.EndReason, "lost: node "+ghost+" went down") {
		t.Fatalf("the stale node's sandbox: %d %s; want stopped, lost with its node", code, raw)
	}
	if n := s.nodes()[name]; n.State != "ready" {
		t.Errorf("the monitoring node itself is %q", n.State)
	}

	// This node runs a sandbox, is killed, and is marked down while it is away.
	sb := s.Create(map[string]any{"timeout": 300})
	s.Crash()
	st = db()
	marked, n, err := st.MarkNodeDown(context.Background(), name, time.Now().Add(time.Hour), "lost: node "+name+" went down (no heartbeat for 3s)", time.Now())
	st.Close()
	if err != nil || !marked || n != 1 {
		t.Fatalf("MarkNodeDown(%s) = %v, %d, %v; want its one sandbox lost", name, marked, n, err)
	}
	if out, _ := exec.Command("runsc", "--root", filepath.Join(s.DataDir, "runsc"), "list", "-quiet").Output(); !strings.Contains(string(out), sb.ID) {
		t.Fatalf("the killed server's sandbox should still run before the restart; runsc list: %q", out)
	}
	s.Start(env)
	if n := s.nodes()[name]; n.State != "ready" {
		t.Errorf("the node back is %q, want ready", n.State)
	}
	waitFor(t, 30*time.Second, "the lost sandbox removed from the host", func() bool {
		out, _ := exec.Command("runsc", "--root", filepath.Join(s.DataDir, "runsc"), "list", "-quiet").Output()
		return !strings.Contains(string(out), sb.ID)
	})
	var back sandboxJSON
	if code, raw := s.API("GET", "/v1/sandboxes/"+sb.ID, nil, &back); code != 200 || back.State != "stopped" ||
		!strings.HasPrefix(back.EndReason, "lost: node "+name) {
		t.Fatalf("the lost sandbox after the node came back: %d %s; want still stopped and lost", code, raw)
	}
	if code, _ := s.API("POST", "/v1/sandboxes/"+sb.ID+"/commands", map[string]any{"cmd": "true"}, nil); code != 409 {
		t.Errorf("a command in the lost sandbox answered %d, want 409", code)
	}
}

// TestTwoNodesOnPostgres runs two real servers, two nodes, on one PostgreSQL: each lists
// both; a sandbox records the node it runs on, and acting on it through the other
// node's server is a 503 naming its node. Then node B is killed: A's monitor (under
// the PostgreSQL advisory lock) marks it down within the node timeout and B's sandbox
// lost, while A's own sandbox runs on. B started again is ready, removes its lost
// sandbox from the host, and the row stays lost.
func TestTwoNodesOnPostgres(t *testing.T) {
	dbURL := postgresDatabase(t)
	nameA, nameB := "e2e-a-"+domain.NewID(6), "e2e-b-"+domain.NewID(6)
	envA := []string{"WARREN_DATABASE_URL=" + dbURL, "WARREN_NODE_NAME=" + nameA, "WARREN_NODE_TIMEOUT=3s"}
	envB := []string{"WARREN_DATABASE_URL=" + dbURL, "WARREN_NODE_NAME=" + nameB, "WARREN_NODE_TIMEOUT=3s"}
	a := startServer(t, serverOpts{ExtraEnv: envA})
	b := startServer(t, serverOpts{ExtraEnv: envB})
	for _, s := range []*server{a, b} {
		nodes := s.nodes()
		if nodes[nameA].State != "ready" || nodes[nameB].State != "ready" || nodes[nameB].Address != b.Listen {
			t.Fatalf("the nodes as %s lists them: %+v", s.Listen, nodes)
		}
	}
	_, key := a.newTeam(map[string]any{"name": "two nodes"})
	create := func(s *server) string {
		var sb sandboxJSON
		if code, raw := s.APIKey(key, "POST", "/v1/sandboxes", map[string]any{"timeout": 300}, &sb); code != 201 {
			t.Fatalf("create on %s: %d %s", s.Listen, code, raw)
		}
		return sb.ID
	}
	onA, onB := create(a), create(b)
	var got struct {
		Node string `json:"node"`
	}
	if code, raw := a.APIKey(key, "GET", "/v1/sandboxes/"+onB, nil, &got); code != 200 || got.Node != nameB {
		t.Fatalf("B's sandbox read through A: %d %s; want node %s", code, raw, nameB)
	}
	code, raw := a.APIKey(key, "POST", "/v1/sandboxes/"+onB+"/commands", map[string]any{"cmd": "true"}, nil)
	if code != 503 || !strings.Contains(string(raw), `node \"`+nameB+`\"`) {
		t.Fatalf("a command in B's sandbox through A: %d %s; want 503 naming node %s", code, raw, nameB)
	}

	b.Crash()
	t0 := time.Now()
	waitFor(t, 30*time.Second, "A's monitor marking B down", func() bool { return a.nodes()[nameB].State == "down" })
	t.Logf("node B noticed down %s after it was killed (--node-timeout 3s)", time.Since(t0).Round(100*time.Millisecond))
	var lost sandboxJSON
	if code, raw := a.APIKey(key, "GET", "/v1/sandboxes/"+onB, nil, &lost); code != 200 || lost.State != "stopped" ||
		!strings.HasPrefix(lost.EndReason, "lost: node "+nameB+" went down") {
		t.Fatalf("B's sandbox after B went down: %d %s", code, raw)
	}
	var r execJSON
	if code, raw := a.APIKey(key, "POST", "/v1/sandboxes/"+onA+"/commands", map[string]any{"cmd": "echo a"}, &r); code != 200 || r.Stdout != "a\n" {
		t.Errorf("A's sandbox while B is down: %d %s", code, raw)
	}

	b.Start(envB)
	waitFor(t, 15*time.Second, "B ready again", func() bool { return a.nodes()[nameB].State == "ready" })
	waitFor(t, 30*time.Second, "B's lost sandbox removed from its host", func() bool {
		out, _ := exec.Command("runsc", "--root", filepath.Join(b.DataDir, "runsc"), "list", "-quiet").Output()
		return !strings.Contains(string(out), onB)
	})
	if code, raw := b.APIKey(key, "GET", "/v1/sandboxes/"+onB, nil, &lost); code != 200 || lost.State != "stopped" ||
		!strings.HasPrefix(lost.EndReason, "lost: node "+nameB) {
		t.Errorf("B's lost sandbox after B came back: %d %s; want still lost", code, raw)
	}
	if code, _ := b.APIKey(key, "POST", "/v1/sandboxes", map[string]any{"timeout": 60}, nil); code != 201 {
		t.Errorf("a create on B after it came back answered %d", code)
	}
}
