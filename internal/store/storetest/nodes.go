package storetest

import (
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// What the suite pins down about nodes, sandboxes' nodes and locks:
//   - UpsertNode writes every reported field and never State: a new node is ready, a
//     draining one stays draining, a down one becomes ready and says it was down;
//     runtimes, templates and warm pools keep nil apart from values; ListNodes orders
//     by name;
//   - SetNodeState moves a node that is not down to ready or draining; a down node is
//     KindConflict, an unknown one KindNotFound, another state KindInvalid;
//   - MarkNodeDown marks only a node that is not down and whose heartbeat is older than
//     the cutoff, and in the same transaction stops that node's starting and running
//     sandboxes with the reason (paused ones, ended ones and other nodes' stay);
//   - a sandbox's node round-trips, ListSandboxes filters by Nodes, UpdateSandbox leaves
//     the node alone and never moves an ended sandbox back (KindConflict, row kept);
//   - TryLock gives a lock to one holder at a time; release hands it over.

func normNode(n domain.Node) domain.Node {
	n.StartedAt, n.HeartbeatAt = normTime(n.StartedAt), normTime(n.HeartbeatAt)
	return n
}

func newNode(name string, heartbeat time.Time) *domain.Node {
	return &domain.Node{
		Name: name, Address: name + ":3000", Runtimes: []string{"gvisor", "runc"}, Templates: []string{"base"},
		Capacity:  domain.NodeCapacity{CPUCores: 2, MemoryMB: 24000, DiskMB: 100000, Slots: 16383},
		Free:      domain.NodeCapacity{CPUCores: 1.5, MemoryMB: 20000, DiskMB: 90000, Slots: 16380},
		Sandboxes: 3, WarmPools: map[string]int{"base": 2}, StartedAt: at(0, 1), HeartbeatAt: heartbeat,
	}
}

func testNodes(t *testing.T, s domain.Store) {
	ctx := t.Context()
	b := newNode("node-b", at(10, 5))
	wasDown, err := s.UpsertNode(ctx, b)
	must(t, "UpsertNode b", err)
	if wasDown {
		t.Errorf("a new node says it was down")
	}
	a := newNode("node-a", at(10, 0))
	a.Runtimes, a.Templates, a.WarmPools, a.StartedAt = nil, nil, nil, time.Time{}
	_, err = s.UpsertNode(ctx, a)
	must(t, "UpsertNode a", err)
	a.State, b.State = domain.NodeReady, domain.NodeReady
	got, err := s.GetNode(ctx, "node-b")
	must(t, "GetNode", err)
	same(t, "node", got, b, normNode)
	got, err = s.GetNode(ctx, "node-a")
	must(t, "GetNode", err)
	same(t, "node without lists", got, a, normNode)
	list, err := s.ListNodes(ctx)
	must(t, "ListNodes", err)
	if len(list) != 2 || list[0].Name != "node-a" || list[1].Name != "node-b" {
		t.Fatalf("ListNodes = %d nodes, want node-a, node-b", len(list))
	}
	_, err = s.GetNode(ctx, "nope")
	wantKind(t, "GetNode(nope)", err, domain.KindNotFound)
	_, err = s.UpsertNode(ctx, &domain.Node{})
	wantKind(t, "UpsertNode without a name", err, domain.KindInvalid)

	// A report changes the figures, never the state.
	must(t, "SetNodeState draining", s.SetNodeState(ctx, "node-b", domain.NodeDraining))
	b2 := newNode("node-b", at(20, 0))
	b2.Address, b2.Free.Slots, b2.Sandboxes, b2.WarmPools = "10.0.0.2:3000", 7, 9, map[string]int{}
	wasDown, err = s.UpsertNode(ctx, b2)
	must(t, "UpsertNode b again", err)
	if wasDown {
		t.Errorf("a draining node's report says it was down")
	}
	b2.State = domain.NodeDraining
	got, err = s.GetNode(ctx, "node-b")
	must(t, "GetNode", err)
	same(t, "draining node after a report", got, b2, normNode)
	must(t, "SetNodeState ready", s.SetNodeState(ctx, "node-b", domain.NodeReady))
	wantKind(t, "SetNodeState(down)", s.SetNodeState(ctx, "node-b", domain.NodeDown), domain.KindInvalid)
	wantKind(t, "SetNodeState(unknown node)", s.SetNodeState(ctx, "nope", domain.NodeDraining), domain.KindNotFound)
}

func testNodeDown(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "t")
	_, err := s.UpsertNode(ctx, newNode("gone", at(10, 0)))
	must(t, "UpsertNode", err)
	_, err = s.UpsertNode(ctx, newNode("alive", at(100, 0)))
	must(t, "UpsertNode", err)
	mk := func(node string, state domain.SandboxState) *domain.Sandbox {
		sb := newSandbox(team.ID, at(1, 0))
		sb.Node, sb.State = node, state
		if state.Terminal() {
			sb.EndReason = "killed"
		}
		return addSandbox(t, s, sb)
	}
	running, starting := mk("gone", domain.StateRunning), mk("gone", domain.StateStarting)
	paused, stopped := mk("gone", domain.StatePaused), mk("gone", domain.StateStopped)
	other, legacy := mk("alive", domain.StateRunning), mk("", domain.StateRunning)

	// A heartbeat newer than the cutoff keeps a node up.
	marked, lost, err := s.MarkNodeDown(ctx, "alive", at(50, 0), "lost: node alive", at(60, 0))
	must(t, "MarkNodeDown(alive)", err)
	if marked || lost != 0 {
		t.Errorf("MarkNodeDown of a node with a fresh heartbeat = %v, %d; want false, 0", marked, lost)
	}
	const reason = "lost: node gone stopped heartbeating"
	marked, lost, err = s.MarkNodeDown(ctx, "gone", at(50, 0), reason, at(60, 0))
	must(t, "MarkNodeDown(gone)", err)
	if !marked || lost != 2 {
		t.Errorf("MarkNodeDown(gone) = %v, %d; want true, 2", marked, lost)
	}
	marked, lost, err = s.MarkNodeDown(ctx, "gone", at(50, 0), reason, at(61, 0))
	must(t, "MarkNodeDown(gone) again", err)
	if marked || lost != 0 {
		t.Errorf("MarkNodeDown of a down node = %v, %d; want false, 0", marked, lost)
	}
	n, err := s.GetNode(ctx, "gone")
	must(t, "GetNode", err)
	if n.State != domain.NodeDown {
		t.Errorf("node state %q, want down", n.State)
	}
	for _, sb := range []*domain.Sandbox{running, starting} {
		got, err := s.GetSandbox(ctx, team.ID, sb.ID)
		must(t, "GetSandbox", err)
		if got.State != domain.StateStopped || got.EndReason != reason || !got.StoppedAt.Equal(at(60, 0)) {
			t.Errorf("sandbox %s on the down node: %s %q stopped %v; want stopped %q at %v", sb.State, got.State,
				got.EndReason, got.StoppedAt, reason, at(60, 0))
		}
	}
	for _, sb := range []*domain.Sandbox{paused, stopped, other, legacy} {
		got, err := s.GetSandbox(ctx, team.ID, sb.ID)
		must(t, "GetSandbox", err)
		if got.State != sb.State || got.EndReason != sb.EndReason {
			t.Errorf("sandbox %s of node %q changed to %s %q", sb.State, sb.Node, got.State, got.EndReason)
		}
	}

	// A lost sandbox is not brought back by its node's writes.
	back := *running
	back.State, back.EndReason = domain.StateRunning, ""
	wantKind(t, "UpdateSandbox of a stopped sandbox to running", s.UpdateSandbox(ctx, &back), domain.KindConflict)
	got, err := s.GetSandbox(ctx, team.ID, running.ID)
	must(t, "GetSandbox", err)
	if got.State != domain.StateStopped || got.EndReason != reason {
		t.Errorf("after a refused update the sandbox is %s %q, want stopped %q", got.State, got.EndReason, reason)
	}
	// Ended to ended is a write like any other.
	got.EndReason = "lost: again"
	must(t, "UpdateSandbox stopped to stopped", s.UpdateSandbox(ctx, got))

	wantKind(t, "SetNodeState of a down node", s.SetNodeState(ctx, "gone", domain.NodeDraining), domain.KindConflict)
	wasDown, err := s.UpsertNode(ctx, newNode("gone", at(200, 0)))
	must(t, "UpsertNode of the node back", err)
	if !wasDown {
		t.Errorf("the report of a node back from down says it was not down")
	}
	n, err = s.GetNode(ctx, "gone")
	must(t, "GetNode", err)
	if n.State != domain.NodeReady {
		t.Errorf("a node back from down is %q, want ready", n.State)
	}
}

