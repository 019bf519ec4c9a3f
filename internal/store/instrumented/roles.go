package instrumented

// The store's role interfaces, one instrumented type each. Every method is its domain
// method between its hook's begin and done, named "<role>.<method>" and by its method.

import (
	"context"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// teams instruments a domain.TeamStore.
type teams struct {
	s domain.TeamStore
	h Hook
}

func (x teams) CreateTeam(ctx context.Context, t *domain.Team) error {
	ctx, done := x.h(ctx, "teams.create", "CreateTeam")
	err := x.s.CreateTeam(ctx, t)
	done(err)
	return err
}

func (x teams) GetTeam(ctx context.Context, id string) (*domain.Team, error) {
	ctx, done := x.h(ctx, "teams.get", "GetTeam")
	v0, err := x.s.GetTeam(ctx, id)
	done(err)
	return v0, err
}

func (x teams) ListTeams(ctx context.Context) ([]*domain.Team, error) {
	ctx, done := x.h(ctx, "teams.list", "ListTeams")
	v0, err := x.s.ListTeams(ctx)
	done(err)
	return v0, err
}

func (x teams) UpdateTeam(ctx context.Context, t *domain.Team) error {
	ctx, done := x.h(ctx, "teams.update", "UpdateTeam")
	err := x.s.UpdateTeam(ctx, t)
	done(err)
	return err
}

// users instruments a domain.UserStore.
type users struct {
	s domain.UserStore
	h Hook
}

func (x users) CreateUser(ctx context.Context, u *domain.User) error {
	ctx, done := x.h(ctx, "users.create", "CreateUser")
	err := x.s.CreateUser(ctx, u)
	done(err)
	return err
}

func (x users) GetUser(ctx context.Context, id string) (*domain.User, error) {
	ctx, done := x.h(ctx, "users.get", "GetUser")
	v0, err := x.s.GetUser(ctx, id)
	done(err)
	return v0, err
}

func (x users) GetUserByEmail(ctx context.Context, email string) (*domain.User, error) {
	ctx, done := x.h(ctx, "users.get_by_email", "GetUserByEmail")
	v0, err := x.s.GetUserByEmail(ctx, email)
	done(err)
	return v0, err
}

func (x users) ListUsers(ctx context.Context, teamID string) ([]*domain.User, error) {
	ctx, done := x.h(ctx, "users.list", "ListUsers")
	v0, err := x.s.ListUsers(ctx, teamID)
	done(err)
	return v0, err
}

func (x users) UpdateUser(ctx context.Context, u *domain.User) error {
	ctx, done := x.h(ctx, "users.update", "UpdateUser")
	err := x.s.UpdateUser(ctx, u)
	done(err)
	return err
}

func (x users) RecordLogin(ctx context.Context, id string, at time.Time) error {
	ctx, done := x.h(ctx, "users.record_login", "RecordLogin")
	err := x.s.RecordLogin(ctx, id, at)
	done(err)
	return err
}

func (x users) EndSessions(ctx context.Context, id string) (int64, error) {
	ctx, done := x.h(ctx, "users.end_sessions", "EndSessions")
	v0, err := x.s.EndSessions(ctx, id)
	done(err)
	return v0, err
}

func (x users) DeleteUser(ctx context.Context, teamID string, id string) error {
	ctx, done := x.h(ctx, "users.delete", "DeleteUser")
	err := x.s.DeleteUser(ctx, teamID, id)
	done(err)
	return err
}

// keys instruments a domain.KeyStore.
type keys struct {
	s domain.KeyStore
	h Hook
}

func (x keys) CreateAPIKey(ctx context.Context, k *domain.APIKey) error {
	ctx, done := x.h(ctx, "keys.create", "CreateAPIKey")
	err := x.s.CreateAPIKey(ctx, k)
	done(err)
	return err
}

func (x keys) GetAPIKeyByHash(ctx context.Context, hash string) (*domain.APIKey, error) {
	ctx, done := x.h(ctx, "keys.get_by_hash", "GetAPIKeyByHash")
	v0, err := x.s.GetAPIKeyByHash(ctx, hash)
	done(err)
	return v0, err
}

func (x keys) ListAPIKeys(ctx context.Context, teamID string) ([]*domain.APIKey, error) {
	ctx, done := x.h(ctx, "keys.list", "ListAPIKeys")
	v0, err := x.s.ListAPIKeys(ctx, teamID)
	done(err)
	return v0, err
}

func (x keys) RevokeAPIKey(ctx context.Context, teamID string, id string, at time.Time) error {
	ctx, done := x.h(ctx, "keys.revoke", "RevokeAPIKey")
	err := x.s.RevokeAPIKey(ctx, teamID, id, at)
	done(err)
	return err
}

func (x keys) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	ctx, done := x.h(ctx, "keys.touch", "TouchAPIKey")
	err := x.s.TouchAPIKey(ctx, id, at)
	done(err)
	return err
}

