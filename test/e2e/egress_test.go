package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/test/internal/harness"
)

// fakeHosts are test hosts in one network namespace of the test's own, at
// 198.19.<n>.2, .3, ... (the benchmark range), routed from the host like outside
// addresses. Each answers HTTP on port 8080 with "host-<its address>". No packet leaves
// the machine.
type fakeHosts struct {
	addrs []netip.Addr
}

func newFakeHosts(t *testing.T, count int) *fakeHosts {
	t.Helper()
	n := 20 + os.Getpid()%200
	id := fmt.Sprintf("wte%d%d", os.Getpid()%100000, harness.ServerSeq.Load()%10)
	ns, hostIf := id, id+"h"
	gw := netip.AddrFrom4([4]byte{198, 19, byte(n), 1})
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	run("ip", "netns", "add", ns)
	var srv *http.Server
	t.Cleanup(func() {
		if srv != nil {
			srv.Close()
		}
		exec.Command("ip", "netns", "del", ns).Run()
		exec.Command("ip", "link", "del", hostIf).Run()
	})
	run("ip", "link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", ns)
	run("ip", "addr", "add", gw.String()+"/24", "dev", hostIf)
	run("ip", "link", "set", hostIf, "up")
	run("ip", "-n", ns, "link", "set", "eth0", "up")
	run("ip", "-n", ns, "link", "set", "lo", "up")
	f := &fakeHosts{}
	for i := 0; i < count; i++ {
		a := netip.AddrFrom4([4]byte{198, 19, byte(n), byte(2 + i)})
		run("ip", "-n", ns, "addr", "add", a.String()+"/24", "dev", "eth0")
		f.addrs = append(f.addrs, a)
	}
	run("ip", "-n", ns, "route", "add", "default", "via", gw.String())
	ln := listenInNetns(t, "/var/run/netns/"+ns, "0.0.0.0:8080")
	srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.Context().Value(http.LocalAddrContextKey).(net.Addr).String())
		fmt.Fprint(w, "host-"+host)
	})}
	go srv.Serve(ln)
	// The host itself must reach them before any sandbox is asked to.
	for _, a := range f.addrs {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", netip.AddrPortFrom(a, 8080).String(), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("fake host %s unreachable from the host: %v", a, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return f
}

func (f *fakeHosts) url(i int) string {
	return "http://" + netip.AddrPortFrom(f.addrs[i], 8080).String() + "/"
}

// reaches reports whether a curl from inside sandbox id gets fake host i's answer; a
// denied connection times out (dropped) within 3 seconds.
func (s *server) reaches(t *testing.T, id string, f *fakeHosts, i int) bool {
	t.Helper()
	r := s.Exec(id, "curl -sS -m 3 "+f.url(i))
	ok := r.ExitCode == 0 && r.Stdout == "host-"+f.addrs[i].String()
	if !ok && r.ExitCode == 0 {
		t.Errorf("curl %s from %s answered %q", f.url(i), id, r.Stdout)
	}
	return ok
}

type networkJSON struct {
	AllowOut []string `json:"allow_out"`
	DenyOut  []string `json:"deny_out"`
}

func (s *server) network(t *testing.T, id string) networkJSON {
	t.Helper()
	var sb struct {
		Network networkJSON `json:"network"`
	}
	if code, raw := s.API("GET", "/v1/sandboxes/"+id, nil, &sb); code != 200 {
		t.Fatalf("get %s: %d %s", id, code, raw)
	}
	return sb.Network
}

