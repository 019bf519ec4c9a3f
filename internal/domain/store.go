package domain

import (
	"context"
	"time"
)

// Store persists teams, users, keys, templates, sandboxes, snapshots, the audit log,
// usage, invoices, the node table, shared locks and idempotency keys. Implementations: store/sqlite and store/postgres, held to one conformance
// suite (store/storetest). It is the sum of the role interfaces below; a consumer that
// needs only some of them should ask for only those.
// Lookups of missing rows return a KindNotFound error.
type Store interface {
	TeamStore
	UserStore
	KeyStore
	TemplateStore
	TemplateBuildStore
	SandboxStore
	SnapshotStore
	AuditStore
	UsageStore
	InvoiceStore
	NodeStore
	LockStore
	IdempotencyStore

	Close() error
}

// TeamStore persists teams.
type TeamStore interface {
	CreateTeam(ctx context.Context, t *Team) error
	GetTeam(ctx context.Context, id string) (*Team, error)
	ListTeams(ctx context.Context) ([]*Team, error)
	// UpdateTeam writes Name, Quota, PlanID, SpendLimit and AllowedRuntimes.
	UpdateTeam(ctx context.Context, t *Team) error
}

// UserStore persists a team's console users.
type UserStore interface {
	// CreateUser adds a user; an email already taken (case-insensitively) is KindConflict,
	// an unknown team KindNotFound.
	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, id string) (*User, error)
	GetUserByEmail(ctx context.Context, email string) (*User, error)
	// ListUsers returns a team's users, oldest first.
	ListUsers(ctx context.Context, teamID string) ([]*User, error)
	// UpdateUser writes Name, Role, PasswordHash, LastLoginAt and DisabledAt; never
	// SessionEpoch, which only EndSessions changes.
	UpdateUser(ctx context.Context, u *User) error
	// RecordLogin writes only LastLoginAt, so that a login racing a password change
	// cannot write the old hash back.
	RecordLogin(ctx context.Context, id string, at time.Time) error
	// EndSessions increments the user's SessionEpoch (atomically, in the database) and
	// returns the new value: every session token issued before stops working.
	EndSessions(ctx context.Context, id string) (int64, error)
	DeleteUser(ctx context.Context, teamID, id string) error
}

// KeyStore persists API keys (their hashes, never the secrets).
type KeyStore interface {
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// GetAPIKeyByHash returns the key with that hash, revoked or not, with its Creator
	// read in the same query.
	GetAPIKeyByHash(ctx context.Context, hash string) (*APIKey, error)
	ListAPIKeys(ctx context.Context, teamID string) ([]*APIKey, error)
	// RevokeAPIKey marks a team's key revoked; NotFound if it is not that team's key.
	RevokeAPIKey(ctx context.Context, teamID, id string, at time.Time) error
	TouchAPIKey(ctx context.Context, id string, at time.Time) error
}

// TemplateStore persists templates: built-ins (TeamID "") and teams' own. A template's
// id is unique within its team; a team sees the built-ins and its own.
type TemplateStore interface {
	// UpsertTemplate inserts t or replaces every field of the template (t.TeamID, t.ID).
	UpsertTemplate(ctx context.Context, t *Template) error
	// GetTemplate returns template id as team teamID sees it: the team's own, else the
	// built-in. teamID "" sees the built-ins alone (which every team sees, so a team
	// forgotten on the way never widens a lookup); AnyTeam is KindInvalid, as ids are
	// unique only within a team.
	GetTemplate(ctx context.Context, teamID, id string) (*Template, error)
	// ListTemplates returns the built-ins and teamID's own templates ("" the built-ins
	// alone, AnyTeam every template), ordered by id then team.
	ListTemplates(ctx context.Context, teamID string) ([]*Template, error)
	// ListTemplateTags returns the rows of the tags of the team's template id (their ids
	// are id, TagSeparator and the tag), ordered by id. ListTemplates leaves them out,
	// and so do the quotas; DeleteTemplate removes them with the template.
	ListTemplateTags(ctx context.Context, teamID, id string) ([]*Template, error)
	// CreateTemplateWithinQuota inserts the team's template t (t.TeamID set) if no
	// built-in and none of the team's templates has its id (KindConflict) and the team
	// then keeps at most q.MaxTemplates templates and holds less than q.MaxTemplateMB
	// (zero: no limit; a refusal is KindQuotaExceeded with a *QuotaError).
	CreateTemplateWithinQuota(ctx context.Context, t *Template, q Quota) error
	// UpdateTemplateWithinQuota writes every field of the team's existing template t
	// (KindNotFound when it is gone) if the team's templates, t at its new SizeBytes,
	// then hold at most q.MaxTemplateMB.
	UpdateTemplateWithinQuota(ctx context.Context, t *Template, q Quota) error
	// DeleteTemplate removes the team's template id (never a built-in) with its builds
	// and their logs.
	DeleteTemplate(ctx context.Context, teamID, id string) error
}

