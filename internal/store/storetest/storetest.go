// Package storetest is the conformance suite every domain.Store backend must pass
// (store/sqlite and store/postgres). A backend's test calls Run with a function
// that opens a fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) domain.Store { ... })
//	}
//
// The suite pins down what the domain.Store comments leave open, so that backends
// agree:
//   - times keep at least microsecond precision, the zero time stays zero, and in
//     orderings the zero time is the oldest (PostgreSQL needs NULLS FIRST / LAST);
//   - nil and empty maps, and nil and empty RuntimeHandle, stay apart;
//   - teams and keys list oldest first (keys include revoked ones), templates by id;
//   - ListSandboxes orders by CreatedAt then ID, both descending (ids compare
//     bytewise, so PostgreSQL wants COLLATE "C"); Limit 0 means 50, more than 1000
//     means 1000, a negative Limit is KindInvalid on "limit";
//   - a key or sandbox of an unknown team is KindNotFound; revoking a revoked key
//     succeeds and keeps the first revocation time; UpdateSandbox never changes
//     TeamID.
//   - a key's nil and empty Scopes both read back as nil (either grants nothing);
//   - users are stored with their email lower-cased, unique case-insensitively; users
//     list oldest first; UpdateUser never changes TeamID, Email or SessionEpoch; only
//     EndSessions moves the epoch, one step per call even when calls race;
//   - a key reads back with Creator, its creating user's current role and disabled
//     time, from GetAPIKeyByHash and ListAPIKeys alike; nil without a UserID, when that
//     user is gone or belongs to another team; CreateAPIKey ignores Creator;
//   - CreateSandboxWithinQuota checks max_sandboxes, max_cpu_cores, max_memory_mb and
//     max_disk_mb in that order, counting only live sandboxes (starting, running: not
//     paused ones), and so does ResumeSandboxWithinQuota; UsedSlots and TeamUsage
//     count live sandboxes only;
//   - AppendAudit sets At to the current time truncated to microseconds when it is
//     zero; ListAudit matches TeamID exactly ("" selects entries without a team),
//     orders by ID descending whatever At says, and keeps nil and empty Details apart;
//     Limit 0 means 100, more than 1000 means 1000, negative is KindInvalid on "limit";
//   - usage is booked on the UTC day a delta's Day falls in; a delta without a Day is
//     KindInvalid and nothing of that RecordUsage call is saved; OpenMeters orders by
//     sandbox id; usage rows order by day then sandbox id, bytewise;
//   - a snapshot is found by id or by its name within its team (AnyTeam: by id only);
//     names are unique within a team, ” is no name; CreateSnapshotWithinQuota counts
//     the team's snapshots against max_snapshots (0: no limit), and TeamUsage reports
//     that count; ListSnapshots orders like ListSandboxes;
//   - a sandbox's network policy round-trips with its lists' order (empty lists read
//     back as nil); only SetSandboxNetwork changes it (team-scoped like GetSandbox),
//     UpdateSandbox leaves it alone.
//   - a template id is unique within its team (TeamID "" = built-in): GetTemplate finds
//     the team's own before a built-in, "" finds built-ins only, AnyTeam is KindInvalid;
//     ListTemplates lists the built-ins and the team's own by id; another team's
//     template is KindNotFound (get, update, delete); CreateTemplateWithinQuota refuses
//     a built-in's or the team's own id (KindConflict, no leak of other teams' ids) and
//     checks max_templates then max_template_mb; UpdateTemplateWithinQuota checks
//     max_template_mb without counting the template's old size; DeleteTemplate removes
//     its builds and their logs;
//   - builds are team-scoped like sandboxes; BeginBuild moves only a waiting build
//     (KindConflict otherwise); step results round-trip (none reads back as nil);
//     ListBuilds orders newest first and filters by state; log lines are numbered from
//     0, a line number written twice is KindConflict, ListBuildLogs pages by offset;
//   - nodes, sandboxes' nodes and locks: see nodes.go; idempotency keys: see
//     idempotency.go.
package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Run runs the suite. open must return a new, empty store that no other test uses:
// subtests run in parallel, each on its own store, and Run closes each store when its
// subtest ends.
func Run(t *testing.T, open func(t *testing.T) domain.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s domain.Store)
	}{
		{"Teams", testTeams},
		{"TeamErrors", testTeamErrors},
		{"APIKeyRoundTrip", testAPIKeyRoundTrip},
		{"APIKeyErrors", testAPIKeyErrors},
		{"APIKeyTeamScoping", testAPIKeyTeamScoping},
		{"Templates", testTemplates},
		{"SandboxRoundTrip", testSandboxRoundTrip},
		{"SandboxErrors", testSandboxErrors},
		{"SandboxTeamScoping", testSandboxTeamScoping},
		{"SandboxUpdate", testSandboxUpdate},
		{"SandboxNetwork", testSandboxNetwork},
		{"ListFilters", testListFilters},
		{"ListPaging", testListPaging},
		{"ListTemplateOrder", testListTemplateOrder},
		{"ListPageSize", testListPageSize},
		{"ListBadCursor", testListBadCursor},
		{"UsedSlots", testUsedSlots},
		{"ResumeWithinQuota", testResumeWithinQuota},
		{"ConcurrentWrites", testConcurrentWrites},
		{"TeamUpdate", testTeamUpdate},
		{"Users", testUsers},
		{"UserErrors", testUserErrors},
		{"APIKeyScopes", testAPIKeyScopes},
		{"SessionEpoch", testSessionEpoch},
		{"RecordLogin", testRecordLogin},
		{"APIKeyCreator", testAPIKeyCreator},
		{"QuotaConcurrent", testQuotaConcurrent},
		{"QuotaResources", testQuotaResources},
		{"QuotaErrors", testQuotaErrors},
		{"TeamUsage", testTeamUsage},
		{"Audit", testAudit},
		{"AuditFilters", testAuditFilters},
		{"AuditPageSize", testAuditPageSize},
		{"RecordUsage", testRecordUsage},
		{"RecordUsageAtomic", testRecordUsageAtomic},
		{"Meters", testMeters},
		{"ListUsage", testListUsage},
		{"Invoices", testInvoices},
		{"SnapshotRoundTrip", testSnapshotRoundTrip},
		{"SnapshotQuota", testSnapshotQuota},
		{"SnapshotScopingAndNames", testSnapshotScopingAndNames},
		{"SnapshotList", testSnapshotList},
		{"TeamTemplates", testTeamTemplates},
		{"TemplateQuota", testTemplateQuota},
		{"TemplateBuilds", testTemplateBuilds},
		{"TemplateTags", testTemplateTags},
		{"TemplateBuildLogs", testTemplateBuildLogs},
		{"Nodes", testNodes},
		{"NodeDown", testNodeDown},
		{"SandboxNodes", testSandboxNodes},
		{"Locks", testLocks},
		{"IdempotencyKeys", testIdempotencyKeys},
		{"IdempotencyRace", testIdempotencyRace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("closing store: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// base is a time with microsecond precision (what PostgreSQL keeps) in a zone other than
// UTC, so that stores must compare instants rather than wall clocks.
var base = time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.FixedZone("UTC+2", 2*3600))

// at returns base plus n seconds and us microseconds.
func at(n, us int) time.Time {
	return base.Add(time.Duration(n)*time.Second + time.Duration(us)*time.Microsecond)
}

// normTime makes times comparable with reflect.DeepEqual: one location, no monotonic
// reading. The zero time stays the zero time.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Round(0)
}

func normTeam(t domain.Team) domain.Team {
	t.CreatedAt = normTime(t.CreatedAt)
	return t
}

func normKey(k domain.APIKey) domain.APIKey {
	k.CreatedAt, k.LastUsedAt, k.RevokedAt = normTime(k.CreatedAt), normTime(k.LastUsedAt), normTime(k.RevokedAt)
	k.ExpiresAt = normTime(k.ExpiresAt)
	if k.Creator != nil {
		c := *k.Creator
		c.DisabledAt = normTime(c.DisabledAt)
		k.Creator = &c
	}
	return k
}

func normUser(u domain.User) domain.User {
	u.CreatedAt, u.LastLoginAt, u.DisabledAt = normTime(u.CreatedAt), normTime(u.LastLoginAt), normTime(u.DisabledAt)
	return u
}

func normAudit(e domain.AuditEntry) domain.AuditEntry {
	e.At = normTime(e.At)
	return e
}

func normMeter(m domain.Meter) domain.Meter {
	m.StartedAt, m.SampledAt, m.ClosedAt = normTime(m.StartedAt), normTime(m.SampledAt), normTime(m.ClosedAt)
	return m
}

func normInvoice(inv domain.Invoice) domain.Invoice {
	inv.PeriodStart, inv.PeriodEnd, inv.IssuedAt = normTime(inv.PeriodStart), normTime(inv.PeriodEnd), normTime(inv.IssuedAt)
	return inv
}

func normTemplate(t domain.Template) domain.Template {
	t.BuiltAt, t.CreatedAt = normTime(t.BuiltAt), normTime(t.CreatedAt)
	return t
}

func normSandbox(s domain.Sandbox) domain.Sandbox {
	s.CreatedAt, s.StartedAt = normTime(s.CreatedAt), normTime(s.StartedAt)
	s.EndsAt, s.StoppedAt, s.PausedAt = normTime(s.EndsAt), normTime(s.StoppedAt), normTime(s.PausedAt)
	return s
}

// same fails the test unless got and want are deeply equal after norm.
func same[T any](t *testing.T, what string, got, want *T, norm func(T) T) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: got nil, want %+v", what, *want)
	}
	g, w := norm(*got), norm(*want)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s round trip:\n got %s\nwant %s", what, dump(g), dump(w))
	}
}

