package sandbox

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/agentclient"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// These tests drive the warm pools on the lifecycle fakes (lifecycle_test.go): members
// are started by the fake node, claimed by creates, refilled, and removed at Close.

var admin = domain.Principal{TeamID: teamID, Admin: true, Scopes: []domain.Scope{domain.ScopeAdmin}}

// poolWorld is a world whose service has warm pools of sizes, started; agents record
// their /init calls (with the token they were dialled with) and answer initErr.
type poolWorld struct {
	*world
	pool    *Pool
	initErr error
	gone    map[string]bool // sandboxes whose driver says they stopped (under w.mu)
}

func newPoolWorld(t *testing.T, sizes ...PoolSize) *poolWorld {
	t.Helper()
	return newPoolWorldWith(t, nil, sizes...)
}

// newPoolWorldWith is newPoolWorld with rec as the service's Recorder, set before the
// pool starts (nil: none).
func newPoolWorldWith(t *testing.T, rec Recorder, sizes ...PoolSize) *poolWorld {
	t.Helper()
	pw := &poolWorld{world: newWorld(t), gone: map[string]bool{}}
	if rec != nil {
		pw.svc.cfg.Recorder = rec
	}
	w := pw.world
	drv := gvisorFake
	drv.status = func(_ context.Context, h runtime.Handle) (runtime.Status, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if pw.gone[h.ID] {
			return runtime.StatusStopped, nil
		}
		return runtime.StatusRunning, nil
	}
	w.node.drivers = []runtime.Driver{drv}
	w.svc.cfg.dial = func(address, token string) *agent {
		return &agent{conn: &fakeAgent{
			waitReady:     func(context.Context) error { return w.agentReady },
			waitPortReady: func(_ context.Context, port int) error { w.record(fmt.Sprintf("agent.port %d", port)); return nil },
			init: func(_ context.Context, r agentclient.Identity) error {
				keys := slices.Sorted(maps.Keys(r.EnvVars))
				w.record(fmt.Sprintf("agent.init %s old=%s new=%s env=%s", address, token, r.AccessToken, strings.Join(keys, ",")))
				return pw.initErr
			},
			closed: func() { w.record("agent.close " + address) },
		}}
	}
	p, err := NewPool(w.svc, PoolConfig{Sizes: sizes, Retry: 20 * time.Millisecond, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pw.pool = p
	p.Start()
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Errorf("closing the pool: %v", err)
		}
	})
	return pw
}

// stats returns the pool stats of template id.
func (pw *poolWorld) stats(id string) domain.PoolStats {
	pw.t.Helper()
	all, err := pw.pool.Pools(context.Background(), admin)
	if err != nil {
		pw.t.Fatal(err)
	}
	for _, st := range all {
		if st.TemplateID == id {
			return st
		}
	}
	pw.t.Fatalf("no pool for %s in %+v", id, all)
	return domain.PoolStats{}
}

// waitReady waits until template id's pool holds n ready members.
func (pw *poolWorld) waitReady(id string, n int) {
	pw.t.Helper()
	waitFor(pw.t, fmt.Sprintf("%d ready %s members", n, id), func() bool { return pw.stats(id).Ready == n })
}

// members returns the ids of the ready members of template id.
func (pw *poolWorld) members(id string) []string {
	pw.pool.mu.Lock()
	defer pw.pool.mu.Unlock()
	var out []string
	for _, m := range pw.pool.ready[id] {
		out = append(out, m.sb.ID)
	}
	return out
}

