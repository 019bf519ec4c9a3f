package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/agentclient"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// These tests drive the lifecycle (create, expiry, kill, recovery, the sweeper) on
// fakes: a store of rows in memory, a node that records what it is asked, and agents
// that answer at once. They need no root and no runtime.

const teamID = "team_a"

var (
	writer = domain.Principal{TeamID: teamID, Scopes: []domain.Scope{domain.ScopeSandboxesRead, domain.ScopeSandboxesWrite}}
	reader = domain.Principal{TeamID: teamID, Scopes: []domain.Scope{domain.ScopeSandboxesRead}}
)

// world is a Service on fakes, with what they saw.
type world struct {
	t       *testing.T
	svc     *Service
	sweeper *Sweeper
	store   *fakeStore
	node    *fakeNode
	meter   *fakeMeter
	// agentReady is what every new agent's WaitReady answers.
	agentReady error

	mu        sync.Mutex
	team      *domain.Team
	templates map[string]*domain.Template
	rows      map[string]*domain.Sandbox
	snaps     map[string]*domain.Snapshot
	calls     []string // what the node, the meter and the agents were asked, in order
}

// newWorld returns a Service whose store holds team_a (quota: 3 sandboxes) and a ready
// base template, on a node of 8 slots running "gvisor" sandboxes whose driver says they
// run. Changes to the fakes' fields before the first call take effect.
func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{
		t:         t,
		team:      &domain.Team{ID: teamID, Name: "a", Quota: domain.Quota{MaxSandboxes: 3}},
		templates: map[string]*domain.Template{"base": {ID: "base", RootFS: "/templates/base", Ready: true}},
		rows:      map[string]*domain.Sandbox{},
		snaps:     map[string]*domain.Snapshot{},
	}
	w.store = w.memStore()
	w.node = w.recordingNode()
	w.meter = &fakeMeter{
		begin: func(_ context.Context, sb *domain.Sandbox) error { w.record("meter.begin " + sb.ID); return nil },
		end: func(_ context.Context, sb *domain.Sandbox, _ time.Time) error {
			w.record("meter.end " + sb.ID)
			return nil
		},
	}
	svc, err := New(Config{
		Store: w.store, Node: w.node, Meter: w.meter,
		DefaultLimits: domain.Limits{CPUCores: 1, MemoryMB: 512, DiskMB: 1024, MaxProcesses: 256},
		MaxLimits:     domain.Limits{CPUCores: 2, MemoryMB: 4096, DiskMB: 8192, MaxProcesses: 4096},
		StartTimeout:  5 * time.Second,
		SnapshotDir:   t.TempDir(),
		// The fake handles' PIDs are no processes of the test's: they all run.
		running: func(int) bool { return true },
		dial: func(address, token string) *agent {
			return &agent{conn: &fakeAgent{
				waitReady:     func(context.Context) error { return w.agentReady },
				waitPortReady: func(_ context.Context, port int) error { w.record(fmt.Sprintf("agent.port %d", port)); return nil },
				init: func(_ context.Context, id agentclient.Identity) error {
					w.record(fmt.Sprintf("agent.init %s token=%s new=%s hostname=%s env=%v", address, token, id.AccessToken, id.Hostname, id.EnvVars))
					return nil
				},
				closed: func() { w.record("agent.close " + address) },
			}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.svc, w.sweeper = svc, NewSweeper(svc)
	t.Cleanup(svc.Close)
	return w
}

func (w *world) record(call string) {
	w.mu.Lock()
	w.calls = append(w.calls, call)
	w.mu.Unlock()
}

// called returns the calls recorded so far that start with prefix.
func (w *world) called(prefix string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, c := range w.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// memStore keeps the world's rows; it refuses over-quota creates as the real stores do.
func (w *world) memStore() *fakeStore {
	cp := func(sb *domain.Sandbox) *domain.Sandbox { c := *sb; return &c }
	return &fakeStore{
		getTeam: func(_ context.Context, id string) (*domain.Team, error) {
			if id != w.team.ID {
				return nil, domain.NotFound("team", id)
			}
			c := *w.team
			return &c, nil
		},
		getTemplate: func(_ context.Context, id string) (*domain.Template, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			tpl, ok := w.templates[id]
			if !ok {
				return nil, domain.NotFound("template", id)
			}
			c := *tpl
			return &c, nil
		},
		listTemplates: func(context.Context) ([]*domain.Template, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			var out []*domain.Template
			for _, tpl := range w.templates {
				c := *tpl
				out = append(out, &c)
			}
			return out, nil
		},
		createSandboxWithinQuota: func(_ context.Context, sb *domain.Sandbox, q domain.Quota) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			if err := domain.CheckSandboxQuota(q, w.usageLocked(sb.TeamID), sb.Limits); err != nil {
				return err
			}
			w.rows[sb.ID] = cp(sb)
			return nil
		},
		resumeSandboxWithinQuota: func(_ context.Context, sb *domain.Sandbox, q domain.Quota) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			if _, ok := w.rows[sb.ID]; !ok {
				return domain.NotFound("sandbox", sb.ID)
			}
			if err := domain.CheckSandboxQuota(q, w.usageLocked(sb.TeamID), sb.Limits); err != nil {
				return err
			}
			w.rows[sb.ID] = cp(sb)
			return nil
		},
		getSandbox: func(_ context.Context, team, id string) (*domain.Sandbox, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if team == "" {
				return nil, domain.Invalid("team_id", "no team given") // as the real stores
			}
			r, ok := w.rows[id]
			if !ok || team != domain.AnyTeam && r.TeamID != team {
				return nil, domain.NotFound("sandbox", id)
			}
			return cp(r), nil
		},
		updateSandbox: func(_ context.Context, sb *domain.Sandbox) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			old, ok := w.rows[sb.ID]
			if !ok {
				return domain.NotFound("sandbox", sb.ID)
			}
			if old.State.Terminal() && !sb.State.Terminal() { // as the real stores
				return domain.Errorf(domain.KindConflict, "sandbox %q has ended", sb.ID)
			}
			c := cp(sb)
			c.Network = old.Network // as the real stores: only SetSandboxNetwork writes it
			c.Node = old.Node       // fixed at creation
			w.rows[sb.ID] = c
			return nil
		},
		setSandboxNetwork: func(_ context.Context, team, id string, p domain.NetworkPolicy) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			r, ok := w.rows[id]
			if !ok || team != domain.AnyTeam && r.TeamID != team {
				return domain.NotFound("sandbox", id)
			}
			r.Network = p
			return nil
		},
		listSandboxes: func(_ context.Context, f domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
			if f.TeamID == "" {
				return nil, "", domain.Invalid("team_id", "no team given") // as the real stores
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			var out []*domain.Sandbox
			for _, r := range w.rows {
				if (f.TeamID == domain.AnyTeam || r.TeamID == f.TeamID) && (len(f.States) == 0 || slices.Contains(f.States, r.State)) &&
					(len(f.Nodes) == 0 || slices.Contains(f.Nodes, r.Node)) {
					out = append(out, cp(r))
				}
			}
			return out, "", nil
		},
		teamUsage: func(_ context.Context, team string) (domain.QuotaUsage, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			var used domain.QuotaUsage
			for _, r := range w.rows {
				if r.TeamID == team && !r.State.Terminal() {
					used.Sandboxes++
					used.CPUCores += r.Limits.CPUCores
					used.MemoryMB += r.Limits.MemoryMB
					used.DiskMB += r.Limits.DiskMB
				}
			}
			for _, sn := range w.snaps {
				if sn.TeamID == team {
					used.Snapshots++
				}
			}
			return used, nil
		},
		createSnapshot: func(_ context.Context, sn *domain.Snapshot, max int64) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			used := int64(0)
			for _, o := range w.snaps {
				if o.TeamID == sn.TeamID {
					used++
					if sn.Name != "" && o.Name == sn.Name {
						return domain.Errorf(domain.KindConflict, "the team already has a snapshot named %q", sn.Name)
					}
				}
			}
			if err := domain.CheckSnapshotQuota(max, used); err != nil {
				return err
			}
			c := *sn
			w.snaps[sn.ID] = &c
			return nil
		},
		getSnapshot: func(_ context.Context, team, ref string) (*domain.Snapshot, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			for _, sn := range w.snaps {
				if (team == domain.AnyTeam || sn.TeamID == team) && (sn.ID == ref || sn.Name != "" && sn.Name == ref && team != domain.AnyTeam) {
					c := *sn
					return &c, nil
				}
			}
			return nil, domain.NotFound("snapshot", ref)
		},
		listSnapshots: func(_ context.Context, f domain.SnapshotFilter) ([]*domain.Snapshot, string, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			var out []*domain.Snapshot
			for _, sn := range w.snaps {
				if (f.TeamID == domain.AnyTeam || sn.TeamID == f.TeamID) && (f.SandboxID == "" || sn.SandboxID == f.SandboxID) {
					c := *sn
					out = append(out, &c)
				}
			}
			return out, "", nil
		},
		deleteSnapshot: func(_ context.Context, team, id string) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			sn, ok := w.snaps[id]
			if !ok || sn.TeamID != team {
				return domain.NotFound("snapshot", id)
			}
			delete(w.snaps, id)
			return nil
		},
		usedSlots: func(context.Context) ([]int, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			var out []int
			for _, r := range w.rows {
				if r.State.Live() {
					out = append(out, r.Slot)
				}
			}
			return out, nil
		},
	}
}

