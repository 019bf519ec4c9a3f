package e2e

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/test/internal/harness"
)

type poolJSON struct {
	TemplateID string `json:"template_id"`
	Size       int    `json:"size"`
	Ready      int    `json:"ready"`
	Starting   int    `json:"starting"`
	Claims     int64  `json:"claims"`
	Misses     int64  `json:"misses"`
	Failures   int64  `json:"failures"`
}

// basePool returns the base template's warm pool as GET /v1/pools reports it.
func (s *server) basePool(t *testing.T) poolJSON {
	t.Helper()
	var out struct {
		Pools []poolJSON `json:"pools"`
	}
	if code, raw := s.API("GET", "/v1/pools", nil, &out); code != 200 {
		t.Fatalf("GET /v1/pools: %d %s", code, raw)
	}
	for _, p := range out.Pools {
		if p.TemplateID == "base" {
			return p
		}
	}
	t.Fatalf("no base pool in %+v", out.Pools)
	return poolJSON{}
}

// waitPoolReady waits until the base pool holds n ready members.
func (s *server) waitPoolReady(t *testing.T, n int) poolJSON {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p := s.basePool(t)
		if p.Ready == n {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("the base pool did not reach %d ready members: %+v", n, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sandboxDirs returns the ids of the sandboxes with a directory on the node.
func (s *server) sandboxDirs() []string {
	ents, _ := os.ReadDir(filepath.Join(s.DataDir, "sandboxes"))
	var out []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// TestWarmPool: with --warm-pool base=2, creates are served by pool members (the pool
// says so, and the debug log), take the request's env and internet setting, and the
// pool refills. Members a crashed server left are swept at the next start, and a
// shutdown leaves nothing behind.
func TestWarmPool(t *testing.T) {
	env := []string{"WARREN_WARM_POOL=base=2", "WARREN_LOG_LEVEL=debug"}
	s := startServer(t, serverOpts{ExtraEnv: env})
	inet := newFakeInternet(t, 100+int(harness.ServerSeq.Load()))
	inetURL := "http://" + net.JoinHostPort(inet.addr.String(), "8080") + "/"
	s.waitPoolReady(t, 2)
	members := s.sandboxDirs()
	if len(members) != 2 {
		t.Fatalf("sandbox directories %v, want the 2 members", members)
	}
	var list struct {
		Sandboxes []sandboxJSON `json:"sandboxes"`
	}
	if s.API("GET", "/v1/sandboxes", nil, &list); len(list.Sandboxes) != 0 {
		t.Errorf("members are listed as the team's sandboxes: %+v", list.Sandboxes)
	}

	a := s.Create(map[string]any{"env": map[string]string{"GREETING": "warm hello"}})
	if !slices.Contains(members, a.ID) {
		t.Errorf("sandbox %s is not one of the members %v", a.ID, members)
	}
	if r := s.Exec(a.ID, `echo "$GREETING"; hostname`); r.Stdout != "warm hello\n"+a.ID+"\n" {
		t.Errorf("env and hostname in a claimed sandbox: %+v", r)
	}
	b := s.Create(map[string]any{"internet": false})
	if b.Internet || !slices.Contains(members, b.ID) {
		t.Errorf("second claim %+v (members %v)", b, members)
	}
	if p := s.basePool(t); p.Claims != 2 || p.Misses != 0 || p.Failures != 0 {
		t.Errorf("pool after two claims: %+v", p)
	}
	if s.WaitLog(regexp.MustCompile("warm pool claim"), 10*time.Second) == nil {
		t.Errorf("no 'warm pool claim' in the debug log")
	}
	if r := s.Exec(a.ID, "curl -s -m 3 "+inetURL); r.ExitCode != 0 || r.Stdout != "internet-ok" {
		t.Errorf("internet on: %+v", r)
	}
	if r := s.Exec(b.ID, "curl -s -m 3 "+inetURL); r.ExitCode == 0 {
		t.Errorf("internet off reached the outside: %+v", r)
	}
	// A request off the pool's profile starts cold.
	c := s.Create(map[string]any{"limits": map[string]any{"memory_mb": 256}})
	if slices.Contains(members, c.ID) {
		t.Errorf("a request with other limits took a member")
	}
	p := s.waitPoolReady(t, 2)
	if p.Misses != 1 || p.Claims != 2 {
		t.Errorf("pool after the refill: %+v", p)
	}
	for _, sb := range []sandboxJSON{a, b, c} {
		s.Kill(sb.ID)
	}

	// A crash leaves the members running with no row: the next start sweeps them.
	left := s.sandboxDirs()
	s.Crash()
	s.Start(env)
	s.waitPoolReady(t, 2)
	now := s.sandboxDirs()
	for _, id := range left {
		if slices.Contains(now, id) {
			t.Errorf("member %s of the crashed server is still on the node", id)
		}
		if _, err := os.Stat("/var/run/netns/" + s.Net + "-" + id); !os.IsNotExist(err) {
			t.Errorf("member %s's network namespace is still there (%v)", id, err)
		}
	}
	if len(now) != 2 {
		t.Errorf("sandbox directories after the restart %v, want the 2 new members", now)
	}
	// s.Stop (at cleanup) shuts down and leak-checks; the members must be gone too.
	s.StopKeep()
	if dirs := s.sandboxDirs(); len(dirs) != 0 {
		t.Errorf("shutdown left sandbox directories %v", dirs)
	}
	harness.LeakCheck(t, s.Server)
	os.RemoveAll(s.DataDir)
}
