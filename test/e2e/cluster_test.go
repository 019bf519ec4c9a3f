package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/testenv"
)

// cluster is a real cluster on this machine: PostgreSQL, control replicas and nodes,
// each node with its own data dir, address pool, nftables table and listener.
type cluster struct {
	t        *testing.T
	env      []string
	controls []*server
	nodes    []*server
	names    []string // the nodes' names, by index
	report   []string // lines of test-artifacts/cluster.md
}

// reply is an answer of a call made from a goroutine (no t.Fatal there).
type reply struct {
	code int
	body []byte
	err  error
}

// call does one JSON request to base with key and extra headers, never failing the test.
func call(base, key, method, path string, body any, hdr map[string]string) reply {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return reply{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 2 * time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, body: b, err: err}
}

func (r reply) String() string {
	if r.err != nil {
		return r.err.Error()
	}
	return fmt.Sprintf("%d %s", r.code, r.body)
}

// sandboxOf decodes a sandbox answer.
func sandboxOf(b []byte) (id, node, state string) {
	var sb struct {
		ID, Node, State string
	}
	_ = json.Unmarshal(b, &sb)
	return sb.ID, sb.Node, sb.State
}

// startCluster starts PostgreSQL's database, the controls (the first makes the admin
// key) and the nodes.
func startCluster(t *testing.T, controls, nodes int) *cluster {
	dbURL := postgresDatabase(t)
	admin := "sk_" + domain.NewID(40) // the cluster's one admin key (WARREN_ADMIN_KEY)
	c := &cluster{t: t, env: []string{"WARREN_DATABASE_URL=" + dbURL, "WARREN_CLUSTER_SECRET=" + domain.NewID(40),
		"WARREN_ADMIN_KEY=" + admin, "WARREN_NODE_TIMEOUT=5s", "WARREN_DOMAIN=cluster.test"}}
	for i := 0; i < controls; i++ {
		c.controls = append(c.controls, startServer(t, serverOpts{Role: "control", Key: admin, ExtraEnv: c.env}))
	}
	for i := 0; i < nodes; i++ {
		name := fmt.Sprintf("e2e-n%d-%s", i+1, domain.NewID(4))
		c.names = append(c.names, name)
		c.nodes = append(c.nodes, startServer(t, serverOpts{Role: "node", Key: admin, ExtraEnv: c.nodeEnv(name)}))
	}
	return c
}

func (c *cluster) nodeEnv(name string) []string {
	return append(slices.Clone(c.env), "WARREN_NODE_NAME="+name)
}

// nodeOf returns the index of node name.
func (c *cluster) nodeOf(name string) int { return slices.Index(c.names, name) }

// create makes a sandbox through control i with key, failing the test on a refusal.
func (c *cluster) create(i int, key string, body map[string]any) (id, node string) {
	c.t.Helper()
	r := call(c.controls[i].URL, key, "POST", "/v1/sandboxes", body, nil)
	if r.err != nil || r.code != 201 {
		c.t.Fatalf("create through control %d: %s", i, r)
	}
	id, node, _ = sandboxOf(r.body)
	return id, node
}

// running lists the team's running sandboxes through control i (id -> node).
func (c *cluster) running(i int, key string) map[string]string {
	c.t.Helper()
	r := call(c.controls[i].URL, key, "GET", "/v1/sandboxes?state=running&limit=500", nil, nil)
	var list struct {
		Sandboxes []struct{ ID, Node string } `json:"sandboxes"`
	}
	if r.err != nil || r.code != 200 || json.Unmarshal(r.body, &list) != nil {
		c.t.Fatalf("list through control %d: %s", i, r)
	}
	out := map[string]string{}
	for _, s := range list.Sandboxes {
		out[s.ID] = s.Node
	}
	return out
}

// exec runs cmd in sandbox id through control i with key.
func (c *cluster) exec(i int, key, id, cmd string) execJSON {
	c.t.Helper()
	var r execJSON
	rep := call(c.controls[i].URL, key, "POST", "/v1/sandboxes/"+id+"/commands", map[string]any{"cmd": cmd}, nil)
	if rep.err != nil || rep.code != 200 || json.Unmarshal(rep.body, &r) != nil {
		c.t.Errorf("a command in %s through control %d: %s", id, i, rep)
	}
	return r
}

