package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// newestFirst orders sandboxes the way ListSandboxes must: CreatedAt descending, then
// ID descending.
func newestFirst(a, b *domain.Sandbox) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(b.ID, a.ID)
}

// matches is the reference semantics of SandboxFilter (paging aside).
func matches(sb *domain.Sandbox, f domain.SandboxFilter) bool {
	if f.TeamID != domain.AnyTeam && sb.TeamID != f.TeamID {
		return false
	}
	if len(f.States) > 0 && !slices.Contains(f.States, sb.State) {
		return false
	}
	for k, v := range f.Metadata {
		if got, ok := sb.Metadata[k]; !ok || got != v {
			return false
		}
	}
	if f.TemplateID != "" && sb.TemplateID != f.TemplateID {
		return false
	}
	if !f.CreatedAfter.IsZero() && sb.CreatedAt.Before(f.CreatedAfter) {
		return false
	}
	return true
}

func ids(sbs []*domain.Sandbox) []string {
	out := make([]string, len(sbs))
	for i, sb := range sbs {
		out[i] = sb.ID
	}
	return out
}

// expect returns the ids that f selects from all, in listing order.
func expect(all []*domain.Sandbox, f domain.SandboxFilter) []string {
	var sel []*domain.Sandbox
	for _, sb := range all {
		if matches(sb, f) {
			sel = append(sel, sb)
		}
	}
	slices.SortFunc(sel, newestFirst)
	if f.Ascending {
		slices.Reverse(sel)
	}
	return ids(sel)
}

// testListTemplateOrder covers the template and created-after filters and oldest-first
// paging (the E2B API's template, startedAfter and order=asc).
func testListTemplateOrder(t *testing.T, s domain.Store) {
	a := addTeam(t, s, "a")
	var all []*domain.Sandbox
	for i := range 12 {
		sb := newSandbox(a.ID, at(i, 0))
		if i%3 == 0 {
			sb.TemplateID = "code-interpreter"
		}
		all = append(all, addSandbox(t, s, sb))
	}
	tests := []struct {
		name string
		f    domain.SandboxFilter
	}{
		{"template", domain.SandboxFilter{TeamID: a.ID, TemplateID: "code-interpreter", Limit: 2}},
		{"created after", domain.SandboxFilter{TeamID: a.ID, CreatedAfter: at(5, 0), Limit: 3}},
		// A bound outside what a store can keep still selects rightly.
		{"created after, far past", domain.SandboxFilter{TeamID: a.ID, CreatedAfter: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), Limit: 5}},
		{"ascending", domain.SandboxFilter{TeamID: a.ID, Ascending: true, Limit: 5}},
		{"ascending template after", domain.SandboxFilter{TeamID: a.ID, Ascending: true, TemplateID: "base", CreatedAfter: at(2, 0), Limit: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := listAll(t, s, tc.f, nil)
			want := expect(all, tc.f)
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Errorf("listing %+v:\n got %v\nwant %v", tc.f, got, want)
			}
		})
	}
}

// listAll pages through f with the given page size and returns every id in order. It
// fails the test if a page is larger than the size, or if a page before the last one is
// short or the last one says there is more.
func listAll(t *testing.T, s domain.Store, f domain.SandboxFilter, between func(page int)) []string {
	t.Helper()
	var out []string
	for page := 0; ; page++ {
		if page > 10000 {
			t.Fatalf("paging %+v does not end", f)
		}
		items, next, err := s.ListSandboxes(t.Context(), f)
		must(t, fmt.Sprintf("listing page %d of %+v", page, f), err)
		if f.Limit > 0 && len(items) > f.Limit {
			t.Fatalf("page %d has %d items, limit %d", page, len(items), f.Limit)
		}
		out = append(out, ids(items)...)
		if next == "" {
			return out
		}
		if len(items) == 0 {
			t.Fatalf("page %d is empty but has a next cursor", page)
		}
		if between != nil {
			between(page)
		}
		f.Cursor = next
	}
}

