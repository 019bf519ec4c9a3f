package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

func normSnapshot(s domain.Snapshot) domain.Snapshot {
	s.CreatedAt = normTime(s.CreatedAt)
	return s
}

// newSnapshot returns a snapshot of a (made-up) sandbox of the team; it is not stored.
func newSnapshot(teamID, name string, n int) *domain.Snapshot {
	return &domain.Snapshot{
		ID: domain.NewSnapshotID(), TeamID: teamID, Name: name, SandboxID: domain.NewID(20), TemplateID: "base",
		TemplateRootFS: "/var/cache/warren/templates/base-0123456789abcdef/rootfs",
		RuntimeName:    "gvisor", Limits: domain.Limits{CPUCores: 1, MemoryMB: 512, DiskMB: 1024, MaxProcesses: 64},
		Env: map[string]string{"A": "1"}, Internet: true, AccessToken: "tok", SizeBytes: int64(n) << 20,
		CreatedAt: at(n, 0),
	}
}

func testSnapshotRoundTrip(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "snap")
	named := newSnapshot(team.ID, "my-snap", 1)
	named.Network = domain.NetworkPolicy{AllowOut: []string{"198.18.0.7", "*.example.com"}, DenyOut: []string{"0.0.0.0/0"}}
	plain := newSnapshot(team.ID, "", 2)
	plain.Env, plain.Internet = nil, false
	for _, sn := range []*domain.Snapshot{named, plain} {
		must(t, "creating snapshot", s.CreateSnapshotWithinQuota(ctx, sn, 0))
		got, err := s.GetSnapshot(ctx, team.ID, sn.ID)
		must(t, "getting snapshot by id", err)
		same(t, "snapshot "+sn.ID, got, sn, normSnapshot)
		got, err = s.GetSnapshot(ctx, domain.AnyTeam, sn.ID)
		must(t, "getting snapshot of any team", err)
		same(t, "snapshot (any team) "+sn.ID, got, sn, normSnapshot)
	}
	got, err := s.GetSnapshot(ctx, team.ID, "my-snap")
	must(t, "getting snapshot by name", err)
	same(t, "snapshot by name", got, named, normSnapshot)
	// '' is no name: it finds nothing, and two unnamed snapshots do not collide.
	wantKind(t, "getting by an empty name", get(s.GetSnapshot(ctx, team.ID, "")), domain.KindNotFound)
	must(t, "a second unnamed snapshot", s.CreateSnapshotWithinQuota(ctx, newSnapshot(team.ID, "", 3), 0))
	wantKind(t, "by name with AnyTeam", get(s.GetSnapshot(ctx, domain.AnyTeam, "my-snap")), domain.KindNotFound)
	wantKind(t, "empty team", get(s.GetSnapshot(ctx, "", named.ID)), domain.KindInvalid)

	must(t, "deleting", s.DeleteSnapshot(ctx, team.ID, named.ID))
	wantKind(t, "getting a deleted snapshot", get(s.GetSnapshot(ctx, team.ID, named.ID)), domain.KindNotFound)
	wantKind(t, "deleting twice", s.DeleteSnapshot(ctx, team.ID, named.ID), domain.KindNotFound)
	// The name is free again.
	must(t, "reusing a deleted snapshot's name", s.CreateSnapshotWithinQuota(ctx, newSnapshot(team.ID, "my-snap", 4), 0))
	wantKind(t, "unknown team", s.CreateSnapshotWithinQuota(ctx, newSnapshot("no-such-team", "", 5), 0), domain.KindNotFound)
	dup := newSnapshot(team.ID, "", 6)
	dup.ID = plain.ID
	wantKind(t, "duplicate id", s.CreateSnapshotWithinQuota(ctx, dup, 0), domain.KindConflict)
}

func testSnapshotScopingAndNames(t *testing.T, s domain.Store) {
	ctx := t.Context()
	a, b := addTeam(t, s, "a"), addTeam(t, s, "b")
	sa := newSnapshot(a.ID, "same", 1)
	must(t, "team a's snapshot", s.CreateSnapshotWithinQuota(ctx, sa, 0))
	// Names are per team: b may use a's name.
	sb := newSnapshot(b.ID, "same", 2)
	must(t, "team b's snapshot of the same name", s.CreateSnapshotWithinQuota(ctx, sb, 0))
	err := s.CreateSnapshotWithinQuota(ctx, newSnapshot(a.ID, "same", 3), 0)
	wantKind(t, "a name taken in the team", err, domain.KindConflict)
	if msg := domain.PublicMessage(err); msg == "" || !strings.Contains(msg, `"same"`) {
		t.Errorf("the name conflict does not name the name: %q", msg)
	}
	// Another team's snapshot is not found, by id or name, nor deleted.
	wantKind(t, "b getting a's by id", get(s.GetSnapshot(ctx, b.ID, sa.ID)), domain.KindNotFound)
	got, err := s.GetSnapshot(ctx, b.ID, "same")
	must(t, "b by name", err)
	if got.ID != sb.ID {
		t.Errorf("b's lookup of 'same' found %s, want b's own %s", got.ID, sb.ID)
	}
	wantKind(t, "b deleting a's", s.DeleteSnapshot(ctx, b.ID, sa.ID), domain.KindNotFound)
	must(t, "a's still there", get(s.GetSnapshot(ctx, a.ID, sa.ID)))
	items, _, err := s.ListSnapshots(ctx, domain.SnapshotFilter{TeamID: b.ID})
	must(t, "listing b's", err)
	if len(items) != 1 || items[0].ID != sb.ID {
		t.Errorf("b lists %v, want only %s", snapIDs(items), sb.ID)
	}
	wantKind(t, "listing without a team", get2(s.ListSnapshots(ctx, domain.SnapshotFilter{})), domain.KindInvalid)
}