func testSandboxNodes(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "t")
	var ids []string
	for i, node := range []string{"n1", "n2", "", "n1"} {
		sb := newSandbox(team.ID, at(i, 0))
		sb.Node = node
		addSandbox(t, s, sb)
		ids = append(ids, sb.ID)
	}
	got, err := s.GetSandbox(ctx, team.ID, ids[1])
	must(t, "GetSandbox", err)
	if got.Node != "n2" {
		t.Errorf("node %q, want n2", got.Node)
	}
	got.Node, got.State = "elsewhere", domain.StatePaused
	must(t, "UpdateSandbox", s.UpdateSandbox(ctx, got))
	got, err = s.GetSandbox(ctx, team.ID, ids[1])
	must(t, "GetSandbox", err)
	if got.Node != "n2" || got.State != domain.StatePaused {
		t.Errorf("after UpdateSandbox: node %q state %s, want n2 (fixed at creation), paused", got.Node, got.State)
	}
	for _, tc := range []struct {
		nodes []string
		want  []string
	}{
		{[]string{"n1"}, []string{ids[3], ids[0]}},
		{[]string{"n1", ""}, []string{ids[3], ids[2], ids[0]}},
		{nil, []string{ids[3], ids[2], ids[1], ids[0]}},
		{[]string{"none"}, nil},
	} {
		page, _, err := s.ListSandboxes(ctx, domain.SandboxFilter{TeamID: domain.AnyTeam, Nodes: tc.nodes})
		must(t, "ListSandboxes", err)
		var gotIDs []string
		for _, sb := range page {
			gotIDs = append(gotIDs, sb.ID)
		}
		if len(gotIDs) != len(tc.want) {
			t.Errorf("Nodes %q: %d sandboxes, want %d", tc.nodes, len(gotIDs), len(tc.want))
			continue
		}
		for i := range gotIDs {
			if gotIDs[i] != tc.want[i] {
				t.Errorf("Nodes %q: got %q, want %q", tc.nodes, gotIDs, tc.want)
				break
			}
		}
	}
}