func testListFilters(t *testing.T, s domain.Store) {
	a, b := addTeam(t, s, "a"), addTeam(t, s, "b")
	type md = map[string]string
	specs := []struct {
		team  *domain.Team
		state domain.SandboxState
		meta  md
		sec   int
	}{
		{a, domain.StateRunning, md{"env": "prod", "owner": "ana"}, 1},
		{a, domain.StateRunning, md{"env": "dev"}, 2},
		{a, domain.StateStopped, md{"env": "prod"}, 2},
		{a, domain.StateStarting, nil, 3},
		{a, domain.StateError, md{"env": "prod "}, 4},
		{a, domain.StateRunning, md{"owner": ""}, 5},
		{a, domain.StateRunning, md{"owner": "ana", "env": "prod", "x": "y"}, 6},
		{b, domain.StateRunning, md{"env": "prod", "owner": "ana"}, 1},
		{b, domain.StateError, md{"owner": "ana"}, 7},
		{b, domain.StateStarting, md{}, 8},
	}
	var all []*domain.Sandbox
	for _, sp := range specs {
		sb := newSandbox(sp.team.ID, at(sp.sec, 0))
		sb.State, sb.Metadata = sp.state, sp.meta
		all = append(all, addSandbox(t, s, sb))
	}

	run, stop, start, fail := domain.StateRunning, domain.StateStopped, domain.StateStarting, domain.StateError
	tests := []struct {
		name string
		f    domain.SandboxFilter
	}{
		{"everything", domain.SandboxFilter{TeamID: domain.AnyTeam}},
		{"empty states and metadata", domain.SandboxFilter{TeamID: domain.AnyTeam, States: []domain.SandboxState{}, Metadata: md{}}},
		{"team a", domain.SandboxFilter{TeamID: a.ID}},
		{"team b", domain.SandboxFilter{TeamID: b.ID}},
		{"unknown team", domain.SandboxFilter{TeamID: "no-such-team"}},
		{"running", domain.SandboxFilter{TeamID: domain.AnyTeam, States: []domain.SandboxState{run}}},
		{"terminal", domain.SandboxFilter{TeamID: domain.AnyTeam, States: []domain.SandboxState{stop, fail}}},
		{"every state", domain.SandboxFilter{TeamID: domain.AnyTeam, States: []domain.SandboxState{run, stop, start, fail}}},
		{"env=prod", domain.SandboxFilter{TeamID: domain.AnyTeam, Metadata: md{"env": "prod"}}},
		{"env=prod and owner=ana", domain.SandboxFilter{TeamID: domain.AnyTeam, Metadata: md{"env": "prod", "owner": "ana"}}},
		{"owner is empty", domain.SandboxFilter{TeamID: domain.AnyTeam, Metadata: md{"owner": ""}}},
		{"absent key", domain.SandboxFilter{TeamID: domain.AnyTeam, Metadata: md{"nope": "x"}}},
		{"no prefix match", domain.SandboxFilter{TeamID: domain.AnyTeam, Metadata: md{"env": "pro"}}},
		{"team a, running, env=prod", domain.SandboxFilter{TeamID: a.ID, States: []domain.SandboxState{run}, Metadata: md{"env": "prod"}}},
		{"team b, starting or error, owner=ana", domain.SandboxFilter{TeamID: b.ID, States: []domain.SandboxState{start, fail}, Metadata: md{"owner": "ana"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.Limit = 1000
			items, next, err := s.ListSandboxes(t.Context(), f)
			must(t, "listing", err)
			if next != "" {
				t.Errorf("a complete listing returned next = %q, want \"\"", next)
			}
			if got, want := ids(items), expect(all, tc.f); !slices.Equal(got, want) {
				t.Errorf("ListSandboxes(%s):\n got %v\nwant %v", tc.name, got, want)
			}
		})
	}
}

func testListPaging(t *testing.T, s domain.Store) {
	a, b := addTeam(t, s, "a"), addTeam(t, s, "b")
	var all []*domain.Sandbox
	// 25 of team a, three to a timestamp so that ties are broken by id, and one with
	// the zero time (oldest of all); 5 of team b in between.
	for i := range 24 {
		all = append(all, addSandbox(t, s, newSandbox(a.ID, at(i/3, 0))))
		if i%5 == 0 {
			all = append(all, addSandbox(t, s, newSandbox(b.ID, at(i/3, 0))))
		}
	}
	all = append(all, addSandbox(t, s, newSandbox(a.ID, time.Time{})))

	teamA := domain.SandboxFilter{TeamID: a.ID}
	if want := expect(all, teamA); len(want) != 25 {
		t.Fatalf("fixture: team a has %d sandboxes, want 25", len(want))
	}
	tests := []struct {
		name  string
		f     domain.SandboxFilter
		pages int
	}{
		{"team a by 10", domain.SandboxFilter{TeamID: a.ID, Limit: 10}, 3},
		{"team a by 5", domain.SandboxFilter{TeamID: a.ID, Limit: 5}, 5},
		{"team a by 1", domain.SandboxFilter{TeamID: a.ID, Limit: 1}, 25},
		{"team a by 25", domain.SandboxFilter{TeamID: a.ID, Limit: 25}, 1},
		{"team a by 24", domain.SandboxFilter{TeamID: a.ID, Limit: 24}, 2},
		{"all teams by 7", domain.SandboxFilter{TeamID: domain.AnyTeam, Limit: 7}, 5},
		{"running of team b by 2", domain.SandboxFilter{TeamID: b.ID, States: []domain.SandboxState{domain.StateRunning}, Limit: 2}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pages := 1
			got := listAll(t, s, tc.f, func(int) { pages++ })
			if want := expect(all, tc.f); !slices.Equal(got, want) {
				t.Errorf("paged listing:\n got %v\nwant %v", got, want)
			}
			if pages != tc.pages {
				t.Errorf("listing took %d pages, want %d", pages, tc.pages)
			}
		})
	}

	// Sandboxes created while a client pages are newer than its cursor: they neither
	// shift later pages (no repeats, no gaps) nor show up in them.
	t.Run("stable under inserts", func(t *testing.T) {
		want := expect(all, teamA)
		f := teamA
		f.Limit = 10
		got := listAll(t, s, f, func(page int) {
			addSandbox(t, s, newSandbox(a.ID, at(1000+page, 0)))
		})
		if !slices.Equal(got, want) {
			t.Errorf("paging while inserting:\n got %v\nwant %v", got, want)
		}
	})
}

