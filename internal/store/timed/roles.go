package timed

// The store's role interfaces, one timed type each. Every method is its domain
// method, its duration observed as "<role>.<method>".

import (
	"context"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// teams times a domain.TeamStore.
type teams struct {
	s domain.TeamStore
	o observe
}

func (x teams) CreateTeam(ctx context.Context, t *domain.Team) error {
	t0 := time.Now()
	err := x.s.CreateTeam(ctx, t)
	x.o("teams.create", t0)
	return err
}

func (x teams) GetTeam(ctx context.Context, id string) (*domain.Team, error) {
	t0 := time.Now()
	v0, err := x.s.GetTeam(ctx, id)
	x.o("teams.get", t0)
	return v0, err
}

func (x teams) ListTeams(ctx context.Context) ([]*domain.Team, error) {
	t0 := time.Now()
	v0, err := x.s.ListTeams(ctx)
	x.o("teams.list", t0)
	return v0, err
}

func (x teams) UpdateTeam(ctx context.Context, t *domain.Team) error {
	t0 := time.Now()
	err := x.s.UpdateTeam(ctx, t)
	x.o("teams.update", t0)
	return err
}

// users times a domain.UserStore.
type users struct {
	s domain.UserStore
	o observe
}

func (x users) CreateUser(ctx context.Context, u *domain.User) error {
	t0 := time.Now()
	err := x.s.CreateUser(ctx, u)
	x.o("users.create", t0)
	return err
}

func (x users) GetUser(ctx context.Context, id string) (*domain.User, error) {
	t0 := time.Now()
	v0, err := x.s.GetUser(ctx, id)
	x.o("users.get", t0)
	return v0, err
}

func (x users) GetUserByEmail(ctx context.Context, email string) (*domain.User, error) {
	t0 := time.Now()
	v0, err := x.s.GetUserByEmail(ctx, email)
	x.o("users.get_by_email", t0)
	return v0, err
}

func (x users) ListUsers(ctx context.Context, teamID string) ([]*domain.User, error) {
	t0 := time.Now()
	v0, err := x.s.ListUsers(ctx, teamID)
	x.o("users.list", t0)
	return v0, err
}

func (x users) UpdateUser(ctx context.Context, u *domain.User) error {
	t0 := time.Now()
	err := x.s.UpdateUser(ctx, u)
	x.o("users.update", t0)
	return err
}

func (x users) RecordLogin(ctx context.Context, id string, at time.Time) error {
	t0 := time.Now()
	err := x.s.RecordLogin(ctx, id, at)
	x.o("users.record_login", t0)
	return err
}

func (x users) EndSessions(ctx context.Context, id string) (int64, error) {
	t0 := time.Now()
	v0, err := x.s.EndSessions(ctx, id)
	x.o("users.end_sessions", t0)
	return v0, err
}

func (x users) DeleteUser(ctx context.Context, teamID string, id string) error {
	t0 := time.Now()
	err := x.s.DeleteUser(ctx, teamID, id)
	x.o("users.delete", t0)
	return err
}

// keys times a domain.KeyStore.
type keys struct {
	s domain.KeyStore
	o observe
}

func (x keys) CreateAPIKey(ctx context.Context, k *domain.APIKey) error {
	t0 := time.Now()
	err := x.s.CreateAPIKey(ctx, k)
	x.o("keys.create", t0)
	return err
}

func (x keys) GetAPIKeyByHash(ctx context.Context, hash string) (*domain.APIKey, error) {
	t0 := time.Now()
	v0, err := x.s.GetAPIKeyByHash(ctx, hash)
	x.o("keys.get_by_hash", t0)
	return v0, err
}

func (x keys) ListAPIKeys(ctx context.Context, teamID string) ([]*domain.APIKey, error) {
	t0 := time.Now()
	v0, err := x.s.ListAPIKeys(ctx, teamID)
	x.o("keys.list", t0)
	return v0, err
}

func (x keys) RevokeAPIKey(ctx context.Context, teamID string, id string, at time.Time) error {
	t0 := time.Now()
	err := x.s.RevokeAPIKey(ctx, teamID, id, at)
	x.o("keys.revoke", t0)
	return err
}

func (x keys) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	t0 := time.Now()
	err := x.s.TouchAPIKey(ctx, id, at)
	x.o("keys.touch", t0)
	return err
}

// templates times a domain.TemplateStore.
type templates struct {
	s domain.TemplateStore
	o observe
}

func (x templates) UpsertTemplate(ctx context.Context, t *domain.Template) error {
	t0 := time.Now()
	err := x.s.UpsertTemplate(ctx, t)
	x.o("templates.upsert", t0)
	return err
}