func testLocks(t *testing.T, s domain.Store) { LockAcrossStores(t, s, s) }

// LockAcrossStores takes one lock through a and b (two stores on one database, as two
// servers would, or the same store twice): only one holds it at a time, a release
// hands it over, and another name is another lock.
func LockAcrossStores(t *testing.T, a, b domain.Store) {
	ctx := t.Context()
	name := "storetest-" + domain.NewID(8)
	relA, ok, err := a.TryLock(ctx, name)
	must(t, "TryLock a", err)
	if !ok {
		t.Fatal("the first TryLock of a free lock did not take it")
	}
	if _, ok, err := b.TryLock(ctx, name); err != nil || ok {
		t.Fatalf("TryLock b while a holds it = %v, %v; want false", ok, err)
	}
	if _, ok, err := a.TryLock(ctx, name); err != nil || ok {
		t.Fatalf("a second TryLock through a while a holds it = %v, %v; want false", ok, err)
	}
	relOther, ok, err := b.TryLock(ctx, name+"-other")
	if err != nil || !ok {
		t.Fatalf("TryLock of another name = %v, %v; want true", ok, err)
	}
	relOther()
	relA()
	relA() // a second release does nothing
	relB, ok, err := b.TryLock(ctx, name)
	if err != nil || !ok {
		t.Fatalf("TryLock b after a released = %v, %v; want true", ok, err)
	}
	if _, ok, err := a.TryLock(ctx, name); err != nil || ok {
		t.Fatalf("TryLock a while b holds it = %v, %v; want false", ok, err)
	}
	relB()
	relA2, ok, err := a.TryLock(ctx, name)
	if err != nil || !ok {
		t.Fatalf("TryLock a after b released = %v, %v; want true", ok, err)
	}
	relA2()
}
