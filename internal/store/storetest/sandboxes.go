package storetest

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func testSandboxRoundTrip(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "rt")
	tests := []struct {
		name string
		sb   domain.Sandbox
	}{
		{"every field", domain.Sandbox{
			TemplateID: "python", State: domain.StateStopped, EndReason: "error: exit status 1",
			Metadata:      map[string]string{"user": "ana", "empty": "", "quote\"key": "ünï 'v'"},
			Env:           map[string]string{"PATH": "/usr/bin", "A": "b=c"},
			Limits:        domain.Limits{CPUCores: 0.25, MemoryMB: 512, DiskMB: 10240, MaxProcesses: 64},
			Internet:      true,
			RuntimeName:   "gvisor",
			RuntimeHandle: []byte(`{"pid":42,"bytes":"\u0000\u00ff"}` + "\x00\xff\x01"),
			Address:       "10.11.0.6", Slot: 7, AccessToken: "tok_secret", TrafficToken: "traffic_secret",
			CreatedAt: at(0, 1), StartedAt: at(1, 2), EndsAt: at(300, 3), StoppedAt: at(60, 4),
			Lifecycle: domain.Lifecycle{OnTimeout: domain.OnTimeoutPause, AutoResume: true}, PausedAt: at(30, 5),
			Network: domain.NetworkPolicy{AllowOut: []string{"198.18.0.7", "*.example.com", "198.19.0.0/16"}, DenyOut: []string{"0.0.0.0/0"}},
		}},
		{"nil maps and handle", domain.Sandbox{TemplateID: "base", State: domain.StateStarting,
			Limits: domain.Limits{CPUCores: 1.5}, CreatedAt: at(1, 0)}},
		{"empty maps and handle", domain.Sandbox{TemplateID: "base", State: domain.StateRunning,
			Metadata: map[string]string{}, Env: map[string]string{}, RuntimeHandle: []byte{}, CreatedAt: at(2, 0)}},
		{"zero times and slot", domain.Sandbox{TemplateID: "base", State: domain.StateError}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sb := tc.sb
			sb.ID = domain.NewID(20)
			sb.TeamID = team.ID
			// Send a copy, so that what comes back is compared with untouched values.
			sent := sb
			sent.Metadata, sent.Env = cloneMap(sb.Metadata), cloneMap(sb.Env)
			sent.RuntimeHandle = slices.Clone(sb.RuntimeHandle)
			must(t, "creating sandbox", s.CreateSandbox(ctx, &sent))

			got, err := s.GetSandbox(ctx, team.ID, sb.ID)
			must(t, "getting sandbox", err)
			same(t, "sandbox", got, &sb, normSandbox)
			checkNilness(t, got, &sb)

			list, _, err := s.ListSandboxes(ctx, domain.SandboxFilter{TeamID: team.ID, Limit: 1000})
			must(t, "listing sandboxes", err)
			i := slices.IndexFunc(list, func(x *domain.Sandbox) bool { return x.ID == sb.ID })
			if i < 0 {
				t.Fatalf("sandbox %s missing from its team's listing", sb.ID)
			}
			same(t, "listed sandbox", list[i], &sb, normSandbox)
			checkNilness(t, list[i], &sb)
		})
	}
}