// usageLocked sums the team's live sandboxes, as the real stores do. Preconditions:
// w.mu held.
func (w *world) usageLocked(team string) domain.QuotaUsage {
	var used domain.QuotaUsage
	for _, r := range w.rows {
		if r.TeamID == team && r.State.Live() {
			used.Sandboxes++
			used.CPUCores += r.Limits.CPUCores
			used.MemoryMB += r.Limits.MemoryMB
			used.DiskMB += r.Limits.DiskMB
		}
	}
	return used
}

// recordingNode starts every sandbox at 10.0.0.<slot> and records every call.
func (w *world) recordingNode() *fakeNode {
	drv := checkpointDriver{gvisorFake}
	drv.status = func(context.Context, runtime.Handle) (runtime.Status, error) { return runtime.StatusRunning, nil }
	return &fakeNode{
		drivers: []runtime.Driver{drv},
		pause: func(_ context.Context, sb *domain.Sandbox) error {
			w.record(fmt.Sprintf("node.pause %s %d", sb.ID, sb.Slot))
			return nil
		},
		resume: func(_ context.Context, sb *domain.Sandbox, tpl *domain.Template) (runtime.Handle, string, error) {
			w.record(fmt.Sprintf("node.resume %s %d", sb.ID, sb.Slot))
			return runtime.Handle{ID: sb.ID, Driver: sb.RuntimeName, PID: 200 + sb.Slot}, fmt.Sprintf("10.0.0.%d", sb.Slot), nil
		},
		release: func(_ context.Context, id string, slot int, h *runtime.Handle) error {
			w.record(fmt.Sprintf("node.release %s %d %s", id, slot, handleID(h)))
			return nil
		},
		slots: 8,
		start: func(_ context.Context, sb *domain.Sandbox, tpl *domain.Template) (runtime.Handle, string, error) {
			w.record("node.start " + sb.ID + " " + tpl.RootFS)
			return runtime.Handle{ID: sb.ID, Driver: sb.RuntimeName, PID: 100 + sb.Slot}, fmt.Sprintf("10.0.0.%d", sb.Slot), nil
		},
		halt: func(_ context.Context, id string, _ int, h *runtime.Handle) error {
			w.record("node.halt " + id + " " + handleID(h))
			return nil
		},
		stop: func(_ context.Context, id string, _ int, h *runtime.Handle) error {
			w.record("node.stop " + id + " " + handleID(h))
			return nil
		},
		reattach: func(_ context.Context, sb *domain.Sandbox) error {
			line := fmt.Sprintf("node.reattach %d %v", sb.Slot, sb.Internet)
			if !sb.Network.IsZero() {
				line += fmt.Sprintf(" allow=%v deny=%v", sb.Network.AllowOut, sb.Network.DenyOut)
			}
			w.record(line)
			return nil
		},
		orphans: func(context.Context, map[string]bool) ([]string, error) { return nil, nil },
		snapshot: func(_ context.Context, sb *domain.Sandbox, dst string) error {
			w.record("node.snapshot " + sb.ID + " " + filepath.Base(dst))
			if err := os.MkdirAll(filepath.Join(dst, "upper"), 0o700); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dst, "image"), []byte("pages"), 0o600)
		},
		startFrom: func(_ context.Context, sb *domain.Sandbox, tpl *domain.Template, src string) (runtime.Handle, string, error) {
			if _, err := os.Stat(filepath.Join(src, "image")); err != nil {
				return runtime.Handle{}, "", err
			}
			w.record("node.startfrom " + sb.ID + " " + filepath.Base(src) + " " + tpl.RootFS)
			return runtime.Handle{ID: sb.ID, Driver: sb.RuntimeName, PID: 100 + sb.Slot}, fmt.Sprintf("10.0.0.%d", sb.Slot), nil
		},
		stopOrphan: func(_ context.Context, id string) error {
			w.record("node.stoporphan " + id)
			return nil
		},
	}
}