func testListPageSize(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team := addTeam(t, s, "many")
	add := func(n int) {
		for range n {
			addSandbox(t, s, newSandbox(team.ID, at(0, 0)))
		}
	}
	add(55)
	items, next, err := s.ListSandboxes(ctx, domain.SandboxFilter{TeamID: domain.AnyTeam})
	must(t, "listing with the default limit", err)
	if len(items) != 50 || next == "" {
		t.Errorf("default page: %d items, next %q; want 50 items and a cursor", len(items), next)
	}
	_, _, err = s.ListSandboxes(ctx, domain.SandboxFilter{TeamID: domain.AnyTeam, Limit: -1})
	wantKind(t, "negative limit", err, domain.KindInvalid)
	if f := domain.FieldOf(err); f != "limit" {
		t.Errorf("negative limit names field %q, want \"limit\"", f)
	}

	if testing.Short() {
		t.Skip("skipping the 1000-item page limit in -short mode")
	}
	add(1001 - 55)
	items, next, err = s.ListSandboxes(ctx, domain.SandboxFilter{TeamID: domain.AnyTeam, Limit: 5000})
	must(t, "listing with a limit above the maximum", err)
	if len(items) != 1000 || next == "" {
		t.Errorf("limit 5000: %d items, next %q; want the maximum of 1000 items and a cursor", len(items), next)
	}
}

func testListBadCursor(t *testing.T, s domain.Store) {
	team := addTeam(t, s, "c")
	addSandbox(t, s, newSandbox(team.ID, at(0, 0)))
	for _, c := range []string{"not a cursor", "%%%", "AAAA", "eyJ4IjoxfQ", strings.Repeat("z", 10), "\x00"} {
		_, _, err := s.ListSandboxes(t.Context(), domain.SandboxFilter{TeamID: domain.AnyTeam, Cursor: c})
		wantKind(t, fmt.Sprintf("cursor %q", c), err, domain.KindInvalid)
		if f := domain.FieldOf(err); f != "cursor" {
			t.Errorf("cursor %q: error names field %q, want \"cursor\"", c, f)
		}
	}
}