// checkNilness reports nil/empty confusions, which reflect.DeepEqual catches for maps but
// which deserve a clearer message.
func checkNilness(t *testing.T, got, want *domain.Sandbox) {
	t.Helper()
	if (got.Metadata == nil) != (want.Metadata == nil) || (got.Env == nil) != (want.Env == nil) {
		t.Errorf("nil and empty maps not kept apart: metadata %#v env %#v, want %#v %#v", got.Metadata, got.Env, want.Metadata, want.Env)
	}
	if (got.RuntimeHandle == nil) != (want.RuntimeHandle == nil) {
		t.Errorf("nil and empty RuntimeHandle not kept apart: got %#v, want %#v", got.RuntimeHandle, want.RuntimeHandle)
	}
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func testSandboxErrors(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "errs")
	sb := addSandbox(t, s, newSandbox(team.ID, at(0, 0)))

	dup := newSandbox(team.ID, at(1, 0))
	dup.ID = sb.ID
	orphan := newSandbox("no-such-team", at(2, 0))
	missing := newSandbox(team.ID, at(3, 0))
	tests := []struct {
		name string
		err  error
		kind domain.Kind
	}{
		{"duplicate id", s.CreateSandbox(ctx, dup), domain.KindConflict},
		{"unknown team", s.CreateSandbox(ctx, orphan), domain.KindNotFound},
		{"get missing, any team", get(s.GetSandbox(ctx, domain.AnyTeam, "missing")), domain.KindNotFound},
		{"get missing, one team", get(s.GetSandbox(ctx, team.ID, "missing")), domain.KindNotFound},
		{"update missing", s.UpdateSandbox(ctx, missing), domain.KindNotFound},
	}
	for _, tc := range tests {
		wantKind(t, tc.name, tc.err, tc.kind)
	}
	got, err := s.GetSandbox(ctx, domain.AnyTeam, sb.ID)
	must(t, "getting sandbox", err)
	// A lookup that lost its team fails closed instead of reaching every team's rows.
	_, err = s.GetSandbox(ctx, "", sb.ID)
	wantKind(t, "getting a sandbox with no team", err, domain.KindInvalid)
	_, _, err = s.ListSandboxes(ctx, domain.SandboxFilter{})
	wantKind(t, "listing sandboxes with no team", err, domain.KindInvalid)
	_, err = s.ListUsage(ctx, domain.UsageFilter{})
	wantKind(t, "listing usage with no team", err, domain.KindInvalid)
	same(t, "sandbox after a conflicting create", got, sb, normSandbox)
	_, err = s.GetSandbox(ctx, domain.AnyTeam, orphan.ID)
	wantKind(t, "getting a sandbox whose create failed", err, domain.KindNotFound)
}

func testSandboxTeamScoping(t *testing.T, s domain.Store) {
	ctx := t.Context()
	a, b := addTeam(t, s, "a"), addTeam(t, s, "b")
	sa := addSandbox(t, s, newSandbox(a.ID, at(0, 0)))
	sbx := addSandbox(t, s, newSandbox(b.ID, at(1, 0)))
	tests := []struct {
		team, id string
		found    bool
	}{
		{a.ID, sa.ID, true},
		{domain.AnyTeam, sa.ID, true},
		{b.ID, sa.ID, false},
		{a.ID, sbx.ID, false},
		{domain.AnyTeam, sbx.ID, true},
		{"no-such-team", sa.ID, false},
	}
	for _, tc := range tests {
		got, err := s.GetSandbox(ctx, tc.team, tc.id)
		if !tc.found {
			wantKind(t, "GetSandbox("+tc.team+", "+tc.id+")", err, domain.KindNotFound)
			continue
		}
		must(t, "GetSandbox("+tc.team+", "+tc.id+")", err)
		if got.ID != tc.id {
			t.Errorf("GetSandbox(%q, %q) returned sandbox %q", tc.team, tc.id, got.ID)
		}
	}
}

func testSandboxUpdate(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team, other := addTeam(t, s, "upd"), addTeam(t, s, "other")
	orig := newSandbox(team.ID, at(0, 0))
	orig.State = domain.StateStarting
	orig.Metadata = map[string]string{"k": "v"}
	orig.Limits = domain.Limits{CPUCores: 0.5, MemoryMB: 256}
	addSandbox(t, s, orig)

	running := *orig
	running.State = domain.StateRunning
	running.RuntimeName = "runc"
	running.RuntimeHandle = []byte(`{"pid":7}`)
	running.Address = "10.0.0.2"
	running.Slot = 3
	running.AccessToken = "tok"
	running.StartedAt, running.EndsAt = at(1, 10), at(301, 20)

	stopped := running
	stopped.State = domain.StateStopped
	stopped.EndReason = "timeout"
	stopped.RuntimeHandle = nil
	stopped.Address = ""
	stopped.EndsAt = time.Time{}
	stopped.StoppedAt = at(301, 30)

	for _, want := range []*domain.Sandbox{&running, &stopped} {
		must(t, "updating sandbox to "+string(want.State), s.UpdateSandbox(ctx, want))
		got, err := s.GetSandbox(ctx, team.ID, orig.ID)
		must(t, "getting updated sandbox", err)
		same(t, "sandbox updated to "+string(want.State), got, want, normSandbox)
		checkNilness(t, got, want)
	}

	// The team is fixed at creation: an update cannot move a sandbox to another team.
	moved := stopped
	moved.TeamID = other.ID
	if err := s.UpdateSandbox(ctx, &moved); err != nil && !domain.IsKind(err, domain.KindNotFound) {
		t.Fatalf("updating with another team id: %v", err)
	}
	if _, err := s.GetSandbox(ctx, other.ID, orig.ID); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("UpdateSandbox moved the sandbox to another team (GetSandbox err = %v)", err)
	}
}