func testSnapshotQuota(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team, other := addTeam(t, s, "q"), addTeam(t, s, "other")
	must(t, "other team's snapshot", s.CreateSnapshotWithinQuota(ctx, newSnapshot(other.ID, "", 0), 2))
	// Concurrent creates never overshoot.
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.CreateSnapshotWithinQuota(ctx, newSnapshot(team.ID, "", i+1), 5)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				admitted++
				return
			}
			wantQuotaError(t, "concurrent refusal", err, "max_snapshots", 5, 5)
		}()
	}
	wg.Wait()
	if admitted != 5 {
		t.Fatalf("12 concurrent snapshots against max_snapshots 5 admitted %d", admitted)
	}
	u, err := s.TeamUsage(ctx, team.ID)
	must(t, "TeamUsage", err)
	if u.Snapshots != 5 {
		t.Errorf("TeamUsage counts %d snapshots, want 5", u.Snapshots)
	}
	must(t, "no limit", s.CreateSnapshotWithinQuota(ctx, newSnapshot(team.ID, "", 20), 0))
	wantQuotaError(t, "at a lower limit", s.CreateSnapshotWithinQuota(ctx, newSnapshot(team.ID, "", 21), 3), "max_snapshots", 3, 6)
}

func snapIDs(items []*domain.Snapshot) []string {
	out := make([]string, len(items))
	for i, sn := range items {
		out[i] = sn.ID
	}
	return out
}

func testSnapshotList(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "list")
	parent := domain.NewID(20)
	var all []*domain.Snapshot
	for i := range 7 {
		sn := newSnapshot(team.ID, fmt.Sprintf("n%d", i), i%3) // equal times: ties broken by id
		if i%2 == 0 {
			sn.SandboxID = parent
		}
		must(t, "creating", s.CreateSnapshotWithinQuota(ctx, sn, 0))
		all = append(all, sn)
	}
	slices.SortFunc(all, func(a, b *domain.Snapshot) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		items, next, err := s.ListSnapshots(ctx, domain.SnapshotFilter{TeamID: team.ID, Limit: 3, Cursor: cursor})
		must(t, "listing a page", err)
		got = append(got, snapIDs(items)...)
		if next == "" {
			break
		}
		if page > 5 {
			t.Fatal("paging does not end")
		}
		cursor = next
	}
	if want := snapIDs(all); !slices.Equal(got, want) {
		t.Errorf("paged listing\n got %v\nwant %v", got, want)
	}
	items, _, err := s.ListSnapshots(ctx, domain.SnapshotFilter{TeamID: team.ID, SandboxID: parent})
	must(t, "by sandbox", err)
	if len(items) != 4 {
		t.Errorf("listing by sandbox found %d, want 4", len(items))
	}
	for _, sn := range items {
		if sn.SandboxID != parent {
			t.Errorf("listing by sandbox found %s of %s", sn.ID, sn.SandboxID)
		}
	}
	items, _, err = s.ListSnapshots(ctx, domain.SnapshotFilter{TeamID: team.ID, Name: "n3"})
	must(t, "by name", err)
	if len(items) != 1 || items[0].Name != "n3" {
		t.Errorf("listing by name found %v", snapIDs(items))
	}
	items, _, err = s.ListSnapshots(ctx, domain.SnapshotFilter{TeamID: domain.AnyTeam})
	must(t, "every team's", err)
	if len(items) != 7 {
		t.Errorf("listing every team's found %d, want 7", len(items))
	}
	wantKind(t, "a bad cursor", get2(s.ListSnapshots(ctx, domain.SnapshotFilter{TeamID: team.ID, Cursor: "zzz"})), domain.KindInvalid)
	wantKind(t, "a negative limit", get2(s.ListSnapshots(ctx, domain.SnapshotFilter{TeamID: team.ID, Limit: -1})), domain.KindInvalid)
}

func get2[T any](_ T, _ string, err error) error { return err }
