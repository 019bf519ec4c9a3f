package forward

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

const secret = "0123456789abcdef0123456789abcdef-test"

// fakeStore is a Store of function fields; nil ones find nothing.
type fakeStore struct {
	sandbox  func(teamID, id string) (*domain.Sandbox, error)
	nodes    func() []*domain.Node
	template func(teamID, id string) (*domain.Template, error)
	snapshot func(teamID, ref string) (*domain.Snapshot, error)
}

func (f *fakeStore) GetSandbox(_ context.Context, teamID, id string) (*domain.Sandbox, error) {
	if f.sandbox == nil {
		return nil, domain.NotFound("sandbox", id)
	}
	return f.sandbox(teamID, id)
}

func (f *fakeStore) GetNode(_ context.Context, name string) (*domain.Node, error) {
	for _, n := range f.ListNodesOrNil() {
		if n.Name == name {
			return n, nil
		}
	}
	return nil, domain.NotFound("node", name)
}

func (f *fakeStore) ListNodesOrNil() []*domain.Node {
	if f.nodes == nil {
		return nil
	}
	return f.nodes()
}

func (f *fakeStore) ListNodes(context.Context) ([]*domain.Node, error) {
	return f.ListNodesOrNil(), nil
}

func (f *fakeStore) GetTemplate(_ context.Context, teamID, id string) (*domain.Template, error) {
	if f.template == nil {
		return nil, domain.NotFound("template", id)
	}
	return f.template(teamID, id)
}

func (f *fakeStore) GetSnapshot(_ context.Context, teamID, ref string) (*domain.Snapshot, error) {
	if f.snapshot == nil {
		return nil, domain.NotFound("snapshot", ref)
	}
	return f.snapshot(teamID, ref)
}

func node(name string, state domain.NodeState, addr string, slots int, mem int64, tpls ...string) *domain.Node {
	return &domain.Node{Name: name, State: state, Address: addr, Runtimes: []string{"gvisor"}, Templates: tpls,
		Free: domain.NodeCapacity{Slots: slots, MemoryMB: mem, CPUCores: 1}, HeartbeatAt: time.Now().Add(-time.Second)}
}

func names(ns []*domain.Node) string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return strings.Join(out, ",")
}

func TestCandidates(t *testing.T) {
	nodes := []*domain.Node{
		node("a", domain.NodeReady, "a:1", 5, 1000, "base"),
		node("b", domain.NodeReady, "b:1", 9, 1000, "base", "code-interpreter"),
		node("c", domain.NodeDraining, "c:1", 50, 1000, "base"),
		node("d", domain.NodeDown, "d:1", 50, 1000, "base"),
		node("e", domain.NodeReady, "", 50, 1000, "base"),
		node("f", domain.NodeReady, "f:1", 0, 9000, "base"),
		node("g", domain.NodeReady, "g:1", 5, 2000, "base"),
		node("h", domain.NodeReady, "h:1", 5, 2000, "base"),
	}
	nodes[7].Runtimes = []string{"gvisor", "runc"}
	for _, tc := range []struct {
		name, template, runtime, want string
	}{
		{"most free slots, then memory, then name", "", "", "b,g,h,a"},
		{"a listed template", "base", "", "b,g,h,a"},
		{"only the nodes with it", "code-interpreter", "", "b"},
		{"a tag of it", "code-interpreter:v2", "", "b"},
		{"a template no node lists is not a filter", "team-own", "", "b,g,h,a"},
		{"a runtime", "", "runc", "h"},
		{"a runtime none offers", "", "microvm", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(Candidates(nodes, tc.template, tc.runtime)); got != tc.want {
				t.Errorf("Candidates(%q, %q) = %q, want %q", tc.template, tc.runtime, got, tc.want)
			}
		})
	}
}