// TestEgressPolicy: a sandbox's egress policy, end to end on real runsc with fake hosts:
// "only these" lets the allowed address through and drops the other; an update holds for
// the next connection without restarting the sandbox; internet off with an allow list
// passes the allow entries only; the policy survives a server restart (the node's table
// is rebuilt and recovery re-applies it); a killed sandbox leaves none of its rules.
func TestEgressPolicy(t *testing.T) {
	s := &server{harness.Start(t, serverOpts{})}
	f := newFakeHosts(t, 3)
	a, b, c := f.addrs[0].String(), f.addrs[1].String(), f.addrs[2].String()

	open := s.Create(map[string]any{})
	if !s.reaches(t, open.ID, f, 0) || !s.reaches(t, open.ID, f, 1) {
		t.Fatalf("a sandbox without a policy cannot reach the fake hosts; nothing below would mean anything")
	}
	s.Kill(open.ID)

	only := s.Create(map[string]any{"network": map[string]any{"deny_out": []string{"0.0.0.0/0"}, "allow_out": []string{a}}})
	if got := s.network(t, only.ID); !reflect.DeepEqual(got, networkJSON{AllowOut: []string{a}, DenyOut: []string{"0.0.0.0/0"}}) {
		t.Errorf("GET network = %+v", got)
	}
	if !s.reaches(t, only.ID, f, 0) || s.reaches(t, only.ID, f, 1) {
		t.Errorf("only %s: want %s reached and %s not", a, a, b)
	}

	// Live update: another allowed host and a denied prefix, on new connections.
	var updated sandboxJSON
	code, raw := s.API("PUT", "/v1/sandboxes/"+only.ID+"/network", map[string]any{"allow_out": []string{b + "/32"}, "deny_out": []string{a + "/30"}}, &updated)
	if code != 200 || updated.State != "running" {
		t.Fatalf("PUT network: %d %s", code, raw)
	}
	if s.reaches(t, only.ID, f, 0) || !s.reaches(t, only.ID, f, 1) || !s.reaches(t, only.ID, f, 2) {
		t.Errorf("after the update (allow %s, deny %s/30): want %s dropped, %s and %s reached", b, a, a, b, c)
	}
	// Bad input is refused with the entry named, and changes nothing.
	code, raw = s.API("PUT", "/v1/sandboxes/"+only.ID+"/network", map[string]any{"allow_out": []string{"198.19.0.0/33"}}, nil)
	if code != 400 || !strings.Contains(string(raw), "network.allow_out[0]") {
		t.Errorf("bad entry: %d %s", code, raw)
	}

	// Internet off: the allow entries still pass (E2B's rule), nothing else does.
	off := s.Create(map[string]any{"internet": false, "network": map[string]any{"allow_out": []string{c}}})
	if !s.reaches(t, off.ID, f, 2) || s.reaches(t, off.ID, f, 0) {
		t.Errorf("internet off, allow %s: want %s reached and %s not", c, c, a)
	}

	// A restart without cleanup: the sandboxes run on, the table is rebuilt empty, and
	// recovery re-applies each policy.
	s.Crash()
	s.Start(nil)
	// Stored normalised: the prefix masked.
	wantNet := networkJSON{AllowOut: []string{b + "/32"}, DenyOut: []string{netip.PrefixFrom(f.addrs[0], 30).Masked().String()}}
	if got := s.network(t, only.ID); !reflect.DeepEqual(got, wantNet) {
		t.Errorf("GET network after the restart = %+v", got)
	}
	if s.reaches(t, only.ID, f, 0) || !s.reaches(t, only.ID, f, 1) {
		t.Errorf("after the restart: want %s dropped and %s reached", a, b)
	}
	if !s.reaches(t, off.ID, f, 2) || s.reaches(t, off.ID, f, 1) {
		t.Errorf("internet off after the restart: want %s reached and %s not", c, b)
	}

	s.Kill(only.ID)
	s.Kill(off.ID)
	out, err := exec.Command("nft", "list", "table", "inet", s.Net).CombinedOutput()
	if err != nil {
		t.Fatalf("listing the node's table: %v %s", err, out)
	}
	if m := regexp.MustCompile(`(jump p|set pa|set pd|chain p)[0-9]+`).FindString(string(out)); m != "" {
		t.Errorf("%q left in the node's table after the sandboxes were killed:\n%s", m, out)
	}
}