func handleID(h *runtime.Handle) string {
	if h == nil {
		return "<nil>"
	}
	return h.ID
}

// row returns the stored row of id.
func (w *world) row(id string) *domain.Sandbox {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.rows[id]
	if !ok {
		w.t.Fatalf("no row for sandbox %s", id)
	}
	c := *r
	return &c
}

// addRow stores a row as a previous server would have left it.
func (w *world) addRow(sb *domain.Sandbox) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := *sb
	w.rows[sb.ID] = &c
}

// rowCount returns the number of rows stored.
func (w *world) rowCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.rows)
}

// reservedSlots returns the address slots the service holds for starts and teardowns.
func (w *world) reservedSlots() int {
	w.svc.reg.mu.Lock()
	defer w.svc.reg.mu.Unlock()
	return len(w.svc.reg.reserved)
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCreate(t *testing.T) {
	w := newWorld(t)
	sb, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{Metadata: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if sb.State != domain.StateRunning || sb.TemplateID != "base" || sb.RuntimeName != "gvisor" || sb.Address == "" ||
		sb.Limits.MemoryMB != 512 || sb.AccessToken == "" || sb.StartedAt.IsZero() || time.Until(sb.EndsAt) < 4*time.Minute {
		t.Errorf("created sandbox: %+v", sb)
	}
	row := w.row(sb.ID)
	if row.State != domain.StateRunning || row.Address != sb.Address || len(row.RuntimeHandle) == 0 {
		t.Errorf("stored row: state %s address %q handle %s", row.State, row.Address, row.RuntimeHandle)
	}
	if got := w.called("node.start"); len(got) != 1 || got[0] != "node.start "+sb.ID+" /templates/base" {
		t.Errorf("node starts: %q", got)
	}
	if got := w.called("meter.begin"); len(got) != 1 {
		t.Errorf("meter: %q, want it begun once", got)
	}
	if w.svc.Live() != 1 || w.reservedSlots() != 0 {
		t.Errorf("live %d, reserved slots %d; want 1 and 0", w.svc.Live(), w.reservedSlots())
	}
	r, err := w.svc.Route(context.Background(), sb.ID)
	if err != nil || !r.Running || r.Address != sb.Address || r.AccessToken != sb.AccessToken {
		t.Errorf("route: %+v, %v", r, err)
	}

	// A second sandbox gets another address slot.
	sb2, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{})
	if err != nil || sb2.Slot == sb.Slot {
		t.Fatalf("second sandbox: %+v, %v; want a slot other than %d", sb2, err, sb.Slot)
	}
}

// TestCreateTeamTemplate: the template is looked up as the caller's team sees it, and
// a built template's env is its sandboxes' default, under the request's.
func TestCreateTeamTemplate(t *testing.T) {
	w := newWorld(t)
	w.templates["app"] = &domain.Template{ID: "app", TeamID: teamID, RootFS: "/layers/app", Ready: true,
		Env: map[string]string{"A": "template", "B": "template"}}
	sb, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{TemplateID: "app", Env: map[string]string{"B": "request"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := w.store.templateTeams.Load("app"); got != teamID {
		t.Errorf("the template was looked up for team %v, want the caller's %s", got, teamID)
	}
	if row := w.row(sb.ID); row.Env["A"] != "template" || row.Env["B"] != "request" {
		t.Errorf("sandbox env %v", row.Env)
	}
	if w.templates["app"].Env["B"] != "template" {
		t.Error("the request's env was written into the template")
	}
}

// TestCreateWaitsForTemplateServer: a template with a ready port is handed out only
// once its server answers, and its private ports are routed as private.
func TestCreateWaitsForTemplateServer(t *testing.T) {
	w := newWorld(t)
	w.templates["code-interpreter"] = &domain.Template{ID: "code-interpreter", RootFS: "/templates/ci", Ready: true,
		ReadyPort: 49999, PrivatePorts: []int{49999}}
	sb, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{TemplateID: "code-interpreter"})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.called("agent.port"); !slices.Equal(got, []string{"agent.port 49999"}) {
		t.Errorf("ready-port waits: %q", got)
	}
	// The template's private ports reach the proxy with the route.
	if r, err := w.svc.Route(context.Background(), sb.ID); err != nil || !slices.Equal(r.PrivatePorts, []int{49999}) {
		t.Errorf("route: %+v, %v; want private port 49999", r, err)
	}
}

// TestCreateRefused: requests that cannot be served are refused with their kind, and
// leave no row, no node start and no reserved slot behind.
func TestCreateRefused(t *testing.T) {
	cases := []struct {
		name  string
		p     domain.Principal
		req   domain.CreateSandbox
		setup func(w *world)
		kind  domain.Kind
		field string // of a KindInvalid error
		msg   string
	}{
		{name: "no write scope", p: reader, kind: domain.KindForbidden, msg: "sandboxes:write"},
		{name: "template missing", p: writer, req: domain.CreateSandbox{TemplateID: "nope"},
			kind: domain.KindInvalid, field: "template", msg: `template "nope" does not exist`},
		{name: "template being built", p: writer, req: domain.CreateSandbox{TemplateID: "slow"},
			setup: func(w *world) { w.templates["slow"] = &domain.Template{ID: "slow"} },
			kind:  domain.KindUnavailable, msg: "still being built"},
		{name: "limits over the node's maximum", p: writer, req: domain.CreateSandbox{Limits: domain.Limits{CPUCores: 4}},
			kind: domain.KindInvalid, field: "limits.cpu_cores", msg: "exceeds this node's maximum of 2"},
		{name: "limits negative", p: writer, req: domain.CreateSandbox{Limits: domain.Limits{MemoryMB: -1}},
			kind: domain.KindInvalid, field: "limits", msg: "must not be negative"},
		{name: "timeout too long", p: writer, req: domain.CreateSandbox{Timeout: 48 * time.Hour},
			kind: domain.KindInvalid, field: "timeout", msg: "exceeds the maximum"},
		{name: "bad env", p: writer, req: domain.CreateSandbox{Env: map[string]string{"A=B": "x"}},
			kind: domain.KindInvalid, field: "env", msg: "contains '='"},
		{name: "unknown runtime", p: writer, req: domain.CreateSandbox{Runtime: "firecracker"},
			kind: domain.KindInvalid, field: "runtime", msg: "not enabled"},
		{name: "runtime the team may not use", p: writer, req: domain.CreateSandbox{Runtime: "gvisor"},
			setup: func(w *world) { w.team.AllowedRuntimes = []string{"runc"} },
			kind:  domain.KindForbidden, msg: "may not use runtime gvisor"},
		{name: "spending limit", p: writer,
			setup: func(w *world) {
				w.svc.cfg.Admit = func(context.Context, *domain.Team) (domain.Quota, error) {
					return domain.Quota{}, &domain.Error{Kind: domain.KindQuotaExceeded, Message: "spending limit reached",
						Err: &domain.QuotaError{Quota: "spending_limit"}}
				}
			},
			kind: domain.KindQuotaExceeded, msg: "spending limit reached"},
		{name: "node full", p: writer, req: domain.CreateSandbox{Limits: domain.Limits{MemoryMB: 1024}},
			setup: func(w *world) {
				w.svc.cfg.Room = func(_ context.Context, l domain.Limits) error {
					if l.MemoryMB != 1024 {
						t.Errorf("Room asked about %d MB, want the sandbox's 1024", l.MemoryMB)
					}
					return domain.NodeFull("memory", l.MemoryMB+512, 100, 30*time.Second)
				}
			},
			kind: domain.KindUnavailable, msg: "no room for the sandbox"},
		{name: "no free address", p: writer,
			setup: func(w *world) { w.node.slots = 0 },
			kind:  domain.KindUnavailable, msg: "no free sandbox addresses"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			if c.setup != nil {
				c.setup(w)
			}
			sb, err := w.svc.Create(context.Background(), c.p, c.req)
			if sb != nil || !domain.IsKind(err, c.kind) || !strings.Contains(err.Error(), c.msg) ||
				c.field != "" && domain.FieldOf(err) != c.field {
				t.Fatalf("Create = %v, %v (field %q); want %s error on %q mentioning %q", sb, err, domain.FieldOf(err), c.kind, c.field, c.msg)
			}
			if n := w.rowCount(); n != 0 {
				t.Errorf("%d rows written", n)
			}
			if got := w.called("node."); len(got) != 0 {
				t.Errorf("node was asked %q", got)
			}
			if n := w.reservedSlots(); n != 0 {
				t.Errorf("%d address slots still reserved", n)
			}
		})
	}
}

// TestCreateQuota: the store's refusal reaches the caller as the store made it:
// KindQuotaExceeded with the quota, its limit and the use. The quota held to is the
// team's, or what Admit returns.
func TestCreateQuota(t *testing.T) {
	w := newWorld(t)
	for i := 0; i < 3; i++ {
		if _, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{}); err != nil {
			t.Fatalf("sandbox %d of 3: %v", i+1, err)
		}
	}
	_, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{})
	var qe *domain.QuotaError
	if !domain.IsKind(err, domain.KindQuotaExceeded) || !errors.As(err, &qe) || qe.Quota != "max_sandboxes" || qe.Limit != 3 || qe.Used != 3 {
		t.Fatalf("fourth sandbox: %v (%+v), want max_sandboxes exceeded, limit 3, used 3", err, qe)
	}
	if got := w.called("node.start"); len(got) != 3 {
		t.Errorf("node starts: %d, want 3", len(got))
	}
	if n := w.reservedSlots(); n != 0 {
		t.Errorf("%d address slots still reserved after the refusal", n)
	}

	// Admit's quota (the plan's) replaces the team's.
	w = newWorld(t)
	w.svc.cfg.Admit = func(context.Context, *domain.Team) (domain.Quota, error) { return domain.Quota{MaxMemoryMB: 600}, nil }
	if _, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{}); !errors.As(err, &qe) || qe.Quota != "max_memory_mb" {
		t.Fatalf("over Admit's memory quota: %v", err)
	}
}