func testUsedSlots(t *testing.T, s domain.Store) {
	ctx := t.Context()
	slots, err := s.UsedSlots(ctx, nil)
	must(t, "UsedSlots of an empty store", err)
	if len(slots) != 0 {
		t.Fatalf("empty store has used slots %v", slots)
	}

	a, b := addTeam(t, s, "a"), addTeam(t, s, "b")
	states := []struct {
		team  *domain.Team
		state domain.SandboxState
		slot  int
	}{
		{a, domain.StateStarting, 4},
		{a, domain.StateRunning, 0},
		{b, domain.StateRunning, 9},
		{a, domain.StateStopped, 1},
		{b, domain.StateError, 2},
		{b, domain.StateStarting, 5},
		{a, domain.StatePaused, 6},
	}
	var sbs []*domain.Sandbox
	var want []int
	for i, st := range states {
		sb := newSandbox(st.team.ID, at(i, 0))
		sb.State, sb.Slot = st.state, st.slot
		sbs = append(sbs, addSandbox(t, s, sb))
		if st.state.Live() {
			want = append(want, st.slot)
		}
	}
	check := func(what string, want []int) {
		t.Helper()
		got, err := s.UsedSlots(ctx, nil)
		must(t, "UsedSlots", err)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("UsedSlots %s = %v, want %v", what, got, want)
		}
	}
	check("after create", want)

	// Stopping the slot-9 sandbox frees its slot.
	sbs[2].State = domain.StateStopped
	must(t, "stopping sandbox", s.UpdateSandbox(ctx, sbs[2]))
	check("after stop", []int{0, 4, 5})

	// Pausing the slot-0 sandbox frees its slot too; resuming it at slot 7 takes that.
	sbs[1].State, sbs[1].PausedAt = domain.StatePaused, at(10, 0)
	must(t, "pausing sandbox", s.UpdateSandbox(ctx, sbs[1]))
	check("after pause", []int{4, 5})
	sbs[1].State, sbs[1].Slot = domain.StateRunning, 7
	must(t, "resuming sandbox", s.ResumeSandboxWithinQuota(ctx, sbs[1], domain.Quota{}))
	check("after resume", []int{4, 5, 7})

	// Each node has its own address pool: a node counts its own rows (and rows from
	// before the node table, node ""), not other nodes'.
	for i, n := range map[int]string{11: "n1", 12: "n2"} {
		sb := newSandbox(a.ID, at(20+i, 0))
		sb.State, sb.Slot, sb.Node = domain.StateRunning, i, n
		addSandbox(t, s, sb)
	}
	for _, tc := range []struct {
		nodes []string
		want  []int
	}{{[]string{"n1", ""}, []int{4, 5, 7, 11}}, {[]string{"n2"}, []int{12}}, {[]string{"n3"}, nil}, {nil, []int{4, 5, 7, 11, 12}}} {
		got, err := s.UsedSlots(ctx, tc.nodes)
		must(t, "UsedSlots of nodes", err)
		if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("UsedSlots(%q) = %v, want %v", tc.nodes, got, tc.want)
		}
	}
}