// TestEgressPolicyLifecycle: a paused sandbox's update is stored and in force after its
// resume; a fork and a sandbox started from a named snapshot keep the policy; a warm
// pool member claimed by a create with a policy gets it before it is handed out.
func TestEgressPolicyLifecycle(t *testing.T) {
	s := &server{harness.Start(t, serverOpts{ExtraEnv: []string{"WARREN_WARM_POOL=base=1"}})}
	f := newFakeHosts(t, 2)
	a, b := f.addrs[0].String(), f.addrs[1].String()
	onlyA := map[string]any{"deny_out": []string{"0.0.0.0/0"}, "allow_out": []string{a}}
	onlyB := map[string]any{"deny_out": []string{"0.0.0.0/0"}, "allow_out": []string{b}}

	// The pool's member takes the claim's policy.
	s.waitPoolReady(t, 1)
	members := s.sandboxDirs()
	claimed := s.Create(map[string]any{"network": onlyA})
	if !slices.Contains(members, claimed.ID) {
		t.Errorf("the create with a policy did not take the pool member (%v): the test checks a cold start only", members)
	}
	if !s.reaches(t, claimed.ID, f, 0) || s.reaches(t, claimed.ID, f, 1) {
		t.Errorf("claimed pool member with only %s: want %s reached and %s not", a, a, b)
	}

	// Paused: the update is stored; the resume applies it.
	var got sandboxJSON
	if code, raw := s.API("POST", "/v1/sandboxes/"+claimed.ID+"/pause", nil, &got); code != 200 || got.State != "paused" {
		t.Fatalf("pause: %d %s", code, raw)
	}
	if code, raw := s.API("PUT", "/v1/sandboxes/"+claimed.ID+"/network", onlyB, &got); code != 200 || got.State != "paused" {
		t.Fatalf("PUT network of a paused sandbox: %d %s", code, raw)
	}
	if code, raw := s.API("POST", "/v1/sandboxes/"+claimed.ID+"/resume", nil, &got); code != 200 || got.State != "running" {
		t.Fatalf("resume: %d %s", code, raw)
	}
	if s.reaches(t, claimed.ID, f, 0) || !s.reaches(t, claimed.ID, f, 1) {
		t.Errorf("after the resume with only %s: want %s reached and %s not", b, b, a)
	}

	// A fork keeps its parent's policy.
	var forked struct {
		Sandboxes []sandboxJSON `json:"sandboxes"`
	}
	if code, raw := s.API("POST", "/v1/sandboxes/"+claimed.ID+"/fork", map[string]any{"count": 1}, &forked); code != 201 || len(forked.Sandboxes) != 1 {
		t.Fatalf("fork: %d %s", code, raw)
	}
	child := forked.Sandboxes[0]
	if got := s.network(t, child.ID); !reflect.DeepEqual(got, networkJSON{AllowOut: []string{b}, DenyOut: []string{"0.0.0.0/0"}}) {
		t.Errorf("fork's network = %+v, want its parent's", got)
	}
	if s.reaches(t, child.ID, f, 0) || !s.reaches(t, child.ID, f, 1) {
		t.Errorf("fork: want %s reached and %s not", b, a)
	}
	s.Kill(child.ID)

	// A named snapshot keeps it too; a create from it may replace it.
	var snap struct {
		ID string `json:"id"`
	}
	if code, raw := s.API("POST", "/v1/sandboxes/"+claimed.ID+"/snapshots", map[string]any{"name": "egress-snap"}, &snap); code != 201 {
		t.Fatalf("snapshot: %d %s", code, raw)
	}
	fromSnap := s.Create(map[string]any{"snapshot": snap.ID})
	if got := s.network(t, fromSnap.ID); !reflect.DeepEqual(got, networkJSON{AllowOut: []string{b}, DenyOut: []string{"0.0.0.0/0"}}) {
		t.Errorf("sandbox from the snapshot: network %+v, want the snapshot's", got)
	}
	replaced := s.Create(map[string]any{"snapshot": snap.ID, "network": onlyA})
	if s.reaches(t, replaced.ID, f, 1) || !s.reaches(t, replaced.ID, f, 0) {
		t.Errorf("sandbox from the snapshot with its own policy: want %s reached and %s not", a, b)
	}
	for _, id := range []string{fromSnap.ID, replaced.ID, claimed.ID} {
		s.Kill(id)
	}
	if code, raw := s.API("DELETE", "/v1/snapshots/"+snap.ID, nil, nil); code != 204 {
		t.Errorf("deleting the snapshot: %d %s", code, raw)
	}
}