// dump prints a value with nil and empty maps and slices told apart.
func dump(v any) string { return fmt.Sprintf("%#v", v) }

// wantKind fails the test unless err is classified as kind.
func wantKind(t *testing.T, what string, err error, kind domain.Kind) {
	t.Helper()
	if got := domain.KindOf(err); err == nil || got != kind {
		t.Errorf("%s: got error %v (kind %v), want kind %v", what, err, got, kind)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// addTeam creates a team with a fresh id.
func addTeam(t *testing.T, s domain.Store, name string) *domain.Team {
	t.Helper()
	team := &domain.Team{ID: domain.NewID(20), Name: name, CreatedAt: at(0, 0)}
	must(t, "creating team", s.CreateTeam(t.Context(), team))
	return team
}

// newSandbox returns a running sandbox of the team with a fresh id; it is not stored.
func newSandbox(teamID string, created time.Time) *domain.Sandbox {
	return &domain.Sandbox{
		ID:          domain.NewID(20),
		TeamID:      teamID,
		TemplateID:  "base",
		State:       domain.StateRunning,
		Metadata:    map[string]string{},
		Env:         map[string]string{},
		RuntimeName: "fake",
		CreatedAt:   created,
	}
}

// addSandbox stores sb and returns it.
func addSandbox(t *testing.T, s domain.Store, sb *domain.Sandbox) *domain.Sandbox {
	t.Helper()
	must(t, "creating sandbox "+sb.ID, s.CreateSandbox(t.Context(), sb))
	return sb
}