func (x templates) GetTemplate(ctx context.Context, teamID, id string) (*domain.Template, error) {
	t0 := time.Now()
	v0, err := x.s.GetTemplate(ctx, teamID, id)
	x.o("templates.get", t0)
	return v0, err
}

func (x templates) ListTemplates(ctx context.Context, teamID string) ([]*domain.Template, error) {
	t0 := time.Now()
	v0, err := x.s.ListTemplates(ctx, teamID)
	x.o("templates.list", t0)
	return v0, err
}

func (x templates) CreateTemplateWithinQuota(ctx context.Context, t *domain.Template, q domain.Quota) error {
	t0 := time.Now()
	err := x.s.CreateTemplateWithinQuota(ctx, t, q)
	x.o("templates.create_within_quota", t0)
	return err
}

func (x templates) UpdateTemplateWithinQuota(ctx context.Context, t *domain.Template, q domain.Quota) error {
	t0 := time.Now()
	err := x.s.UpdateTemplateWithinQuota(ctx, t, q)
	x.o("templates.update_within_quota", t0)
	return err
}

func (x templates) DeleteTemplate(ctx context.Context, teamID, id string) error {
	t0 := time.Now()
	err := x.s.DeleteTemplate(ctx, teamID, id)
	x.o("templates.delete", t0)
	return err
}

// builds times a domain.TemplateBuildStore.
type builds struct {
	s domain.TemplateBuildStore
	o observe
}

func (x builds) CreateBuild(ctx context.Context, b *domain.Build) error {
	t0 := time.Now()
	err := x.s.CreateBuild(ctx, b)
	x.o("builds.create", t0)
	return err
}

func (x builds) GetBuild(ctx context.Context, teamID, templateID, id string) (*domain.Build, error) {
	t0 := time.Now()
	v0, err := x.s.GetBuild(ctx, teamID, templateID, id)
	x.o("builds.get", t0)
	return v0, err
}

func (x builds) BeginBuild(ctx context.Context, b *domain.Build, spec domain.BuildSpec) error {
	t0 := time.Now()
	err := x.s.BeginBuild(ctx, b, spec)
	x.o("builds.begin", t0)
	return err
}

func (x builds) UpdateBuild(ctx context.Context, b *domain.Build) error {
	t0 := time.Now()
	err := x.s.UpdateBuild(ctx, b)
	x.o("builds.update", t0)
	return err
}

func (x builds) ListBuilds(ctx context.Context, teamID, templateID string, states ...domain.BuildState) ([]*domain.Build, error) {
	t0 := time.Now()
	v0, err := x.s.ListBuilds(ctx, teamID, templateID, states...)
	x.o("builds.list", t0)
	return v0, err
}

func (x builds) DeleteBuild(ctx context.Context, teamID, id string) error {
	t0 := time.Now()
	err := x.s.DeleteBuild(ctx, teamID, id)
	x.o("builds.delete", t0)
	return err
}

func (x builds) AppendBuildLogs(ctx context.Context, buildID string, first int, lines []domain.BuildLogLine) error {
	t0 := time.Now()
	err := x.s.AppendBuildLogs(ctx, buildID, first, lines)
	x.o("builds.append_logs", t0)
	return err
}

func (x builds) ListBuildLogs(ctx context.Context, buildID string, offset, limit int) ([]domain.BuildLogLine, error) {
	t0 := time.Now()
	v0, err := x.s.ListBuildLogs(ctx, buildID, offset, limit)
	x.o("builds.list_logs", t0)
	return v0, err
}

// sandboxes times a domain.SandboxStore.
type sandboxes struct {
	s domain.SandboxStore
	o observe
}

func (x sandboxes) CreateSandbox(ctx context.Context, s *domain.Sandbox) error {
	t0 := time.Now()
	err := x.s.CreateSandbox(ctx, s)
	x.o("sandboxes.create", t0)
	return err
}

func (x sandboxes) CreateSandboxWithinQuota(ctx context.Context, s *domain.Sandbox, q domain.Quota) error {
	t0 := time.Now()
	err := x.s.CreateSandboxWithinQuota(ctx, s, q)
	x.o("sandboxes.create_within_quota", t0)
	return err
}

func (x sandboxes) ResumeSandboxWithinQuota(ctx context.Context, s *domain.Sandbox, q domain.Quota) error {
	t0 := time.Now()
	err := x.s.ResumeSandboxWithinQuota(ctx, s, q)
	x.o("sandboxes.resume_within_quota", t0)
	return err
}

func (x sandboxes) TeamUsage(ctx context.Context, teamID string) (domain.QuotaUsage, error) {
	t0 := time.Now()
	v0, err := x.s.TeamUsage(ctx, teamID)
	x.o("sandboxes.team_usage", t0)
	return v0, err
}