// templates instruments a domain.TemplateStore.
type templates struct {
	s domain.TemplateStore
	h Hook
}

func (x templates) UpsertTemplate(ctx context.Context, t *domain.Template) error {
	ctx, done := x.h(ctx, "templates.upsert", "UpsertTemplate")
	err := x.s.UpsertTemplate(ctx, t)
	done(err)
	return err
}

func (x templates) GetTemplate(ctx context.Context, teamID, id string) (*domain.Template, error) {
	ctx, done := x.h(ctx, "templates.get", "GetTemplate")
	v0, err := x.s.GetTemplate(ctx, teamID, id)
	done(err)
	return v0, err
}

func (x templates) ListTemplates(ctx context.Context, teamID string) ([]*domain.Template, error) {
	ctx, done := x.h(ctx, "templates.list", "ListTemplates")
	v0, err := x.s.ListTemplates(ctx, teamID)
	done(err)
	return v0, err
}

func (x templates) ListTemplateTags(ctx context.Context, teamID, id string) ([]*domain.Template, error) {
	ctx, done := x.h(ctx, "templates.list_tags", "ListTemplateTags")
	v0, err := x.s.ListTemplateTags(ctx, teamID, id)
	done(err)
	return v0, err
}

func (x templates) CreateTemplateWithinQuota(ctx context.Context, t *domain.Template, q domain.Quota) error {
	ctx, done := x.h(ctx, "templates.create_within_quota", "CreateTemplateWithinQuota")
	err := x.s.CreateTemplateWithinQuota(ctx, t, q)
	done(err)
	return err
}

func (x templates) UpdateTemplateWithinQuota(ctx context.Context, t *domain.Template, q domain.Quota) error {
	ctx, done := x.h(ctx, "templates.update_within_quota", "UpdateTemplateWithinQuota")
	err := x.s.UpdateTemplateWithinQuota(ctx, t, q)
	done(err)
	return err
}

func (x templates) DeleteTemplate(ctx context.Context, teamID, id string) error {
	ctx, done := x.h(ctx, "templates.delete", "DeleteTemplate")
	err := x.s.DeleteTemplate(ctx, teamID, id)
	done(err)
	return err
}

// builds instruments a domain.TemplateBuildStore.
type builds struct {
	s domain.TemplateBuildStore
	h Hook
}

func (x builds) CreateBuild(ctx context.Context, b *domain.Build) error {
	ctx, done := x.h(ctx, "builds.create", "CreateBuild")
	err := x.s.CreateBuild(ctx, b)
	done(err)
	return err
}

func (x builds) GetBuild(ctx context.Context, teamID, templateID, id string) (*domain.Build, error) {
	ctx, done := x.h(ctx, "builds.get", "GetBuild")
	v0, err := x.s.GetBuild(ctx, teamID, templateID, id)
	done(err)
	return v0, err
}

func (x builds) BeginBuild(ctx context.Context, b *domain.Build, spec domain.BuildSpec) error {
	ctx, done := x.h(ctx, "builds.begin", "BeginBuild")
	err := x.s.BeginBuild(ctx, b, spec)
	done(err)
	return err
}