// testResumeWithinQuota: a paused sandbox counts against no quota, so others may take
// its place; resuming it is then refused past the quota (and changes nothing), and
// admitted once there is room.
func testResumeWithinQuota(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "resume")
	q := domain.Quota{MaxSandboxes: 1, MaxMemoryMB: 1024}
	paused := newSandbox(team.ID, at(0, 0))
	paused.Limits = domain.Limits{MemoryMB: 1024}
	must(t, "creating", s.CreateSandboxWithinQuota(ctx, paused, q))
	paused.State, paused.PausedAt, paused.Address = domain.StatePaused, at(5, 0), ""
	must(t, "pausing", s.UpdateSandbox(ctx, paused))
	if u, err := s.TeamUsage(ctx, team.ID); err != nil || u.Sandboxes != 0 || u.MemoryMB != 0 {
		t.Errorf("usage with only a paused sandbox: %+v %v, want none", u, err)
	}
	other := newSandbox(team.ID, at(1, 0))
	other.Limits = domain.Limits{MemoryMB: 1024}
	must(t, "creating in the paused sandbox's place", s.CreateSandboxWithinQuota(ctx, other, q))

	resumed := *paused
	resumed.State, resumed.Slot, resumed.Address = domain.StateStarting, 3, "10.0.0.3"
	wantQuotaError(t, "resuming past the quota", s.ResumeSandboxWithinQuota(ctx, &resumed, q), "max_sandboxes", 1, 1)
	got, err := s.GetSandbox(ctx, team.ID, paused.ID)
	must(t, "getting the refused sandbox", err)
	same(t, "sandbox whose resume was refused", got, paused, normSandbox)

	other.State = domain.StateStopped
	must(t, "stopping the other", s.UpdateSandbox(ctx, other))
	must(t, "resuming within the quota", s.ResumeSandboxWithinQuota(ctx, &resumed, q))
	got, err = s.GetSandbox(ctx, team.ID, paused.ID)
	must(t, "getting the resumed sandbox", err)
	same(t, "resumed sandbox", got, &resumed, normSandbox)
	wantKind(t, "resuming an unknown sandbox", s.ResumeSandboxWithinQuota(ctx, newSandbox(team.ID, at(9, 0)), domain.Quota{}), domain.KindNotFound)
}

func testSandboxNetwork(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team, other := addTeam(t, s, "net"), addTeam(t, s, "other")
	sb := newSandbox(team.ID, at(0, 0))
	sb.Network = domain.NetworkPolicy{DenyOut: []string{"198.18.0.0/15"}}
	addSandbox(t, s, sb)
	stale, err := s.GetSandbox(ctx, team.ID, sb.ID)
	must(t, "getting sandbox", err)

	policies := []domain.NetworkPolicy{
		{AllowOut: []string{"198.18.0.7", "api.example.com"}, DenyOut: []string{"0.0.0.0/0"}},
		{AllowOut: []string{"*.example.com"}},
		{},
	}
	for _, p := range policies {
		must(t, "setting the network policy", s.SetSandboxNetwork(ctx, team.ID, sb.ID, p))
		got, err := s.GetSandbox(ctx, team.ID, sb.ID)
		must(t, "getting sandbox", err)
		want := *sb
		want.Network = p
		same(t, "sandbox after SetSandboxNetwork", got, &want, normSandbox)
	}
	last := domain.NetworkPolicy{AllowOut: []string{"198.18.0.9"}}
	must(t, "setting the network policy by AnyTeam", s.SetSandboxNetwork(ctx, domain.AnyTeam, sb.ID, last))

	// Another team cannot change it, nor can a lookup that lost its team.
	wantKind(t, "SetSandboxNetwork by another team", s.SetSandboxNetwork(ctx, other.ID, sb.ID, domain.NetworkPolicy{}), domain.KindNotFound)
	wantKind(t, "SetSandboxNetwork with no team", s.SetSandboxNetwork(ctx, "", sb.ID, domain.NetworkPolicy{}), domain.KindInvalid)
	wantKind(t, "SetSandboxNetwork of a missing sandbox", s.SetSandboxNetwork(ctx, team.ID, "missing", domain.NetworkPolicy{}), domain.KindNotFound)

	// An update written from a copy read before the policy changed does not undo it.
	stale.State = domain.StatePaused
	must(t, "updating from a stale copy", s.UpdateSandbox(ctx, stale))
	got, err := s.GetSandbox(ctx, team.ID, sb.ID)
	must(t, "getting sandbox", err)
	if !reflect.DeepEqual(got.Network, last) || got.State != domain.StatePaused {
		t.Errorf("after SetSandboxNetwork and a stale UpdateSandbox: network %+v state %s; want %+v paused", got.Network, got.State, last)
	}
}