func (x sandboxes) GetSandbox(ctx context.Context, teamID string, id string) (*domain.Sandbox, error) {
	t0 := time.Now()
	v0, err := x.s.GetSandbox(ctx, teamID, id)
	x.o("sandboxes.get", t0)
	return v0, err
}

func (x sandboxes) UpdateSandbox(ctx context.Context, s *domain.Sandbox) error {
	t0 := time.Now()
	err := x.s.UpdateSandbox(ctx, s)
	x.o("sandboxes.update", t0)
	return err
}

func (x sandboxes) SetSandboxNetwork(ctx context.Context, teamID string, id string, p domain.NetworkPolicy) error {
	t0 := time.Now()
	err := x.s.SetSandboxNetwork(ctx, teamID, id, p)
	x.o("sandboxes.set_network", t0)
	return err
}

func (x sandboxes) ListSandboxes(ctx context.Context, f domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
	t0 := time.Now()
	v0, v1, err := x.s.ListSandboxes(ctx, f)
	x.o("sandboxes.list", t0)
	return v0, v1, err
}

func (x sandboxes) UsedSlots(ctx context.Context) ([]int, error) {
	t0 := time.Now()
	v0, err := x.s.UsedSlots(ctx)
	x.o("sandboxes.used_slots", t0)
	return v0, err
}

// snapshots times a domain.SnapshotStore.
type snapshots struct {
	s domain.SnapshotStore
	o observe
}

func (x snapshots) CreateSnapshotWithinQuota(ctx context.Context, s *domain.Snapshot, max int64) error {
	t0 := time.Now()
	err := x.s.CreateSnapshotWithinQuota(ctx, s, max)
	x.o("snapshots.create_within_quota", t0)
	return err
}

func (x snapshots) GetSnapshot(ctx context.Context, teamID string, ref string) (*domain.Snapshot, error) {
	t0 := time.Now()
	v0, err := x.s.GetSnapshot(ctx, teamID, ref)
	x.o("snapshots.get", t0)
	return v0, err
}

func (x snapshots) ListSnapshots(ctx context.Context, f domain.SnapshotFilter) ([]*domain.Snapshot, string, error) {
	t0 := time.Now()
	v0, v1, err := x.s.ListSnapshots(ctx, f)
	x.o("snapshots.list", t0)
	return v0, v1, err
}

func (x snapshots) DeleteSnapshot(ctx context.Context, teamID string, id string) error {
	t0 := time.Now()
	err := x.s.DeleteSnapshot(ctx, teamID, id)
	x.o("snapshots.delete", t0)
	return err
}

// audit times a domain.AuditStore.
type audit struct {
	s domain.AuditStore
	o observe
}

func (x audit) AppendAudit(ctx context.Context, e *domain.AuditEntry) error {
	t0 := time.Now()
	err := x.s.AppendAudit(ctx, e)
	x.o("audit.append", t0)
	return err
}

func (x audit) ListAudit(ctx context.Context, f domain.AuditFilter) ([]*domain.AuditEntry, error) {
	t0 := time.Now()
	v0, err := x.s.ListAudit(ctx, f)
	x.o("audit.list", t0)
	return v0, err
}

// usages times a domain.UsageStore.
type usages struct {
	s domain.UsageStore
	o observe
}

func (x usages) RecordUsage(ctx context.Context, m *domain.Meter, deltas []domain.UsageDelta) error {
	t0 := time.Now()
	err := x.s.RecordUsage(ctx, m, deltas)
	x.o("usages.record", t0)
	return err
}

func (x usages) GetMeter(ctx context.Context, sandboxID string) (*domain.Meter, error) {
	t0 := time.Now()
	v0, err := x.s.GetMeter(ctx, sandboxID)
	x.o("usages.get_meter", t0)
	return v0, err
}

func (x usages) OpenMeters(ctx context.Context) ([]*domain.Meter, error) {
	t0 := time.Now()
	v0, err := x.s.OpenMeters(ctx)
	x.o("usages.open_meters", t0)
	return v0, err
}

func (x usages) ListUsage(ctx context.Context, f domain.UsageFilter) ([]domain.UsageRow, error) {
	t0 := time.Now()
	v0, err := x.s.ListUsage(ctx, f)
	x.o("usages.list", t0)
	return v0, err
}

// invoices times a domain.InvoiceStore.
type invoices struct {
	s domain.InvoiceStore
	o observe
}

func (x invoices) SaveInvoice(ctx context.Context, inv *domain.Invoice) error {
	t0 := time.Now()
	err := x.s.SaveInvoice(ctx, inv)
	x.o("invoices.save", t0)
	return err
}

func (x invoices) ListInvoices(ctx context.Context, teamID string) ([]*domain.Invoice, error) {
	t0 := time.Now()
	v0, err := x.s.ListInvoices(ctx, teamID)
	x.o("invoices.list", t0)
	return v0, err
}