// logf logs a figure and keeps it for test-artifacts/cluster.md.
func (c *cluster) logf(format string, args ...any) {
	c.t.Helper()
	line := fmt.Sprintf(format, args...)
	c.t.Log(line)
	c.report = append(c.report, "- "+line)
}

// writeReport writes the figures to test-artifacts/cluster.md.
func (c *cluster) writeReport() {
	dir := filepath.Join(repoRoot(), "test-artifacts")
	_ = os.MkdirAll(dir, 0o755)
	_ = os.WriteFile(filepath.Join(dir, "cluster.md"), []byte("# TestCluster (2 controls, 3 nodes, one PostgreSQL)\n\n"+strings.Join(c.report, "\n")+"\n"), 0o644)
}

// TestCluster runs a real cluster on one machine: PostgreSQL, 2 control replicas
// (--role control) and 3 nodes (--role node), and holds it to issue 17's list:
// placement spreads 30 sandboxes over the nodes; each replica lists and reaches every
// sandbox, through the proxy too; 50 concurrent creates over both replicas against a
// quota of 10 admit exactly 10; a drained node gets no creates; kill -9 of a node
// marks its sandboxes lost within the timeout while creates go on elsewhere, and the
// node restarted reconciles with nothing left; killing a control replica mid-load
// loses no admitted sandbox and creates none twice (Idempotency-Key retries on the
// other replica). The figures go to test-artifacts/cluster.md.
func TestCluster(t *testing.T) {
	c := startCluster(t, 2, 3)
	defer c.writeReport()
	c0 := c.controls[0]
	for i, ctl := range c.controls {
		waitFor(t, 20*time.Second, fmt.Sprintf("control %d listing the 3 nodes ready", i), func() bool {
			nodes := ctl.nodes()
			for _, n := range c.names {
				if nodes[n].State != "ready" || nodes[n].Address == "" {
					return false
				}
			}
			return true
		})
	}
	// Five servers share the one admin key given them: none made one of its own.
	var keys struct {
		Keys []struct{ Name string } `json:"keys"`
	}
	if code, raw := c0.API("GET", "/v1/keys", nil, &keys); code != 200 || len(keys.Keys) != 1 || keys.Keys[0].Name != "cluster admin" {
		t.Errorf("the admin team's keys: %d %s; want only the cluster's admin key", code, raw)
	}
	for _, s := range append(slices.Clone(c.controls), c.nodes...) {
		if _, err := os.Stat(filepath.Join(s.DataDir, "admin.key")); !os.IsNotExist(err) {
			t.Errorf("%s made an admin.key of its own (%v)", s.DataDir, err)
		}
	}
	_, key := c0.newTeam(map[string]any{"name": "cluster", "quota": map[string]any{"max_sandboxes": 40, "max_cpu_cores": 64,
		"max_memory_mb": 1 << 20, "max_disk_mb": 1 << 22, "requests_per_minute": 100000}})
	small := map[string]any{"timeout": 600, "limits": map[string]any{"memory_mb": 128}}

	t.Run("placement spreads and every replica reaches every sandbox", func(t *testing.T) {
		ids := make([]string, 30)
		perNode := map[string]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4)
		errs := make(chan string, 30)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				r := call(c.controls[i%2].URL, key, "POST", "/v1/sandboxes", small, nil)
				if r.err != nil || r.code != 201 {
					errs <- r.String()
					return
				}
				id, node, _ := sandboxOf(r.body)
				mu.Lock()
				ids[i] = id
				perNode[node]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Fatalf("a create: %s", e)
		}
		var counts []string
		for _, n := range c.names {
			counts = append(counts, fmt.Sprint(perNode[n]))
			if perNode[n] < 5 {
				t.Errorf("node %s got %d of 30 sandboxes, want at least 5 (spread: %v)", n, perNode[n], perNode)
			}
		}
		c.logf("placement of 30 creates (4 at a time, alternating replicas) over 3 nodes: %s", strings.Join(counts, "/"))
		for i := range c.controls {
			list := c.running(i, key)
			for _, id := range ids {
				if list[id] == "" {
					t.Errorf("control %d does not list %s", i, id)
				}
			}
			for _, id := range ids {
				if r := c.exec(i, key, id, "hostname"); r.Stdout != id+"\n" {
					t.Errorf("hostname of %s through control %d: %+v", id, i, r)
				}
			}
		}
		// Proxied traffic: a web server in one sandbox per node, reached through each
		// replica's proxy by <port>-<id>.<domain>.
		served := map[string]bool{}
		where := c.running(0, key)
		for i, id := range ids {
			if served[where[id]] {
				continue
			}
			served[where[id]] = true
			if r := c.exec(i%2, key, id, "echo page-"+id+" > /tmp/index.html; cd /tmp && setsid -f python3 -m http.server 8000 >/dev/null 2>&1; "+
				"for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null && break; sleep 0.1; done"); r.ExitCode != 0 {
				t.Fatalf("starting a web server in %s: %+v", id, r)
			}
			for j, ctl := range c.controls {
				req, _ := http.NewRequest("GET", ctl.ProxyURL+"/index.html", nil)
				req.Host = "8000-" + id + ".cluster.test"
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("proxy of control %d: %v", j, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "page-"+id+"\n" {
					t.Errorf("port 8000 of %s through control %d's proxy: %d %q", id, j, resp.StatusCode, b)
				}
			}
		}
		if len(served) != 3 {
			t.Errorf("web servers on %d nodes, want 3", len(served))
		}
		// Another team's key finds none of them through either replica (the control
		// looks the sandbox up for the caller's team before forwarding anything).
		_, other := c0.newTeam(map[string]any{"name": "cluster other"})
		for i, ctl := range c.controls {
			for _, rt := range [][2]string{{"GET", ""}, {"POST", "/commands"}, {"DELETE", ""}, {"GET", "/files/content?path=/etc/hostname"}} {
				if r := call(ctl.URL, other, rt[0], "/v1/sandboxes/"+ids[i]+rt[1], map[string]any{"cmd": "true"}, nil); r.code != 404 {
					t.Errorf("another team's %s %s through control %d: %s; want 404", rt[0], rt[1], i, r)
				}
			}
		}
		for i, id := range ids {
			if r := call(c.controls[i%2].URL, key, "DELETE", "/v1/sandboxes/"+id, nil, nil); r.code != 204 {
				t.Errorf("kill %s: %s", id, r)
			}
		}
	})

	t.Run("the E2B SDK through a control replica", func(t *testing.T) {
		// The official SDK's commands, files and pause suites with E2B_API_URL and
		// E2B_SANDBOX_URL at control 1: creates placed on the nodes, envd traffic and
		// ports through the control's proxy, pause, connect and auto-resume forwarded.
		node := testenv.NeedsTool(t, "node")
		ensureNodeModules(t, filepath.Join(repoRoot(), "test", "e2b"))
		var files []string
		for _, f := range []string{"commands.test.mjs", "files.test.mjs", "pause.test.mjs"} {
			files = append(files, filepath.Join("test", "e2b", f))
		}
		start := time.Now()
		runE2BSuite(t, node, c.controls[1], files, nil)
		c.logf("the official E2B SDK's commands, files and pause suites through a control replica: passed in %s", time.Since(start).Round(time.Second))
	})

	t.Run("a terminal and the logs through a control", func(t *testing.T) {
		id, _ := c.create(0, key, small)
		defer call(c0.URL, key, "DELETE", "/v1/sandboxes/"+id, nil, nil)
		tc, resp, err := dialTerm(t, c.controls[1], id, "?cols=100&rows=30", http.Header{"Authorization": {"Bearer " + key}})
		if err != nil {
			t.Fatalf("the terminal WebSocket through control 1: %v %v", err, resp)
		}
		tc.typeText("echo hel''lo; stty size\r")
		at := tc.waitOutput(0, "hello")
		tc.waitOutput(at, "30 100")
		tc.typeText("exit 3\r")
		select {
		case <-tc.closed:
		case <-time.After(30 * time.Second):
			t.Fatal("the WebSocket through the control was not closed after the shell exited")
		}
		tc.mu.Lock()
		if len(tc.controls) != 1 || tc.controls[0]["code"] != 3.0 {
			t.Errorf("control frames %v; want one exit frame with code 3", tc.controls)
		}
		tc.mu.Unlock()
		if r := call(c0.URL, key, "GET", "/v1/sandboxes/"+id+"/logs", nil, nil); r.err != nil || r.code != 200 {
			t.Errorf("the sandbox's logs through control 0: %s", r)
		}
		c.logf("a terminal (WebSocket, resize, exit code) and the console log through the controls: ok")
	})

	t.Run("a template built through a control runs on the nodes", func(t *testing.T) {
		var started struct {
			Build struct{ ID string } `json:"build"`
		}
		r := call(c.controls[1].URL, key, "POST", "/v1/templates", map[string]any{"name": "e2e-cluster", "from_template": "base",
			"steps": []map[string]any{{"type": "RUN", "args": []string{"echo built > /etc/e2e-cluster"}}}}, nil)
		if r.err != nil || (r.code != 201 && r.code != 202) || json.Unmarshal(r.body, &started) != nil {
			t.Fatalf("starting a build through control 1: %s", r)
		}
		waitFor(t, 5*time.Minute, "the build ready, read through control 0", func() bool {
			var b struct{ State, Reason string }
			r := call(c0.URL, key, "GET", "/v1/templates/e2e-cluster/builds/"+started.Build.ID, nil, nil)
			if json.Unmarshal(r.body, &b) != nil || b.State == "error" {
				t.Fatalf("build status: %s", r)
			}
			return b.State == "ready"
		})
		if r := call(c0.URL, key, "GET", "/v1/templates/e2e-cluster/builds/"+started.Build.ID+"/logs", nil, nil); r.code != 200 || !strings.Contains(string(r.body), "echo built") {
			t.Errorf("the build's logs through control 0: %s", r)
		}
		for i := 0; i < 3; i++ {
			id, node := c.create(i%2, key, map[string]any{"template": "e2e-cluster", "timeout": 120})
			if r := c.exec((i+1)%2, key, id, "cat /etc/e2e-cluster"); r.Stdout != "built\n" {
				t.Errorf("a sandbox of the built template on %s: %+v", node, r)
			}
			call(c0.URL, key, "DELETE", "/v1/sandboxes/"+id, nil, nil)
		}
		c.logf("a template build started through one control, followed through the other, and run on the nodes: ok")
	})

	t.Run("snapshots through the controls", func(t *testing.T) {
		id, node := c.create(0, key, small)
		c.exec(0, key, id, "echo saved > /tmp/state")
		if r := call(c.controls[0].URL, key, "POST", "/v1/sandboxes/"+id+"/snapshots", map[string]any{"name": "cluster-snap"}, nil); r.code != 201 {
			t.Fatalf("snapshot through control 0: %s", r)
		}
		var list struct {
			Snapshots []struct{ ID, Name string } `json:"snapshots"`
		}
		r := call(c.controls[1].URL, key, "GET", "/v1/snapshots", nil, nil)
		if r.code != 200 || json.Unmarshal(r.body, &list) != nil || len(list.Snapshots) != 1 || list.Snapshots[0].Name != "cluster-snap" {
			t.Fatalf("snapshots listed through control 1: %s", r)
		}
		if r := call(c.controls[1].URL, key, "GET", "/v1/snapshots/cluster-snap", nil, nil); r.code != 200 {
			t.Errorf("the snapshot read through control 1: %s", r)
		}
		from, fromNode := c.create(1, key, map[string]any{"snapshot": "cluster-snap", "timeout": 120})
		if fromNode != node {
			t.Errorf("a sandbox from the snapshot went to %s, not %s which holds it", fromNode, node)
		}
		if r := c.exec(0, key, from, "cat /tmp/state"); r.Stdout != "saved\n" {
			t.Errorf("the sandbox from the snapshot: %+v", r)
		}
		dir := filepath.Join(c.nodes[c.nodeOf(node)].DataDir, "snapshots", list.Snapshots[0].ID)
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("the snapshot's files on its node: %v", err)
		}
		if r := call(c.controls[1].URL, key, "DELETE", "/v1/snapshots/cluster-snap", nil, nil); r.code != 204 {
			t.Errorf("delete through control 1: %s", r)
		}
		waitFor(t, 10*time.Second, "the snapshot's files removed from its node", func() bool {
			_, err := os.Stat(dir)
			return os.IsNotExist(err)
		})
		for _, sb := range []string{id, from} {
			call(c0.URL, key, "DELETE", "/v1/sandboxes/"+sb, nil, nil)
		}
		c.logf("a snapshot taken through one control, listed, started from (on its node) and deleted (files too) through the other: ok")
	})

	t.Run("50 concurrent creates over both replicas admit exactly the quota", func(t *testing.T) {
		_, qkey := c0.newTeam(map[string]any{"name": "quota 10", "quota": map[string]any{"max_sandboxes": 10, "max_cpu_cores": 64,
			"max_memory_mb": 1 << 20, "max_disk_mb": 1 << 22, "requests_per_minute": 100000}})
		var created, refused atomic.Int32
		var other sync.Map
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := call(c.controls[i%2].URL, qkey, "POST", "/v1/sandboxes", small, nil)
				switch {
				case r.err == nil && r.code == 201:
					created.Add(1)
				case r.err == nil && r.code == 429 && strings.Contains(string(r.body), "max_sandboxes"):
					refused.Add(1)
				default:
					other.Store(i, r.String())
				}
			}()
		}
		wg.Wait()
		other.Range(func(k, v any) bool { t.Errorf("create %v: %v", k, v); return true })
		live := c.running(1, qkey)
		c.logf("50 concurrent creates over both replicas, quota 10: %d created, %d refused (429 max_sandboxes), %d listed running", created.Load(), refused.Load(), len(live))
		if created.Load() != 10 || refused.Load() != 40 || len(live) != 10 {
			t.Errorf("created %d, refused %d, running %d; want 10, 40, 10", created.Load(), refused.Load(), len(live))
		}
		for id := range live {
			call(c0.URL, qkey, "DELETE", "/v1/sandboxes/"+id, nil, nil)
		}
	})

	t.Run("a drained node gets no creates", func(t *testing.T) {
		drained := c.names[2]
		if out, errOut, code := c0.CLI(context.Background(), nil, "nodes", "drain", drained); code != 0 {
			t.Fatalf("warren nodes drain: %d %s %s", code, out, errOut)
		}
		var ids []string
		for i := 0; i < 6; i++ {
			id, node := c.create(i%2, key, small)
			ids = append(ids, id)
			if node == drained {
				t.Errorf("create %d went to the drained node %s", i, node)
			}
		}
		if out, errOut, code := c.controls[1].CLI(context.Background(), nil, "nodes", "undrain", drained); code != 0 {
			t.Fatalf("warren nodes undrain: %d %s %s", code, out, errOut)
		}
		for _, id := range ids {
			call(c0.URL, key, "DELETE", "/v1/sandboxes/"+id, nil, nil)
		}
	})

	t.Run("a dead node's sandboxes are lost and creates go on elsewhere", func(t *testing.T) {
		victim := 2
		name := c.names[victim]
		// Until the node holds sandboxes of its own: placement puts creates on the node
		// with the most room, which an empty node soon is.
		var onVictim []string
		var others []string
		for i := 0; len(onVictim) < 2; i++ {
			if i > 20 {
				t.Fatalf("20 creates and %d on node %s", len(onVictim), name)
			}
			id, node := c.create(i%2, key, small)
			if node == name {
				onVictim = append(onVictim, id)
			} else {
				others = append(others, id)
			}
		}
		c.nodes[victim].Crash()
		t0 := time.Now()
		// Requests for its sandboxes get a clear 503 at once, never a hang.
		start := time.Now()
		r := call(c0.URL, key, "POST", "/v1/sandboxes/"+onVictim[0]+"/commands", map[string]any{"cmd": "true"}, nil)
		if r.err != nil || r.code != 503 || !strings.Contains(string(r.body), name) {
			t.Errorf("a command in a dead node's sandbox: %s; want a 503 naming the node", r)
		}
		c.logf("a command in a killed node's sandbox answered %d in %s", r.code, time.Since(start).Round(time.Millisecond))
		waitFor(t, 30*time.Second, "the dead node's sandboxes lost", func() bool {
			var sb sandboxJSON
			code, _ := c.controls[1].APIKey(key, "GET", "/v1/sandboxes/"+onVictim[1], nil, &sb)
			return code == 200 && sb.State == "stopped" && strings.HasPrefix(sb.EndReason, "lost: node "+name)
		})
		noticed := time.Since(t0)
		c.logf("kill -9 of a node to its sandboxes marked lost: %s (--node-timeout 5s, heartbeat every 1.7s)", noticed.Round(100*time.Millisecond))
		if noticed > 15*time.Second {
			t.Errorf("the dead node was noticed after %s", noticed)
		}
		if st := c0.nodes()[name].State; st != "down" {
			t.Errorf("the dead node is %q, want down", st)
		}
		for i := 0; i < 4; i++ {
			id, node := c.create(i%2, key, small)
			others = append(others, id)
			if node == name || node == "" {
				t.Errorf("a create after the node died went to %q", node)
			}
		}
		for _, id := range others {
			if r := c.exec(1, key, id, "echo ok"); r.Stdout != "ok\n" {
				t.Errorf("a live node's sandbox %s: %+v", id, r)
			}
		}
		// The node back reconciles: its lost sandboxes are removed from the host.
		c.nodes[victim].Start(c.nodeEnv(name))
		waitFor(t, 20*time.Second, "the node ready again", func() bool { return c0.nodes()[name].State == "ready" })
		waitFor(t, 30*time.Second, "the lost sandboxes removed from the node's host", func() bool {
			out, _ := exec.Command("runsc", "--root", filepath.Join(c.nodes[victim].DataDir, "runsc"), "list", "-quiet").Output()
			return strings.TrimSpace(string(out)) == ""
		})
		var sb sandboxJSON
		if code, raw := c0.APIKey(key, "GET", "/v1/sandboxes/"+onVictim[0], nil, &sb); code != 200 || sb.State != "stopped" {
			t.Errorf("a lost sandbox after its node came back: %d %s", code, raw)
		}
		for _, id := range others {
			call(c0.URL, key, "DELETE", "/v1/sandboxes/"+id, nil, nil)
		}
	})

	t.Run("a control replica killed mid-load loses no admitted sandbox", func(t *testing.T) {
		const n = 16
		got := make([]string, n)
		var retried atomic.Int32
		var wg sync.WaitGroup
		killed := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				hdr := map[string]string{"Idempotency-Key": fmt.Sprintf("mid-load-%d", i)}
				if i >= n/2 {
					<-killed // the second half starts after the kill
				}
				r := call(c.controls[i%2].URL, key, "POST", "/v1/sandboxes", small, hdr)
				for tries := 0; r.err != nil || r.code == 502 || r.code == 503 || r.code == 409; tries++ {
					// The client's retry: the same request and key, to the other replica.
					if tries > 30 {
						t.Errorf("create %d never succeeded: %s", i, r)
						return
					}
					retried.Add(1)
					time.Sleep(time.Second)
					r = call(c.controls[1].URL, key, "POST", "/v1/sandboxes", small, hdr)
				}
				if r.code != 201 && r.code != 200 {
					t.Errorf("create %d: %s", i, r)
					return
				}
				got[i], _, _ = sandboxOf(r.body)
			}()
		}
		time.Sleep(300 * time.Millisecond) // the first half is under way
		c.controls[0].Crash()
		close(killed)
		wg.Wait()
		live := c.running(1, key)
		distinct := map[string]bool{}
		for i, id := range got {
			if id == "" {
				continue
			}
			distinct[id] = true
			if live[id] == "" {
				t.Errorf("create %d's sandbox %s is not running", i, id)
			}
		}
		c.logf("control replica killed mid-load: %d creates with Idempotency-Key, %d retries on the other replica, %d distinct sandboxes, %d running for the team",
			n, retried.Load(), len(distinct), len(live))
		if len(distinct) != n || len(live) != n {
			t.Errorf("%d distinct sandboxes, %d running; want %d of each (none lost, none twice)", len(distinct), len(live), n)
		}
		for id := range live {
			call(c.controls[1].URL, key, "DELETE", "/v1/sandboxes/"+id, nil, nil)
		}
		c.controls[0].Start(c.env)
	})

	t.Run("create latency through a control against one host", func(t *testing.T) {
		through := createTimes(t, c.controls[1].URL, key, small, 15)
		one := startServer(t, serverOpts{})
		alone := createTimes(t, one.URL, one.Key, small, 15)
		one.Stop()
		c.logf("create p50 through a control replica to a node %s (p90 %s), on one --role all server %s (p90 %s): ratio %.2f",
			through[len(through)/2], through[len(through)*9/10], alone[len(alone)/2], alone[len(alone)*9/10],
			float64(through[len(through)/2])/float64(alone[len(alone)/2]))
	})
}

// createTimes creates and kills n sandboxes one after another at base and returns the
// creates' times, sorted.
func createTimes(t *testing.T, base, key string, body map[string]any, n int) []time.Duration {
	var out []time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		r := call(base, key, "POST", "/v1/sandboxes", body, nil)
		d := time.Since(t0)
		if r.err != nil || r.code != 201 {
			t.Fatalf("create at %s: %s", base, r)
		}
		out = append(out, d.Round(time.Millisecond))
		id, _, _ := sandboxOf(r.body)
		call(base, key, "DELETE", "/v1/sandboxes/"+id, nil, nil)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