func (x builds) UpdateBuild(ctx context.Context, b *domain.Build) error {
	ctx, done := x.h(ctx, "builds.update", "UpdateBuild")
	err := x.s.UpdateBuild(ctx, b)
	done(err)
	return err
}

func (x builds) ListBuilds(ctx context.Context, teamID, templateID string, states ...domain.BuildState) ([]*domain.Build, error) {
	ctx, done := x.h(ctx, "builds.list", "ListBuilds")
	v0, err := x.s.ListBuilds(ctx, teamID, templateID, states...)
	done(err)
	return v0, err
}

func (x builds) DeleteBuild(ctx context.Context, teamID, id string) error {
	ctx, done := x.h(ctx, "builds.delete", "DeleteBuild")
	err := x.s.DeleteBuild(ctx, teamID, id)
	done(err)
	return err
}

func (x builds) AppendBuildLogs(ctx context.Context, buildID string, first int, lines []domain.BuildLogLine) error {
	ctx, done := x.h(ctx, "builds.append_logs", "AppendBuildLogs")
	err := x.s.AppendBuildLogs(ctx, buildID, first, lines)
	done(err)
	return err
}

func (x builds) ListBuildLogs(ctx context.Context, buildID string, offset, limit int) ([]domain.BuildLogLine, error) {
	ctx, done := x.h(ctx, "builds.list_logs", "ListBuildLogs")
	v0, err := x.s.ListBuildLogs(ctx, buildID, offset, limit)
	done(err)
	return v0, err
}

// sandboxes instruments a domain.SandboxStore.
type sandboxes struct {
	s domain.SandboxStore
	h Hook
}

func (x sandboxes) CreateSandbox(ctx context.Context, s *domain.Sandbox) error {
	ctx, done := x.h(ctx, "sandboxes.create", "CreateSandbox")
	err := x.s.CreateSandbox(ctx, s)
	done(err)
	return err
}

func (x sandboxes) CreateSandboxWithinQuota(ctx context.Context, s *domain.Sandbox, q domain.Quota) error {
	ctx, done := x.h(ctx, "sandboxes.create_within_quota", "CreateSandboxWithinQuota")
	err := x.s.CreateSandboxWithinQuota(ctx, s, q)
	done(err)
	return err
}

func (x sandboxes) ResumeSandboxWithinQuota(ctx context.Context, s *domain.Sandbox, q domain.Quota) error {
	ctx, done := x.h(ctx, "sandboxes.resume_within_quota", "ResumeSandboxWithinQuota")
	err := x.s.ResumeSandboxWithinQuota(ctx, s, q)
	done(err)
	return err
}

func (x sandboxes) TeamUsage(ctx context.Context, teamID string) (domain.QuotaUsage, error) {
	ctx, done := x.h(ctx, "sandboxes.team_usage", "TeamUsage")
	v0, err := x.s.TeamUsage(ctx, teamID)
	done(err)
	return v0, err
}

func (x sandboxes) GetSandbox(ctx context.Context, teamID string, id string) (*domain.Sandbox, error) {
	ctx, done := x.h(ctx, "sandboxes.get", "GetSandbox")
	v0, err := x.s.GetSandbox(ctx, teamID, id)
	done(err)
	return v0, err
}

func (x sandboxes) UpdateSandbox(ctx context.Context, s *domain.Sandbox) error {
	ctx, done := x.h(ctx, "sandboxes.update", "UpdateSandbox")
	err := x.s.UpdateSandbox(ctx, s)
	done(err)
	return err
}

func (x sandboxes) SetSandboxNetwork(ctx context.Context, teamID string, id string, p domain.NetworkPolicy) error {
	ctx, done := x.h(ctx, "sandboxes.set_network", "SetSandboxNetwork")
	err := x.s.SetSandboxNetwork(ctx, teamID, id, p)
	done(err)
	return err
}

func (x sandboxes) ListSandboxes(ctx context.Context, f domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
	ctx, done := x.h(ctx, "sandboxes.list", "ListSandboxes")
	v0, v1, err := x.s.ListSandboxes(ctx, f)
	done(err)
	return v0, v1, err
}