// TestCreateNodeFailure: a sandbox the node cannot start is marked error, and the caller
// is told it could not be started; the cause (runsc's stderr) is for the operator log
// only.
func TestCreateNodeFailure(t *testing.T) {
	w := newWorld(t)
	w.node.start = func(context.Context, *domain.Sandbox, *domain.Template) (runtime.Handle, string, error) {
		return runtime.Handle{}, "", errors.New("runsc: exec format error")
	}
	sb, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{})
	if sb != nil || !domain.IsKind(err, domain.KindUnavailable) || strings.Contains(err.Error(), "exec format error") ||
		!strings.Contains(err.Error(), "could not be started") || !strings.Contains(err.Error(), "warren doctor") {
		t.Fatalf("Create = %v, %v; want unavailable saying so and naming warren doctor, without the cause", sb, err)
	}
	w.mu.Lock()
	var row *domain.Sandbox
	for _, r := range w.rows {
		row = r
	}
	w.mu.Unlock()
	if row == nil || row.State != domain.StateError || row.EndReason != "error: the sandbox could not be started" || row.StoppedAt.IsZero() {
		t.Fatalf("row after the failed start: %+v", row)
	}
	if w.svc.Live() != 0 || w.reservedSlots() != 0 || len(w.called("meter.")) != 0 {
		t.Errorf("live %d, reserved %d, meter %q: want nothing", w.svc.Live(), w.reservedSlots(), w.called("meter."))
	}
}