// TemplateBuildStore persists template builds and their logs. Lookups are scoped by
// team like sandboxes (AnyTeam for the server's own work, "" KindInvalid).
type TemplateBuildStore interface {
	CreateBuild(ctx context.Context, b *Build) error
	// GetBuild returns the build of the team's template templateID ("" any template).
	GetBuild(ctx context.Context, teamID, templateID, id string) (*Build, error)
	// BeginBuild moves the team's waiting build b.ID to b.State (building), recording
	// spec; a build that is not waiting is KindConflict.
	BeginBuild(ctx context.Context, b *Build, spec BuildSpec) error
	// UpdateBuild writes State, Reason, Steps and FinishedAt of the build b.ID.
	UpdateBuild(ctx context.Context, b *Build) error
	// ListBuilds returns the builds of the team's template, newest first (AnyTeam and
	// templateID "" with states: every build in those states).
	ListBuilds(ctx context.Context, teamID, templateID string, states ...BuildState) ([]*Build, error)
	// DeleteBuild removes a build and its log lines.
	DeleteBuild(ctx context.Context, teamID, id string) error
	// AppendBuildLogs stores lines as the build's lines first, first+1, ...
	AppendBuildLogs(ctx context.Context, buildID string, first int, lines []BuildLogLine) error
	// ListBuildLogs returns up to limit lines of the build from line offset on.
	ListBuildLogs(ctx context.Context, buildID string, offset, limit int) ([]BuildLogLine, error)
}

// SandboxStore persists sandboxes and answers the questions quotas and address
// allocation ask of them.
type SandboxStore interface {
	CreateSandbox(ctx context.Context, s *Sandbox) error
	// CreateSandboxWithinQuota inserts s only if the team's live sandboxes plus s
	// stay within q (zero fields: no limit), atomically: concurrent calls, from this or
	// another process, can never together exceed the quota. A refusal is a
	// KindQuotaExceeded *Error whose Err is a *QuotaError.
	CreateSandboxWithinQuota(ctx context.Context, s *Sandbox, q Quota) error
	// ResumeSandboxWithinQuota writes every mutable field of s (as UpdateSandbox) only
	// if the team's live sandboxes (State.Live) plus s stay within q, atomically with
	// CreateSandboxWithinQuota's check: for resuming a paused sandbox, which counts
	// against no quota while paused.
	ResumeSandboxWithinQuota(ctx context.Context, s *Sandbox, q Quota) error
	// TeamUsage sums the limits of the team's live sandboxes (State.Live) and counts its
	// snapshots.
	TeamUsage(ctx context.Context, teamID string) (QuotaUsage, error)
	// GetSandbox returns the team's sandbox, or any team's for AnyTeam; an empty teamID
	// is KindInvalid.
	GetSandbox(ctx context.Context, teamID, id string) (*Sandbox, error)
	// UpdateSandbox writes every mutable field of s (state, reason, handle, address,
	// times). A sandbox that has ended (stopped, error) never moves back to another
	// state: such a write is KindConflict and changes nothing.
	UpdateSandbox(ctx context.Context, s *Sandbox) error
	// SetSandboxNetwork replaces only the network policy of the team's sandbox (any
	// team's for AnyTeam; another team's is KindNotFound).
	SetSandboxNetwork(ctx context.Context, teamID, id string, p NetworkPolicy) error
	// ListSandboxes pages by creation time, newest first; next is "" on the last page.
	ListSandboxes(ctx context.Context, f SandboxFilter) (items []*Sandbox, next string, err error)
	// UsedSlots returns the address slots held by the live sandboxes (State.Live) of
	// the given nodes (nil: of every node): each node has its own address pool.
	UsedSlots(ctx context.Context, nodes []string) ([]int, error)
}

// AuditStore persists the append-only audit log.
type AuditStore interface {
	// AppendAudit adds an entry (its ID and, if zero, At are set). There is no way to
	// change or remove entries.
	AppendAudit(ctx context.Context, e *AuditEntry) error
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditEntry, error)
}

// UsageStore persists metered usage: per-day buckets and each sandbox's meter.
type UsageStore interface {
	// RecordUsage adds the deltas to their (sandbox, day) buckets and saves m, in one
	// transaction, so that the counters in m and the booked usage never disagree.
	RecordUsage(ctx context.Context, m *Meter, deltas []UsageDelta) error
	// GetMeter returns a sandbox's meter, KindNotFound if it was never sampled.
	GetMeter(ctx context.Context, sandboxID string) (*Meter, error)
	// OpenMeters returns the meters that are not closed.
	OpenMeters(ctx context.Context) ([]*Meter, error)
	// ListUsage returns the buckets the filter selects, by day then sandbox id.
	ListUsage(ctx context.Context, f UsageFilter) ([]UsageRow, error)
}

// InvoiceStore persists issued invoices.
type InvoiceStore interface {
	// SaveInvoice stores a final invoice; one per team and period start (a second one is
	// KindConflict).
	SaveInvoice(ctx context.Context, inv *Invoice) error
	// ListInvoices returns a team's saved invoices, newest period first.
	ListInvoices(ctx context.Context, teamID string) ([]*Invoice, error)
}