func (x sandboxes) UsedSlots(ctx context.Context, nodes []string) ([]int, error) {
	ctx, done := x.h(ctx, "sandboxes.used_slots", "UsedSlots")
	v0, err := x.s.UsedSlots(ctx, nodes)
	done(err)
	return v0, err
}

// snapshots instruments a domain.SnapshotStore.
type snapshots struct {
	s domain.SnapshotStore
	h Hook
}

func (x snapshots) CreateSnapshotWithinQuota(ctx context.Context, s *domain.Snapshot, max int64) error {
	ctx, done := x.h(ctx, "snapshots.create_within_quota", "CreateSnapshotWithinQuota")
	err := x.s.CreateSnapshotWithinQuota(ctx, s, max)
	done(err)
	return err
}

func (x snapshots) GetSnapshot(ctx context.Context, teamID string, ref string) (*domain.Snapshot, error) {
	ctx, done := x.h(ctx, "snapshots.get", "GetSnapshot")
	v0, err := x.s.GetSnapshot(ctx, teamID, ref)
	done(err)
	return v0, err
}

func (x snapshots) ListSnapshots(ctx context.Context, f domain.SnapshotFilter) ([]*domain.Snapshot, string, error) {
	ctx, done := x.h(ctx, "snapshots.list", "ListSnapshots")
	v0, v1, err := x.s.ListSnapshots(ctx, f)
	done(err)
	return v0, v1, err
}

func (x snapshots) DeleteSnapshot(ctx context.Context, teamID string, id string) error {
	ctx, done := x.h(ctx, "snapshots.delete", "DeleteSnapshot")
	err := x.s.DeleteSnapshot(ctx, teamID, id)
	done(err)
	return err
}

// audit instruments a domain.AuditStore.
type audit struct {
	s domain.AuditStore
	h Hook
}

func (x audit) AppendAudit(ctx context.Context, e *domain.AuditEntry) error {
	ctx, done := x.h(ctx, "audit.append", "AppendAudit")
	err := x.s.AppendAudit(ctx, e)
	done(err)
	return err
}

func (x audit) ListAudit(ctx context.Context, f domain.AuditFilter) ([]*domain.AuditEntry, error) {
	ctx, done := x.h(ctx, "audit.list", "ListAudit")
	v0, err := x.s.ListAudit(ctx, f)
	done(err)
	return v0, err
}

// usages instruments a domain.UsageStore.
type usages struct {
	s domain.UsageStore
	h Hook
}

func (x usages) RecordUsage(ctx context.Context, m *domain.Meter, deltas []domain.UsageDelta) error {
	ctx, done := x.h(ctx, "usages.record", "RecordUsage")
	err := x.s.RecordUsage(ctx, m, deltas)
	done(err)
	return err
}

func (x usages) GetMeter(ctx context.Context, sandboxID string) (*domain.Meter, error) {
	ctx, done := x.h(ctx, "usages.get_meter", "GetMeter")
	v0, err := x.s.GetMeter(ctx, sandboxID)
	done(err)
	return v0, err
}

func (x usages) OpenMeters(ctx context.Context) ([]*domain.Meter, error) {
	ctx, done := x.h(ctx, "usages.open_meters", "OpenMeters")
	v0, err := x.s.OpenMeters(ctx)
	done(err)
	return v0, err
}

func (x usages) ListUsage(ctx context.Context, f domain.UsageFilter) ([]domain.UsageRow, error) {
	ctx, done := x.h(ctx, "usages.list", "ListUsage")
	v0, err := x.s.ListUsage(ctx, f)
	done(err)
	return v0, err
}

// invoices instruments a domain.InvoiceStore.
type invoices struct {
	s domain.InvoiceStore
	h Hook
}

func (x invoices) SaveInvoice(ctx context.Context, inv *domain.Invoice) error {
	ctx, done := x.h(ctx, "invoices.save", "SaveInvoice")
	err := x.s.SaveInvoice(ctx, inv)
	done(err)
	return err
}