// TestCreateAgentNeverReady: a sandbox whose agent does not answer is stopped on the
// node, closed and marked error.
func TestCreateAgentNeverReady(t *testing.T) {
	w := newWorld(t)
	w.agentReady = errors.New("connection refused")
	_, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{})
	if !domain.IsKind(err, domain.KindUnavailable) || !strings.Contains(err.Error(), "could not be started") {
		t.Fatalf("Create: %v", err)
	}
	starts := w.called("node.start")
	if len(starts) != 1 {
		t.Fatalf("node starts: %q", starts)
	}
	id := strings.Fields(starts[0])[1]
	if got := w.called("node.stop"); !slices.Equal(got, []string{"node.stop " + id + " " + id}) {
		t.Errorf("node stops: %q, want the started sandbox stopped with its handle", got)
	}
	if len(w.called("agent.close")) != 1 {
		t.Errorf("the agent connection was not closed")
	}
	if row := w.row(id); row.State != domain.StateError || row.EndReason != "error: the sandbox could not be started" {
		t.Errorf("row: %s %q", row.State, row.EndReason)
	}
}

// TestExpiry: a sandbox ends at its timeout: halted and stopped on the node, metered to
// its end, and recorded as stopped with reason "timeout".
func TestExpiry(t *testing.T) {
	w := newWorld(t)
	sb, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sandbox to stop at its timeout", func() bool { return w.row(sb.ID).State == domain.StateStopped })
	row := w.row(sb.ID)
	if row.EndReason != "timeout" || row.StoppedAt.IsZero() {
		t.Errorf("row: reason %q stopped at %v", row.EndReason, row.StoppedAt)
	}
	waitFor(t, "the teardown", func() bool { return len(w.called("node.stop")) == 1 && w.reservedSlots() == 0 })
	if got := w.called("node.halt"); len(got) != 1 || len(w.called("meter.end")) != 1 || w.svc.Live() != 0 {
		t.Errorf("halts %q, meter ends %q, live %d", got, w.called("meter.end"), w.svc.Live())
	}
}