func TestInternal(t *testing.T) {
	var sawSecret, sawProxied string
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawSecret = r.Header.Get(HeaderSecret)
		io.WriteString(w, "api")
	})
	prx := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawProxied = r.Header.Get(HeaderProxied) + "|" + r.Header.Get(HeaderSecret)
		io.WriteString(w, "proxy "+r.Host)
	})
	h := Internal(secret, api, prx)
	for _, tc := range []struct {
		name, method, path, secret, proxied string
		status                              int
		body                                string
	}{
		{"probe without the secret", "GET", "/healthz", "", "", 200, "api"},
		{"readiness without the secret", "GET", "/readyz", "", "", 200, "api"},
		{"the API without the secret", "GET", "/v1/sandboxes", "", "", 401, "only control replicas"},
		{"a wrong secret", "POST", "/v1/sandboxes", secret + "x", "", 401, "only control replicas"},
		{"a prefix of the secret", "POST", "/v1/sandboxes", secret[:10], "", 401, "only control replicas"},
		{"a probe marked proxied needs it", "GET", "/healthz", "", "1", 401, "only control replicas"},
		{"the API with it", "POST", "/v1/sandboxes", secret, "", 200, "api"},
		{"sandbox traffic with it", "GET", "/x", secret, "1", 200, "proxy 8080-abc.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sawSecret, sawProxied = "", ""
			r := httptest.NewRequest(tc.method, "http://8080-abc.example.com"+tc.path, nil)
			if tc.secret != "" {
				r.Header.Set(HeaderSecret, tc.secret)
			}
			if tc.proxied != "" {
				r.Header.Set(HeaderProxied, tc.proxied)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
				t.Fatalf("%d %q, want %d %q", w.Code, w.Body.String(), tc.status, tc.body)
			}
			if sawSecret != "" || strings.Trim(sawProxied, "|") != "" {
				t.Errorf("the handler saw the secret or the mark: %q %q", sawSecret, sawProxied)
			}
		})
	}
	if err := CheckSecret("short"); err == nil || !strings.Contains(err.Error(), "openssl rand") {
		t.Errorf("CheckSecret(short) = %v, want a refusal saying how to make one", err)
	}
}

// fakeNode is a node's internal listener whose API answers with what it got.
type fakeNode struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []string // method path body, per request
	host string
}

func newFakeNode(t *testing.T, name string) *fakeNode {
	n := &fakeNode{}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		n.mu.Lock()
		n.got = append(n.got, r.Method+" "+r.URL.RequestURI()+" "+string(b))
		n.mu.Unlock()
		w.Header().Set("X-Node", name)
		w.WriteHeader(201)
		io.WriteString(w, name+" served "+r.URL.Path)
	})
	prx := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		n.host = r.Host
		n.mu.Unlock()
		io.WriteString(w, name+" proxied")
	})
	n.srv = httptest.NewServer(Internal(secret, api, prx))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *fakeNode) addr() string { return strings.TrimPrefix(n.srv.URL, "http://") }