func (x invoices) ListInvoices(ctx context.Context, teamID string) ([]*domain.Invoice, error) {
	ctx, done := x.h(ctx, "invoices.list", "ListInvoices")
	v0, err := x.s.ListInvoices(ctx, teamID)
	done(err)
	return v0, err
}

// nodes instruments a domain.NodeStore.
type nodes struct {
	s domain.NodeStore
	h Hook
}

func (x nodes) UpsertNode(ctx context.Context, n *domain.Node) (bool, error) {
	ctx, done := x.h(ctx, "nodes.upsert", "UpsertNode")
	v0, err := x.s.UpsertNode(ctx, n)
	done(err)
	return v0, err
}

func (x nodes) GetNode(ctx context.Context, name string) (*domain.Node, error) {
	ctx, done := x.h(ctx, "nodes.get", "GetNode")
	v0, err := x.s.GetNode(ctx, name)
	done(err)
	return v0, err
}

func (x nodes) ListNodes(ctx context.Context) ([]*domain.Node, error) {
	ctx, done := x.h(ctx, "nodes.list", "ListNodes")
	v0, err := x.s.ListNodes(ctx)
	done(err)
	return v0, err
}

func (x nodes) SetNodeState(ctx context.Context, name string, state domain.NodeState) error {
	ctx, done := x.h(ctx, "nodes.set_state", "SetNodeState")
	err := x.s.SetNodeState(ctx, name, state)
	done(err)
	return err
}

func (x nodes) MarkNodeDown(ctx context.Context, name string, staleBefore time.Time, reason string, at time.Time) (bool, int, error) {
	ctx, done := x.h(ctx, "nodes.mark_down", "MarkNodeDown")
	v0, v1, err := x.s.MarkNodeDown(ctx, name, staleBefore, reason, at)
	done(err)
	return v0, v1, err
}

// locks instruments a domain.LockStore (the taking; a lock's holding is not a call).
type locks struct {
	s domain.LockStore
	h Hook
}

func (x locks) TryLock(ctx context.Context, name string) (func(), bool, error) {
	ctx, done := x.h(ctx, "locks.try", "TryLock")
	v0, v1, err := x.s.TryLock(ctx, name)
	done(err)
	return v0, v1, err
}

// idempotency instruments a domain.IdempotencyStore.
type idempotency struct {
	s domain.IdempotencyStore
	h Hook
}

func (x idempotency) ReserveIdempotencyKey(ctx context.Context, k *domain.IdempotencyKey, pendingBefore, expiredBefore time.Time) (*domain.IdempotencyKey, error) {
	ctx, done := x.h(ctx, "idempotency.reserve", "ReserveIdempotencyKey")
	v0, err := x.s.ReserveIdempotencyKey(ctx, k, pendingBefore, expiredBefore)
	done(err)
	return v0, err
}

func (x idempotency) GetIdempotencyKey(ctx context.Context, teamID, key string) (*domain.IdempotencyKey, error) {
	ctx, done := x.h(ctx, "idempotency.get", "GetIdempotencyKey")
	v0, err := x.s.GetIdempotencyKey(ctx, teamID, key)
	done(err)
	return v0, err
}

func (x idempotency) CompleteIdempotencyKey(ctx context.Context, k *domain.IdempotencyKey) error {
	ctx, done := x.h(ctx, "idempotency.complete", "CompleteIdempotencyKey")
	err := x.s.CompleteIdempotencyKey(ctx, k)
	done(err)
	return err
}

func (x idempotency) ReleaseIdempotencyKey(ctx context.Context, k *domain.IdempotencyKey) error {
	ctx, done := x.h(ctx, "idempotency.release", "ReleaseIdempotencyKey")
	err := x.s.ReleaseIdempotencyKey(ctx, k)
	done(err)
	return err
}

func (x idempotency) DeleteIdempotencyKeys(ctx context.Context, before time.Time) (int64, error) {
	ctx, done := x.h(ctx, "idempotency.delete_expired", "DeleteIdempotencyKeys")
	v0, err := x.s.DeleteIdempotencyKeys(ctx, before)
	done(err)
	return v0, err
}