// TestKill: a killed sandbox is halted at once, its commands' context ends with why,
// it is recorded stopped ("killed"), and its slot stays reserved until the node has
// removed it. Killing it again, or another team's sandbox, is not found.
func TestKill(t *testing.T) {
	w := newWorld(t)
	sb, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := w.svc.lookup(context.Background(), writer, sb.ID, domain.ScopeSandboxesWrite)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	w.node.stop = func(_ context.Context, id string, _ int, h *runtime.Handle) error {
		<-release
		w.record("node.stop " + id + " " + handleID(h))
		return nil
	}

	if err := w.svc.Kill(context.Background(), reader, sb.ID); !domain.IsKind(err, domain.KindForbidden) {
		t.Errorf("kill without write scope: %v", err)
	}
	if err := w.svc.Kill(context.Background(), writer, sb.ID); err != nil {
		t.Fatal(err)
	}
	if row := w.row(sb.ID); row.State != domain.StateStopped || row.EndReason != "killed" {
		t.Errorf("row: %s %q", row.State, row.EndReason)
	}
	if !domain.IsKind(context.Cause(ls.ctx), domain.KindConflict) || !strings.Contains(context.Cause(ls.ctx).Error(), "killed") {
		t.Errorf("the sandbox's context ended with %v, want a conflict naming the kill", context.Cause(ls.ctx))
	}
	if got := w.called("node.halt"); !slices.Equal(got, []string{"node.halt " + sb.ID + " " + sb.ID}) {
		t.Errorf("halts: %q", got)
	}
	if len(w.called("agent.close")) != 1 || len(w.called("meter.end")) != 1 || w.svc.Live() != 0 {
		t.Errorf("agent closes %q, meter ends %q, live %d", w.called("agent.close"), w.called("meter.end"), w.svc.Live())
	}
	if w.reservedSlots() != 1 {
		t.Errorf("the slot is not reserved during the teardown")
	}
	r, err := w.svc.Route(context.Background(), sb.ID)
	if err != nil || r.Running {
		t.Errorf("route of a killed sandbox: %+v, %v", r, err)
	}
	close(release)
	waitFor(t, "the teardown", func() bool { return len(w.called("node.stop")) == 1 && w.reservedSlots() == 0 })

	if err := w.svc.Kill(context.Background(), writer, sb.ID); !domain.IsKind(err, domain.KindNotFound) || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("second kill: %v, want not found (it is stopped)", err)
	}
	other := domain.Principal{TeamID: "team_b", Scopes: writer.Scopes}
	sb2, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.svc.Kill(context.Background(), other, sb2.ID); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("another team's kill: %v", err)
	}
	if err := w.svc.Kill(context.Background(), writer, "not-an-id"); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("kill of a malformed id: %v", err)
	}
}

// TestSetTimeoutAndConnect: SetTimeout moves a live sandbox's end either way; Connect
// only ever extends it.
func TestSetTimeoutAndConnect(t *testing.T) {
	w := newWorld(t)
	sb, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.svc.SetTimeout(context.Background(), writer, sb.ID, time.Minute)
	if err != nil || time.Until(got.EndsAt) > time.Minute || !w.row(sb.ID).EndsAt.Equal(got.EndsAt) {
		t.Fatalf("SetTimeout: %+v, %v", got, err)
	}
	got, err = w.svc.Connect(context.Background(), writer, sb.ID, 10*time.Second)
	if err != nil || time.Until(got.EndsAt) < 50*time.Second {
		t.Errorf("Connect shortened the sandbox's life: ends in %v, %v", time.Until(got.EndsAt), err)
	}
	got, err = w.svc.Connect(context.Background(), writer, sb.ID, 2*time.Hour)
	if err != nil || time.Until(got.EndsAt) < 119*time.Minute || !w.row(sb.ID).EndsAt.Equal(got.EndsAt) {
		t.Errorf("Connect did not extend: ends in %v, %v", time.Until(got.EndsAt), err)
	}
	if _, err := w.svc.SetTimeout(context.Background(), writer, sb.ID, 25*time.Hour); !domain.IsKind(err, domain.KindInvalid) {
		t.Errorf("SetTimeout over the maximum: %v", err)
	}
	if err := w.svc.Kill(context.Background(), writer, sb.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.SetTimeout(context.Background(), writer, sb.ID, time.Minute); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("SetTimeout of a stopped sandbox: %v", err)
	}
	if _, err := w.svc.Connect(context.Background(), writer, sb.ID, time.Minute); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("Connect to a stopped sandbox: %v", err)
	}
}