// deadAddr is an address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func newForwarder(t *testing.T, st Store, self string, place bool) *Forwarder {
	f, err := New(Config{Store: st, Self: self, Secret: secret, Place: place, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func TestForwardSandbox(t *testing.T) {
	b := newFakeNode(t, "b")
	id := domain.NewID(20)
	nodes := []*domain.Node{node("a", domain.NodeReady, "127.0.0.1:1", 5, 1), node("b", domain.NodeReady, b.addr(), 5, 1),
		node("c", domain.NodeDown, deadAddr(t), 5, 1), node("d", domain.NodeReady, deadAddr(t), 5, 1)}
	rows := map[string]*domain.Sandbox{}
	st := &fakeStore{nodes: func() []*domain.Node { return nodes }, sandbox: func(team, id string) (*domain.Sandbox, error) {
		if sb, ok := rows[id]; ok && (team == domain.AnyTeam || team == sb.TeamID) {
			return sb, nil
		}
		return nil, domain.NotFound("sandbox", id)
	}}
	f := newForwarder(t, st, "a", false)
	p := domain.Principal{TeamID: "team1"}
	for _, tc := range []struct {
		name    string
		row     *domain.Sandbox
		p       domain.Principal
		done    bool
		status  int
		errKind domain.Kind
	}{
		{"another node's sandbox goes there", &domain.Sandbox{TeamID: "team1", Node: "b", State: domain.StateRunning}, p, true, 201, 0},
		{"a paused one too", &domain.Sandbox{TeamID: "team1", Node: "b", State: domain.StatePaused}, p, true, 201, 0},
		{"this node's is served here", &domain.Sandbox{TeamID: "team1", Node: "a", State: domain.StateRunning}, p, false, 0, 0},
		{"an ended one is served here", &domain.Sandbox{TeamID: "team1", Node: "b", State: domain.StateStopped}, p, false, 0, 0},
		{"another team's is served here (a 404)", &domain.Sandbox{TeamID: "team2", Node: "b", State: domain.StateRunning}, p, false, 0, 0},
		{"a down node's is a 503", &domain.Sandbox{TeamID: "team1", Node: "c", State: domain.StateRunning}, p, false, 0, domain.KindUnavailable},
		{"a silent node's is a 503", &domain.Sandbox{TeamID: "team1", Node: "d", State: domain.StateRunning}, p, true, 0, domain.KindUnavailable},
		{"a node not in the table is a 503", &domain.Sandbox{TeamID: "team1", Node: "zz", State: domain.StateRunning}, p, false, 0, domain.KindUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows[id] = tc.row
			r := httptest.NewRequest("POST", "/v1/sandboxes/"+id+"/commands?x=1", strings.NewReader(`{"cmd":"true"}`))
			w := httptest.NewRecorder()
			done, err := f.Forward(w, r, tc.p, edge.Target{Kind: edge.TargetSandbox, Sandbox: id})
			if tc.errKind != 0 {
				if !domain.IsKind(err, tc.errKind) {
					t.Fatalf("Forward = %v, %v; want a %v error", done, err, tc.errKind)
				}
				return
			}
			if err != nil || done != tc.done {
				t.Fatalf("Forward = %v, %v; want %v", done, err, tc.done)
			}
			if done && (w.Code != tc.status || w.Header().Get("X-Node") != "b") {
				t.Fatalf("relayed %d %q from %q", w.Code, w.Body.String(), w.Header().Get("X-Node"))
			}
		})
	}
	// A control has none of a sandbox's services: an ended sandbox's requests go to its
	// node too (it answers as a lone server would), or, the node gone, are a 409.
	ctl := newForwarder(t, st, "", true)
	rows[id] = &domain.Sandbox{TeamID: "team1", Node: "b", State: domain.StateStopped, EndReason: "killed"}
	if done, err := ctl.Forward(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/sandboxes/"+id+"/logs", nil), p,
		edge.Target{Kind: edge.TargetSandbox, Sandbox: id}); !done || err != nil {
		t.Errorf("a control's request for an ended sandbox: %v %v, want forwarded to its node", done, err)
	}
	rows[id] = &domain.Sandbox{TeamID: "team1", Node: "c", State: domain.StateStopped, EndReason: "lost: node c went down"}
	if _, err := ctl.Forward(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/sandboxes/"+id+"/logs", nil), p,
		edge.Target{Kind: edge.TargetSandbox, Sandbox: id}); !domain.IsKind(err, domain.KindConflict) || !strings.Contains(err.Error(), "lost: node c") {
		t.Errorf("a control's request for a sandbox lost with its node: %v, want a 409 saying why it ended", err)
	}
	// An unknown sandbox (or another team's) is a control's own 404.
	if _, err := ctl.Forward(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/sandboxes/"+id+"/commands", nil), domain.Principal{TeamID: "team2"},
		edge.Target{Kind: edge.TargetSandbox, Sandbox: id}); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("a control's request for another team's sandbox: %v, want a 404", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.got) != 3 || b.got[0] != "POST /v1/sandboxes/"+id+`/commands?x=1 {"cmd":"true"}` {
		t.Errorf("node b got %q", b.got)
	}
}

func TestCreatePlacement(t *testing.T) {
	b, c := newFakeNode(t, "b"), newFakeNode(t, "c")
	nodes := []*domain.Node{
		node("a", domain.NodeReady, deadAddr(t), 50, 1, "base"), // the emptiest, but gone
		node("b", domain.NodeReady, b.addr(), 10, 1, "base"),
		node("c", domain.NodeReady, c.addr(), 10, 1, "base", "gpu"),
	}
	st := &fakeStore{nodes: func() []*domain.Node { return nodes },
		template: func(team, id string) (*domain.Template, error) {
			if id == "my-gpu" {
				return &domain.Template{ID: "gpu", TeamID: team}, nil
			}
			return nil, domain.NotFound("template", id)
		}}
	f := newForwarder(t, st, "", true)
	p := domain.Principal{TeamID: "team1"}
	create := func(body string) (string, error) {
		r := httptest.NewRequest("POST", "/v1/sandboxes", strings.NewReader(body))
		w := httptest.NewRecorder()
		done, err := f.Forward(w, r, p, edge.Target{Kind: edge.TargetCreate})
		if err == nil && !done {
			t.Fatal("a control's create was not forwarded")
		}
		return w.Header().Get("X-Node"), err
	}
	// The dead node is tried first and the create goes on to the next, body whole;
	// then the creates alternate: each counts against its node until a heartbeat.
	var got []string
	for i := 0; i < 4; i++ {
		n, err := create(`{"template":"base"}`)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if strings.Join(got, ",") != "b,c,b,c" {
		t.Errorf("placed on %v, want b,c,b,c (the dead node skipped, then spread)", got)
	}
	if n, err := create(`{"templateID":"my-gpu"}`); err != nil || n != "c" {
		t.Errorf("a team template by name went to %q (%v), want c, the node that has it", n, err)
	}
	b.mu.Lock()
	if len(b.got) == 0 || b.got[0] != `POST /v1/sandboxes {"template":"base"}` {
		t.Errorf("node b got %q", b.got)
	}
	b.mu.Unlock()
	nodes = []*domain.Node{node("x", domain.NodeDraining, b.addr(), 10, 1)}
	if _, err := create(`{}`); !domain.IsKind(err, domain.KindUnavailable) || !strings.Contains(err.Error(), "warren serve --role node") {
		t.Errorf("a create with no ready node: %v, want a 503 saying to start or undrain one", err)
	}
	// A node with its own API (--role all) creates its own sandboxes.
	own := newForwarder(t, st, "b", false)
	if done, err := own.Forward(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/sandboxes", nil), p, edge.Target{Kind: edge.TargetCreate}); done || err != nil {
		t.Errorf("--role all forwarded its create: %v %v", done, err)
	}
}

func TestCreateFromSnapshot(t *testing.T) {
	b, c := newFakeNode(t, "b"), newFakeNode(t, "c")
	nodes := []*domain.Node{node("b", domain.NodeReady, b.addr(), 50, 1), node("c", domain.NodeReady, c.addr(), 1, 1)}
	src := domain.NewID(20)
	st := &fakeStore{nodes: func() []*domain.Node { return nodes },
		snapshot: func(team, ref string) (*domain.Snapshot, error) {
			if ref == "snap1" && team == "team1" {
				return &domain.Snapshot{ID: "snap1", TeamID: team, SandboxID: src}, nil
			}
			return nil, domain.NotFound("snapshot", ref)
		},
		sandbox: func(team, id string) (*domain.Sandbox, error) {
			if id == src {
				return &domain.Sandbox{ID: src, TeamID: "team1", Node: "c", State: domain.StateStopped}, nil
			}
			return nil, domain.NotFound("sandbox", id)
		}}
	f := newForwarder(t, st, "", true)
	for _, body := range []string{`{"snapshot":"snap1"}`, `{"templateID":"snap1"}`} {
		w := httptest.NewRecorder()
		if _, err := f.Forward(w, httptest.NewRequest("POST", "/sandboxes", strings.NewReader(body)), domain.Principal{TeamID: "team1"},
			edge.Target{Kind: edge.TargetCreate}); err != nil || w.Header().Get("X-Node") != "c" {
			t.Errorf("%s went to %q (%v), want c, the snapshot's node", body, w.Header().Get("X-Node"), err)
		}
	}
	nodes[1].State = domain.NodeDraining
	_, err := f.Forward(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/sandboxes", strings.NewReader(`{"snapshot":"snap1"}`)),
		domain.Principal{TeamID: "team1"}, edge.Target{Kind: edge.TargetCreate})
	if !domain.IsKind(err, domain.KindUnavailable) || !strings.Contains(err.Error(), `"c"`) {
		t.Errorf("a snapshot on a draining node: %v, want a 503 naming it", err)
	}
}

func TestProxyAndBuild(t *testing.T) {
	b, c := newFakeNode(t, "b"), newFakeNode(t, "c")
	id := domain.NewID(20)
	nodes := []*domain.Node{node("c", domain.NodeReady, c.addr(), 5, 1), node("b", domain.NodeReady, b.addr(), 1, 1)}
	st := &fakeStore{nodes: func() []*domain.Node { return nodes }, sandbox: func(team, sid string) (*domain.Sandbox, error) {
		if sid == id {
			return &domain.Sandbox{ID: id, TeamID: "team1", Node: "b", State: domain.StateRunning}, nil
		}
		return nil, domain.NotFound("sandbox", sid)
	}}
	f := newForwarder(t, st, "", true)
	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "local") })
	h := f.Proxy(local, func(r *http.Request) string {
		id, _, _ := strings.Cut(strings.TrimPrefix(r.Host, "8080-"), ".")
		return id
	})
	for host, want := range map[string]string{"8080-" + id + ".sb.test": "b proxied", "8080-" + domain.NewID(20) + ".sb.test": "local", "nothing": "local"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "http://"+host+"/", nil))
		if w.Body.String() != want {
			t.Errorf("traffic for %s: %q, want %q", host, w.Body.String(), want)
		}
	}
	if b.host != "8080-"+id+".sb.test" {
		t.Errorf("the node's proxy saw Host %q", b.host)
	}
	// Builds go to the first ready node by name, whatever its room.
	w := httptest.NewRecorder()
	if done, err := f.Forward(w, httptest.NewRequest("POST", "/v1/templates", nil), domain.Principal{TeamID: "team1"}, edge.Target{Kind: edge.TargetBuild}); !done || err != nil || w.Header().Get("X-Node") != "b" {
		t.Errorf("a build went to %q (%v %v), want b", w.Header().Get("X-Node"), done, err)
	}
}

