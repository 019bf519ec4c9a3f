package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func auditIDs(es []*domain.AuditEntry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func testAudit(t *testing.T, s domain.Store) {
	ctx := t.Context()
	a, b := addTeam(t, s, "a"), addTeam(t, s, "b")
	entries := []*domain.AuditEntry{
		{TeamID: a.ID, At: at(10, 1), ActorType: "key", ActorID: "key-1", Action: "sandbox.create", Target: "sb-1",
			Status: 201, RemoteAddr: "192.0.2.1:5555", RequestID: "req-1",
			Details: map[string]string{"template": "base", "quote\"d": "ünï 'v'", "empty": ""}},
		{TeamID: b.ID, At: at(11, 0), ActorType: "user", ActorID: "user-1", Action: "user.login", Status: 200},
		// Appended later with an earlier time: order is by id, not by time.
		{TeamID: a.ID, At: at(5, 0), ActorType: "system", Action: "sandbox.timeout", Target: "sb-1", Details: map[string]string{}},
		{TeamID: "", At: at(12, 0), ActorType: "system", Action: "user.login_failed", Status: 401, RemoteAddr: "[2001:db8::1]:1"},
		{TeamID: a.ID, At: at(13, 0), ActorType: "key", ActorID: "key-2", Action: "key.revoke", Target: "key-1", Status: 204},
	}
	var last int64
	for i, e := range entries {
		must(t, fmt.Sprintf("appending entry %d", i), s.AppendAudit(ctx, e))
		if e.ID <= last {
			t.Fatalf("entry %d got id %d, not above the previous %d", i, e.ID, last)
		}
		last = e.ID
	}

	// At is set when zero: the current time, kept exactly.
	before := time.Now().Add(-time.Second)
	now := &domain.AuditEntry{TeamID: b.ID, ActorType: "key", Action: "team.update"}
	must(t, "appending an entry without a time", s.AppendAudit(ctx, now))
	if now.At.Before(before) || now.At.After(time.Now().Add(time.Second)) {
		t.Errorf("AppendAudit set At = %v, want about now", now.At)
	}
	if now.ID <= last {
		t.Errorf("entry got id %d, not above the previous %d", now.ID, last)
	}

	tests := []struct {
		team string
		want []*domain.AuditEntry
	}{
		{a.ID, []*domain.AuditEntry{entries[4], entries[2], entries[0]}},
		{b.ID, []*domain.AuditEntry{now, entries[1]}},
		{"", []*domain.AuditEntry{entries[3]}},
		{"no-such-team", nil},
	}
	for _, tc := range tests {
		got, err := s.ListAudit(ctx, domain.AuditFilter{TeamID: tc.team})
		must(t, "listing audit log", err)
		if len(got) != len(tc.want) {
			t.Errorf("ListAudit(%q) = %v, want %v", tc.team, auditIDs(got), auditIDs(tc.want))
			continue
		}
		for i := range got {
			same(t, "audit entry", got[i], tc.want[i], normAudit)
			if (got[i].Details == nil) != (tc.want[i].Details == nil) {
				t.Errorf("entry %d: nil and empty Details not kept apart: got %#v, want %#v", got[i].ID, got[i].Details, tc.want[i].Details)
			}
		}
	}
}

func testAuditFilters(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team, other := addTeam(t, s, "a"), addTeam(t, s, "other")
	actions := []string{"sandbox.create", "sandbox.delete", "key.create"}
	var all []*domain.AuditEntry // of team, in append order
	for i := range 12 {
		e := &domain.AuditEntry{TeamID: team.ID, At: at(i/2, i), ActorType: "key", Action: actions[i%3],
			Target: fmt.Sprint(i)}
		must(t, "appending", s.AppendAudit(ctx, e))
		all = append(all, e)
		must(t, "appending to the other team", s.AppendAudit(ctx, &domain.AuditEntry{TeamID: other.ID,
			At: at(i/2, i), ActorType: "key", Action: actions[i%3]}))
	}
	// expect applies f the reference way, newest first.
	expect := func(f domain.AuditFilter) []int64 {
		var out []int64
		for i := len(all) - 1; i >= 0; i-- {
			e := all[i]
			if (f.Action == "" || e.Action == f.Action) && (f.Since.IsZero() || !e.At.Before(f.Since)) &&
				(f.Until.IsZero() || e.At.Before(f.Until)) && (f.BeforeID == 0 || e.ID < f.BeforeID) {
				out = append(out, e.ID)
			}
		}
		return out
	}
	tests := []struct {
		name string
		f    domain.AuditFilter
	}{
		{"everything", domain.AuditFilter{}},
		{"action", domain.AuditFilter{Action: "sandbox.delete"}},
		{"unknown action", domain.AuditFilter{Action: "sandbox"}},
		{"since, inclusive", domain.AuditFilter{Since: all[5].At}},
		{"until, exclusive", domain.AuditFilter{Until: all[5].At}},
		{"since and until", domain.AuditFilter{Since: all[3].At, Until: all[9].At}},
		{"since in another zone", domain.AuditFilter{Since: all[4].At.In(time.FixedZone("UTC-7", -7*3600))}},
		{"before id", domain.AuditFilter{BeforeID: all[7].ID}},
		{"before id and action", domain.AuditFilter{BeforeID: all[7].ID, Action: "key.create"}},
		{"limit", domain.AuditFilter{Limit: 4}},
		{"far bounds", domain.AuditFilter{Since: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), Until: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.TeamID = team.ID
			got, err := s.ListAudit(ctx, f)
			must(t, "listing audit log", err)
			want := expect(f)
			if f.Limit > 0 && len(want) > f.Limit {
				want = want[:f.Limit]
			}
			if !slices.Equal(auditIDs(got), want) {
				t.Errorf("ListAudit(%+v) = %v, want %v", f, auditIDs(got), want)
			}
		})
	}

	// Paging with BeforeID walks the whole log, newest first, without gaps or repeats.
	t.Run("paging", func(t *testing.T) {
		var got []int64
		f := domain.AuditFilter{TeamID: team.ID, Action: "", Limit: 5}
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatal("paging does not end")
			}
			es, err := s.ListAudit(ctx, f)
			must(t, "listing a page", err)
			if len(es) == 0 {
				break
			}
			got = append(got, auditIDs(es)...)
			f.BeforeID = es[len(es)-1].ID
		}
		if want := expect(domain.AuditFilter{}); !slices.Equal(got, want) {
			t.Errorf("paged audit log = %v, want %v", got, want)
		}
	})
}

func testAuditPageSize(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "many")
	add := func(n int) {
		for i := range n {
			must(t, "appending", s.AppendAudit(ctx, &domain.AuditEntry{TeamID: team.ID, At: at(i, 0),
				ActorType: "system", Action: "x"}))
		}
	}
	_, err := s.ListAudit(ctx, domain.AuditFilter{TeamID: team.ID, Limit: -1})
	wantKind(t, "negative limit", err, domain.KindInvalid)
	if f := domain.FieldOf(err); f != "limit" {
		t.Errorf("negative limit names field %q, want \"limit\"", f)
	}

	add(101)
	got, err := s.ListAudit(ctx, domain.AuditFilter{TeamID: team.ID})
	must(t, "listing with the default limit", err)
	if len(got) != 100 {
		t.Errorf("default limit returned %d entries, want 100", len(got))
	}
	if testing.Short() {
		t.Skip("skipping the 1000-entry page limit in -short mode")
	}
	add(1001 - 101)
	got, err = s.ListAudit(ctx, domain.AuditFilter{TeamID: team.ID, Limit: 5000})
	must(t, "listing with a limit above the maximum", err)
	if len(got) != 1000 {
		t.Errorf("limit 5000 returned %d entries, want the maximum of 1000", len(got))
	}
}