// TestRecover: after a restart, a running sandbox that is still there is re-attached
// (its internet access restored, its template's private ports routed as private, its
// timer re-armed); one that died, or whose agent
// does not answer, is torn down and marked lost; one caught starting is marked error;
// and runtime leftovers without a live row are removed.
func TestRecover(t *testing.T) {
	w := newWorld(t)
	now := time.Now().UTC()
	row := func(id string, state domain.SandboxState, slot int, internet bool) *domain.Sandbox {
		sb := &domain.Sandbox{
			ID: id, TeamID: teamID, TemplateID: "base", State: state, RuntimeName: "gvisor", Slot: slot,
			Address: fmt.Sprintf("10.0.0.%d", slot), AccessToken: "tok-" + id, Internet: internet,
			CreatedAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour),
			RuntimeHandle: []byte(fmt.Sprintf(`{"id":%q,"driver":"gvisor","pid":%d}`, id, 100+slot)),
		}
		if state == domain.StateRunning {
			sb.StartedAt = now.Add(-time.Minute)
		}
		return sb
	}
	alive := domain.NewID(20)
	dead := domain.NewID(20)
	mute := domain.NewID(20)
	starting := domain.NewID(20)
	cutOff := domain.NewID(20) // starting, its handle never recorded (a restore cut off)
	stopped := domain.NewID(20)
	w.addRow(row(alive, domain.StateRunning, 1, true))
	w.addRow(row(dead, domain.StateRunning, 2, false))
	w.addRow(row(mute, domain.StateRunning, 3, false))
	w.addRow(row(starting, domain.StateStarting, 4, false))
	noHandle := row(cutOff, domain.StateStarting, 6, false)
	noHandle.RuntimeHandle = nil
	w.addRow(noHandle)
	old := row(stopped, domain.StateStopped, 5, false)
	old.EndReason = "killed"
	w.addRow(old)

	drv := gvisorFake
	drv.status = func(_ context.Context, h runtime.Handle) (runtime.Status, error) {
		if h.ID == dead {
			return runtime.StatusGone, nil
		}
		return runtime.StatusRunning, nil
	}
	w.node.drivers = []runtime.Driver{drv}
	w.svc.cfg.dial = func(address, token string) *agent {
		return &agent{conn: &fakeAgent{
			waitReady: func(context.Context) error {
				if token == "tok-"+mute {
					return errors.New("no answer")
				}
				return nil
			},
			closed: func() { w.record("agent.close " + token) },
		}}
	}
	w.templates["base"].PrivatePorts = []int{49999}
	orphan := domain.NewID(20)
	var sweptLive map[string]bool
	w.node.orphans = func(_ context.Context, live map[string]bool) ([]string, error) {
		sweptLive = live
		return []string{orphan}, nil
	}

	rep, err := w.sweeper.Recover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep != (RecoverReport{Reattached: 1, Reaped: 4, Orphans: 1}) {
		t.Errorf("report %+v, want 1 re-attached, 4 reaped, 1 orphan", rep)
	}
	if w.svc.Live() != 1 {
		t.Errorf("live %d, want 1", w.svc.Live())
	}
	if r, err := w.svc.Route(context.Background(), alive); err != nil || !r.Running || r.Address != "10.0.0.1" || !slices.Equal(r.PrivatePorts, []int{49999}) {
		t.Errorf("route of the re-attached sandbox: %+v, %v", r, err)
	}
	if got := w.called("node.reattach"); !slices.Equal(got, []string{"node.reattach 1 true"}) {
		t.Errorf("reattach calls: %q", got)
	}
	for _, c := range []struct {
		id     string
		state  domain.SandboxState
		reason string
	}{
		{alive, domain.StateRunning, ""},
		{dead, domain.StateStopped, "lost: the sandbox stopped while the server was down"},
		{mute, domain.StateStopped, "lost: the sandbox stopped while the server was down"},
		{starting, domain.StateError, "error: interrupted by a server restart while starting"},
		{cutOff, domain.StateError, "error: interrupted by a server restart while starting"},
		{stopped, domain.StateStopped, "killed"},
	} {
		if r := w.row(c.id); r.State != c.state || r.EndReason != c.reason {
			t.Errorf("row %s: %s %q, want %s %q", c.id, r.State, r.EndReason, c.state, c.reason)
		}
	}
	stops := w.called("node.stop ")
	slices.Sort(stops)
	// Without a recorded handle the node is asked by id (a zero handle names nothing).
	want := []string{"node.stop " + dead + " " + dead, "node.stop " + mute + " " + mute, "node.stop " + starting + " " + starting,
		"node.stop " + cutOff + " <nil>"}
	slices.Sort(want)
	if !slices.Equal(stops, want) {
		t.Errorf("node stops: %q, want %q", stops, want)
	}
	// The meters of the sandboxes that ran are closed; the one caught starting never ran.
	if ends := w.called("meter.end"); len(ends) != 2 {
		t.Errorf("meter ends: %q, want dead and mute", ends)
	}
	if !sweptLive[alive] || sweptLive[dead] || sweptLive[starting] || sweptLive[stopped] {
		t.Errorf("the sweep took %v as live, want only %s", sweptLive, alive)
	}
	if got := w.called("node.stoporphan"); !slices.Equal(got, []string{"node.stoporphan " + orphan}) {
		t.Errorf("orphans removed: %q", got)
	}

	// The re-attached sandbox ends like any other.
	if err := w.svc.Kill(context.Background(), writer, alive); err != nil {
		t.Fatal(err)
	}
	if r := w.row(alive); r.State != domain.StateStopped || r.EndReason != "killed" {
		t.Errorf("re-attached sandbox after kill: %s %q", r.State, r.EndReason)
	}
}