func TestParsePoolSizes(t *testing.T) {
	known := []string{"base", "code-interpreter"}
	for _, tc := range []struct {
		in   string
		want []PoolSize
		err  string
	}{
		{in: "", want: nil},
		{in: "base=4,code-interpreter=2", want: []PoolSize{{"base", 4}, {"code-interpreter", 2}}},
		{in: " base = 1 , code-interpreter=0", want: []PoolSize{{"base", 1}}},
		{in: "nope=1", err: `template "nope" does not exist; templates: base, code-interpreter`},
		{in: "base", err: "write TEMPLATE=SIZE pairs"},
		{in: "=3", err: "write TEMPLATE=SIZE pairs"},
		{in: "base=x", err: "whole number from 0 to 64"},
		{in: "base=-1", err: "whole number from 0 to 64"},
		{in: "base=65", err: "whole number from 0 to 64"},
		{in: "base=1,base=2", err: "named twice"},
	} {
		got, err := ParsePoolSizes(tc.in, known)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// TestPoolRefusesTooBig: pools may not take every address of the node.
func TestPoolRefusesTooBig(t *testing.T) {
	w := newWorld(t)
	if _, err := NewPool(w.svc, PoolConfig{Sizes: []PoolSize{{"base", 8}}}); err == nil || !strings.Contains(err.Error(), "every one of the node's 8 addresses") {
		t.Errorf("pool of 8 on 8 slots: %v", err)
	}
}

// TestPoolClaim: a create that fits takes a ready member (its id, slot and address),
// whose agent takes the request's env and a fresh token under the old one; the row is
// the team's, running; the pool refills.
func TestPoolClaim(t *testing.T) {
	pw := newPoolWorld(t, PoolSize{"base", 2})
	pw.waitReady("base", 2)
	if pw.rowCount() != 0 || pw.svc.Live() != 0 || pw.reservedSlots() != 2 {
		t.Fatalf("members: rows %d, live %d, reserved slots %d; want 0, 0, 2", pw.rowCount(), pw.svc.Live(), pw.reservedSlots())
	}
	first := pw.members("base")[0]
	sb, err := pw.svc.Create(context.Background(), writer, domain.CreateSandbox{
		Env: map[string]string{"A": "1"}, Metadata: map[string]string{"k": "v"}, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if sb.ID != first || sb.State != domain.StateRunning || sb.TeamID != teamID || sb.Metadata["k"] != "v" ||
		time.Until(sb.EndsAt) > time.Minute || time.Until(sb.EndsAt) < 50*time.Second {
		t.Errorf("claimed sandbox %+v; want member %s, running, the team's, ending in a minute", sb, first)
	}
	row := pw.row(sb.ID)
	if row.State != domain.StateRunning || row.AccessToken != sb.AccessToken || row.Env["A"] != "1" || row.Address != sb.Address || row.StartedAt.IsZero() {
		t.Errorf("row %+v", row)
	}
	inits := pw.called("agent.init")
	if len(inits) != 1 || !strings.HasPrefix(inits[0], "agent.init "+sb.Address+" old=") ||
		!strings.HasSuffix(inits[0], " new="+sb.AccessToken+" env=A") || strings.Contains(inits[0], "old="+sb.AccessToken) {
		t.Errorf("agent inits %q; want one with a new token %s and env A under the member's old token", inits, sb.AccessToken)
	}
	if got := pw.called("node.start " + sb.ID); len(got) != 1 {
		t.Errorf("the claimed member was started %d times", len(got))
	}
	if got := pw.called("node.reattach"); len(got) != 0 {
		t.Errorf("internet changed %q for a request that keeps it on", got)
	}
	r, err := pw.svc.Route(context.Background(), sb.ID)
	if err != nil || !r.Running || r.AccessToken != sb.AccessToken {
		t.Errorf("route %+v, %v", r, err)
	}
	pw.waitReady("base", 2)
	if st := pw.stats("base"); st.Claims != 1 || st.Misses != 0 || st.Failures != 0 || st.Size != 2 {
		t.Errorf("stats %+v", st)
	}
	if got := pw.called("node.start"); len(got) != 3 {
		t.Errorf("node starts %q: want the two members and the refill", got)
	}
	// The member's slot is held by the row now, the two ready members' by the pool.
	if pw.reservedSlots() != 2 {
		t.Errorf("reserved slots %d, want 2", pw.reservedSlots())
	}
	if pw.svc.pool.Close(context.Background()) != nil || pw.reservedSlots() != 0 {
		t.Errorf("reserved after close: %d", pw.reservedSlots())
	}
}

// TestPoolInternetOff: a claim that wants no internet turns it off for the member's
// slot before it answers.
func TestPoolInternetOff(t *testing.T) {
	pw := newPoolWorld(t, PoolSize{"base", 1})
	pw.waitReady("base", 1)
	off := false
	sb, err := pw.svc.Create(context.Background(), writer, domain.CreateSandbox{Internet: &off})
	if err != nil {
		t.Fatal(err)
	}
	if got := pw.called("node.reattach"); !slices.Equal(got, []string{fmt.Sprintf("node.reattach %d false", sb.Slot)}) || sb.Internet {
		t.Errorf("internet calls %q, sandbox internet %v", got, sb.Internet)
	}
	if pw.stats("base").Claims != 1 {
		t.Errorf("not a claim: %+v", pw.stats("base"))
	}
}

// TestPoolMiss: requests a member cannot serve start cold and count as misses: other
// limits, env for a template whose start command already runs, an empty pool. A
// template without a pool counts nothing.
func TestPoolMiss(t *testing.T) {
	pw := newPoolWorld(t, PoolSize{"base", 1}, PoolSize{"code-interpreter", 1})
	pw.mu.Lock()
	pw.templates["code-interpreter"] = &domain.Template{ID: "code-interpreter", RootFS: "/templates/ci", Ready: true, StartCmd: "serve"}
	pw.templates["other"] = &domain.Template{ID: "other", RootFS: "/templates/other", Ready: true}
	pw.mu.Unlock()
	pw.team.Quota.MaxSandboxes = 10
	pw.waitReady("base", 1)
	pw.waitReady("code-interpreter", 1)
	member := pw.members("base")[0]

	sb, err := pw.svc.Create(context.Background(), writer, domain.CreateSandbox{Limits: domain.Limits{MemoryMB: 1024}})
	if err != nil || sb.ID == member || len(pw.called("node.start "+sb.ID)) != 1 {
		t.Fatalf("other limits: %+v, %v; want a cold start", sb, err)
	}
	sb, err = pw.svc.Create(context.Background(), writer, domain.CreateSandbox{TemplateID: "code-interpreter", Env: map[string]string{"A": "1"}})
	if err != nil || len(pw.called("node.start "+sb.ID)) != 1 {
		t.Fatalf("env for a start command: %+v, %v; want a cold start", sb, err)
	}
	if _, err := pw.svc.Create(context.Background(), writer, domain.CreateSandbox{TemplateID: "other"}); err != nil {
		t.Fatal(err)
	}
	if st := pw.stats("base"); st.Misses != 1 || st.Claims != 0 || st.Ready != 1 {
		t.Errorf("base stats %+v", st)
	}
	if st := pw.stats("code-interpreter"); st.Misses != 1 || st.Claims != 0 {
		t.Errorf("code-interpreter stats %+v", st)
	}
	// Without env, code-interpreter is served warm (defaults given explicitly fit too).
	sb, err = pw.svc.Create(context.Background(), writer, domain.CreateSandbox{TemplateID: "code-interpreter", Limits: domain.Limits{MemoryMB: 512}})
	if err != nil || pw.stats("code-interpreter").Claims != 1 || len(pw.called("node.start "+sb.ID)) != 1 {
		t.Errorf("code-interpreter claim: %+v, %v, %+v", sb, err, pw.stats("code-interpreter"))
	}
}

// TestPoolEmptyMiss: with the pool empty (its template not built yet) creates start
// cold as before.
func TestPoolEmptyMiss(t *testing.T) {
	pw := newPoolWorld(t, PoolSize{"base", 1})
	pw.mu.Lock()
	pw.templates["base"].Ready = false
	pw.mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	if st := pw.stats("base"); st.Ready != 0 {
		t.Fatalf("a pool of an unbuilt template: %+v", st)
	}
	pw.mu.Lock()
	pw.templates["base"].Ready = true
	pw.mu.Unlock()
	// Nothing ready yet at the moment of the create: cold (the pool may fill meanwhile).
	pw.pool.mu.Lock()
	ready := len(pw.pool.ready["base"])
	pw.pool.mu.Unlock()
	if ready == 0 {
		sb, err := pw.svc.Create(context.Background(), writer, domain.CreateSandbox{})
		if err != nil || len(pw.called("node.start "+sb.ID)) != 1 {
			t.Fatalf("%+v, %v", sb, err)
		}
	}
	pw.waitReady("base", 1)
}

// TestPoolFailedClaim: a member whose agent refuses the identity is removed and the
// sandbox starts cold under the same id; the pool counts a failure.
func TestPoolFailedClaim(t *testing.T) {
	pw := newPoolWorld(t, PoolSize{"base", 1})
	pw.waitReady("base", 1)
	member := pw.members("base")[0]
	pw.initErr = errors.New("agent gone")
	sb, err := pw.svc.Create(context.Background(), writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	if sb.ID != member || sb.State != domain.StateRunning || pw.row(sb.ID).State != domain.StateRunning {
		t.Errorf("fallback sandbox %+v", sb)
	}
	if got := pw.called("node.stop " + member); len(got) != 1 {
		t.Errorf("member stops %q", got)
	}
	if got := pw.called("node.start " + member); len(got) != 2 {
		t.Errorf("starts of %s: %q; want the member's and the cold one", member, got)
	}
	if st := pw.stats("base"); st.Failures != 1 || st.Claims != 0 {
		t.Errorf("stats %+v", st)
	}
	if pw.svc.Live() != 1 {
		t.Errorf("live %d", pw.svc.Live())
	}
}

// TestPoolQuotaRefused: a claim over the team's quota is refused as a cold create
// would be, and the member goes back to the pool untouched.
func TestPoolQuotaRefused(t *testing.T) {
	pw := newPoolWorld(t, PoolSize{"base", 1})
	pw.team.Quota.MaxSandboxes = 0
	pw.team.Quota.MaxMemoryMB = 100 // less than one sandbox's 512
	pw.waitReady("base", 1)
	member := pw.members("base")[0]
	_, err := pw.svc.Create(context.Background(), writer, domain.CreateSandbox{})
	if !domain.IsKind(err, domain.KindQuotaExceeded) {
		t.Fatalf("over quota: %v", err)
	}
	if got := pw.members("base"); !slices.Equal(got, []string{member}) || len(pw.called("agent.init")) != 0 || len(pw.called("node.stop")) != 0 {
		t.Errorf("members %q, inits %q, stops %q; want the member back untouched", got, pw.called("agent.init"), pw.called("node.stop"))
	}
	if pw.rowCount() != 0 || pw.reservedSlots() != 1 {
		t.Errorf("rows %d, reserved %d", pw.rowCount(), pw.reservedSlots())
	}
}

// TestPoolShutdown: Close removes every member from the node and gives back their
// slots; creates afterwards start cold.
func TestPoolShutdown(t *testing.T) {
	pw := newPoolWorld(t, PoolSize{"base", 2})
	pw.waitReady("base", 2)
	ids := pw.members("base")
	if err := pw.pool.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if got := pw.called("node.stop " + id); len(got) != 1 {
			t.Errorf("stops of %s: %q", id, got)
		}
	}
	pw.svc.reg.mu.Lock()
	pooled := len(pw.svc.reg.pooled)
	pw.svc.reg.mu.Unlock()
	if pw.reservedSlots() != 0 || pooled != 0 {
		t.Errorf("after close: reserved %d, pooled %d", pw.reservedSlots(), pooled)
	}
	sb, err := pw.svc.Create(context.Background(), writer, domain.CreateSandbox{})
	if err != nil || slices.Contains(ids, sb.ID) {
		t.Errorf("create after close: %+v, %v", sb, err)
	}
}

// TestPoolSweep: the sweeper leaves members alone (they have no row), and a member
// that stopped on its own is replaced.
func TestPoolSweep(t *testing.T) {
	pw := newPoolWorld(t, PoolSize{"base", 1})
	pw.waitReady("base", 1)
	member := pw.members("base")[0]
	var shielded bool
	pw.node.orphans = func(_ context.Context, live map[string]bool) ([]string, error) {
		shielded = live[member]
		return nil, nil
	}
	if _, err := pw.sweeper.Sweep(context.Background()); err != nil || !shielded {
		t.Errorf("sweep: %v; member shielded: %v", err, shielded)
	}
	if _, err := pw.pool.Pools(context.Background(), writer); !domain.IsKind(err, domain.KindForbidden) {
		t.Errorf("stats for a tenant: %v", err)
	}
	pw.mu.Lock()
	pw.gone[member] = true
	pw.mu.Unlock()
	waitFor(t, "the dead member replaced", func() bool {
		ms := pw.members("base")
		return len(ms) == 1 && ms[0] != member && len(pw.called("node.stop "+member)) == 1
	})
	if st := pw.stats("base"); st.Failures != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestPoolSettles: upkeep waits for a quiet moment after a create before it starts a
// member (the create is about to run its first commands).
func TestPoolSettles(t *testing.T) {
	pw := newPoolWorld(t, PoolSize{"base", 1})
	pw.waitReady("base", 1)
	pw.pool.mu.Lock()
	pw.pool.settle = 300 * time.Millisecond
	pw.pool.mu.Unlock()
	if _, err := pw.svc.Create(context.Background(), writer, domain.CreateSandbox{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got := pw.called("node.start"); len(got) != 1 {
		t.Errorf("node starts %q within 100 ms of a claim; want the refill to wait 300 ms", got)
	}
	pw.waitReady("base", 1)
}

// TestRecoverRefusedToken: a server killed in the middle of a claim leaves a running row
// whose agent still holds the pool's token; the next start reaps it instead of
// re-attaching a sandbox no call could reach.
func TestRecoverRefusedToken(t *testing.T) {
	w := newWorld(t)
	now := time.Now().UTC()
	id := domain.NewID(20)
	w.addRow(&domain.Sandbox{ID: id, TeamID: teamID, TemplateID: "base", State: domain.StateRunning, RuntimeName: "gvisor",
		Slot: 1, Address: "10.0.0.1", AccessToken: "new", CreatedAt: now, StartedAt: now, EndsAt: now.Add(time.Hour),
		RuntimeHandle: []byte(fmt.Sprintf(`{"id":%q,"driver":"gvisor","pid":101}`, id))})
	w.svc.cfg.dial = func(address, token string) *agent {
		return &agent{conn: &fakeAgent{
			waitReady: func(context.Context) error { return nil },
			metrics: func(context.Context) (*domain.SandboxMetrics, error) {
				return nil, fmt.Errorf("%w: agent answered 401", agentclient.ErrTokenRefused)
			},
		}}
	}
	rep, err := w.sweeper.Recover(context.Background())
	if err != nil || rep.Reattached != 0 || rep.Reaped != 1 {
		t.Fatalf("recover %+v, %v; want the sandbox reaped", rep, err)
	}
	if r := w.row(id); r.State != domain.StateStopped || !strings.HasPrefix(r.EndReason, "lost") {
		t.Errorf("row %+v", r)
	}
}

// TestPoolClaimRoundTrips: a claim writes the store once (the quota insert, the row
// already running): no slot query and no update, which a cold create needs.
func TestPoolClaimRoundTrips(t *testing.T) {
	pw := newPoolWorld(t, PoolSize{"base", 1})
	pw.waitReady("base", 1)
	pw.pool.mu.Lock()
	pw.pool.settle = time.Hour // no refill (and its slot query) during the claim
	pw.pool.mu.Unlock()
	var calls []string
	st := pw.store
	used, update, insert := st.usedSlots, st.updateSandbox, st.createSandboxWithinQuota
	st.usedSlots = func(ctx context.Context) ([]int, error) { calls = append(calls, "used"); return used(ctx) }
	st.updateSandbox = func(ctx context.Context, sb *domain.Sandbox) error {
		calls = append(calls, "update")
		return update(ctx, sb)
	}
	st.createSandboxWithinQuota = func(ctx context.Context, sb *domain.Sandbox, q domain.Quota) error {
		calls = append(calls, "insert "+string(sb.State))
		return insert(ctx, sb, q)
	}
	if _, err := pw.svc.Create(context.Background(), writer, domain.CreateSandbox{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(calls, []string{"insert running"}) || pw.stats("base").Claims != 1 {
		t.Errorf("store writes of a claim: %q; want only the insert of a running row", calls)
	}
}

// TestPoolNetworkPolicy: a claim with an egress policy gives it to the member's slot
// before it answers (members run with no policy), and the row holds it.
func TestPoolNetworkPolicy(t *testing.T) {
	pw := newPoolWorld(t, PoolSize{"base", 1})
	pw.waitReady("base", 1)
	sb, err := pw.svc.Create(context.Background(), writer, domain.CreateSandbox{Network: &onlyThese})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("node.reattach %d true allow=%v deny=%v", sb.Slot, onlyThese.AllowOut, onlyThese.DenyOut)
	if got := pw.called("node.reattach"); !slices.Equal(got, []string{want}) {
		t.Errorf("reattach calls %q, want %q", got, want)
	}
	if pw.stats("base").Claims != 1 || !reflect.DeepEqual(pw.row(sb.ID).Network, onlyThese) {
		t.Errorf("claims %+v, stored network %+v", pw.stats("base"), pw.row(sb.ID).Network)
	}
}