func TestForwardSnapshotDelete(t *testing.T) {
	b := newFakeNode(t, "b")
	src := domain.NewID(20)
	nodes := []*domain.Node{node("a", domain.NodeReady, "127.0.0.1:1", 5, 1), node("b", domain.NodeReady, b.addr(), 5, 1)}
	srcNode := "b"
	st := &fakeStore{nodes: func() []*domain.Node { return nodes },
		snapshot: func(team, ref string) (*domain.Snapshot, error) {
			if team == "team1" && (ref == "snap1" || ref == "named") {
				return &domain.Snapshot{ID: "snap1", TeamID: team, SandboxID: src}, nil
			}
			return nil, domain.NotFound("snapshot", ref)
		},
		sandbox: func(team, id string) (*domain.Sandbox, error) {
			if id == src {
				return &domain.Sandbox{ID: src, TeamID: "team1", Node: srcNode, State: domain.StateStopped}, nil
			}
			return nil, domain.NotFound("sandbox", id)
		}}
	for _, tc := range []struct {
		name, self, ref, team, node string
		done                        bool
	}{
		{"a control sends it to the node with the files", "", "named", "team1", "b", true},
		{"a node sends another node's there", "a", "snap1", "team1", "b", true},
		{"the holder deletes its own", "b", "snap1", "team1", "b", false},
		{"another team's is the local 404", "", "snap1", "team2", "b", false},
		{"not a snapshot (an E2B template) is served here", "", "my-template", "team1", "b", false},
		{"a holder that is gone: the row is deleted here", "", "snap1", "team1", "zz", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srcNode = tc.node
			f := newForwarder(t, st, tc.self, tc.self == "")
			w := httptest.NewRecorder()
			done, err := f.Forward(w, httptest.NewRequest("DELETE", "/v1/snapshots/"+tc.ref, nil), domain.Principal{TeamID: tc.team},
				edge.Target{Kind: edge.TargetSnapshot, Snapshot: tc.ref})
			if err != nil || done != tc.done || (done && w.Header().Get("X-Node") != "b") {
				t.Errorf("Forward = %v, %v (from %q); want %v", done, err, w.Header().Get("X-Node"), tc.done)
			}
		})
	}
}