// TestRecoverExpired: a sandbox whose end passed while the server was down ends at
// once after it is re-attached.
func TestRecoverExpired(t *testing.T) {
	w := newWorld(t)
	id := domain.NewID(20)
	now := time.Now().UTC()
	w.addRow(&domain.Sandbox{ID: id, TeamID: teamID, State: domain.StateRunning, RuntimeName: "gvisor", Slot: 1,
		Address: "10.0.0.1", CreatedAt: now.Add(-time.Hour), StartedAt: now.Add(-time.Hour), EndsAt: now.Add(-time.Minute),
		RuntimeHandle: []byte(fmt.Sprintf(`{"id":%q,"driver":"gvisor"}`, id))})
	w.svc.cfg.dial = func(string, string) *agent {
		return &agent{conn: &fakeAgent{waitReady: func(context.Context) error { return nil }}}
	}
	if rep, err := w.sweeper.Recover(context.Background()); err != nil || rep.Reattached != 1 {
		t.Fatalf("Recover: %+v, %v", rep, err)
	}
	waitFor(t, "the overdue sandbox to end", func() bool { return w.row(id).State == domain.StateStopped })
	if r := w.row(id); r.EndReason != "timeout" {
		t.Errorf("reason %q, want timeout", r.EndReason)
	}
}

// TestSweep: the sweeper removes what has no live row, and counts as live the rows
// that are not terminal, the sandboxes it tracks and those still being torn down.
func TestSweep(t *testing.T) {
	w := newWorld(t)
	running, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	tearing, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	w.node.stop = func(_ context.Context, id string, _ int, _ *runtime.Handle) error {
		<-release
		return nil
	}
	if err := w.svc.Kill(context.Background(), writer, tearing.ID); err != nil {
		t.Fatal(err)
	}
	leftover := domain.NewID(20)
	var seen map[string]bool
	w.node.orphans = func(_ context.Context, live map[string]bool) ([]string, error) {
		seen = live
		return []string{leftover}, nil
	}
	n, err := w.sweeper.Sweep(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	if !seen[running.ID] || !seen[tearing.ID] || len(seen) != 2 {
		t.Errorf("live set %v, want the running sandbox and the one being torn down", seen)
	}
	if got := w.called("node.stoporphan"); !slices.Equal(got, []string{"node.stoporphan " + leftover}) {
		t.Errorf("removed %q", got)
	}

	w.node.orphans = func(context.Context, map[string]bool) ([]string, error) { return nil, errors.New("runsc list: boom") }
	if _, err := w.sweeper.Sweep(context.Background()); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Sweep with a failing node: %v", err)
	}
}

// TestSweepWaitsForCreates: a sweep never runs while a sandbox is being started, so it
// cannot take a half-started sandbox (traces on the node, row not yet running) for a
// leftover.
func TestSweepWaitsForCreates(t *testing.T) {
	w := newWorld(t)
	started, release := make(chan string), make(chan struct{})
	w.node.start = func(_ context.Context, sb *domain.Sandbox, _ *domain.Template) (runtime.Handle, string, error) {
		started <- sb.ID
		<-release
		return runtime.Handle{ID: sb.ID, Driver: "gvisor"}, "10.0.0.9", nil
	}
	created := make(chan error, 1)
	go func() {
		_, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{})
		created <- err
	}()
	id := <-started
	swept := make(chan map[string]bool, 1)
	w.node.orphans = func(_ context.Context, live map[string]bool) ([]string, error) {
		swept <- live
		return nil, nil
	}
	go w.sweeper.Sweep(context.Background())
	select {
	case <-swept:
		t.Fatal("the sweep ran while a create was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if live := <-swept; !live[id] {
		t.Errorf("the sweep after the create did not count %s as live: %v", id, live)
	}
}

// TestCheckLive: a tracked sandbox its runtime no longer runs is ended as lost; one
// whose status is unknown is left alone.
func TestCheckLive(t *testing.T) {
	w := newWorld(t)
	gone, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	unsure, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	drv := gvisorFake
	drv.status = func(_ context.Context, h runtime.Handle) (runtime.Status, error) {
		switch h.ID {
		case gone.ID:
			return runtime.StatusStopped, nil
		case unsure.ID:
			return runtime.StatusUnknown, nil
		}
		return runtime.StatusRunning, nil
	}
	w.node.drivers = []runtime.Driver{drv}
	if n := w.sweeper.CheckLive(context.Background()); n != 1 {
		t.Errorf("CheckLive ended %d, want 1", n)
	}
	if r := w.row(gone.ID); r.State != domain.StateStopped || !strings.HasPrefix(r.EndReason, "lost: ") {
		t.Errorf("the dead sandbox: %s %q", r.State, r.EndReason)
	}
	if r := w.row(unsure.ID); r.State != domain.StateRunning {
		t.Errorf("the sandbox of unknown status: %s", r.State)
	}
}

// TestKillAllAndClose: Close leaves sandboxes running (a restarted server re-attaches
// them); KillAll ends every one.
func TestKillAllAndClose(t *testing.T) {
	w := newWorld(t)
	for i := 0; i < 2; i++ {
		if _, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.svc.KillAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.svc.Close()
	if w.svc.Live() != 0 || len(w.called("node.stop")) != 2 || w.reservedSlots() != 0 {
		t.Errorf("after KillAll and Close: live %d, stops %q, reserved %d", w.svc.Live(), w.called("node.stop"), w.reservedSlots())
	}

	w = newWorld(t)
	sb, err := w.svc.Create(context.Background(), writer, domain.CreateSandbox{})
	if err != nil {
		t.Fatal(err)
	}
	w.svc.Close()
	if r := w.row(sb.ID); r.State != domain.StateRunning || len(w.called("node.halt")) != 0 {
		t.Errorf("Close ended the sandbox: %s, halts %q", r.State, w.called("node.halt"))
	}
}
