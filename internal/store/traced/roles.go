package traced

// The store's role interfaces, one traced type each. Every method is its domain
// method inside a span named "store.<Method>".

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/warren-sh/warren/internal/domain"
)

// teams traces a domain.TeamStore.
type teams struct {
	s  domain.TeamStore
	db attribute.KeyValue
}

func (x teams) CreateTeam(ctx context.Context, t *domain.Team) error {
	ctx, span := start(ctx, "store.CreateTeam", x.db)
	err := x.s.CreateTeam(ctx, t)
	end(span, err)
	return err
}

func (x teams) GetTeam(ctx context.Context, id string) (*domain.Team, error) {
	ctx, span := start(ctx, "store.GetTeam", x.db)
	v0, err := x.s.GetTeam(ctx, id)
	end(span, err)
	return v0, err
}

func (x teams) ListTeams(ctx context.Context) ([]*domain.Team, error) {
	ctx, span := start(ctx, "store.ListTeams", x.db)
	v0, err := x.s.ListTeams(ctx)
	end(span, err)
	return v0, err
}

func (x teams) UpdateTeam(ctx context.Context, t *domain.Team) error {
	ctx, span := start(ctx, "store.UpdateTeam", x.db)
	err := x.s.UpdateTeam(ctx, t)
	end(span, err)
	return err
}

// users traces a domain.UserStore.
type users struct {
	s  domain.UserStore
	db attribute.KeyValue
}

func (x users) CreateUser(ctx context.Context, u *domain.User) error {
	ctx, span := start(ctx, "store.CreateUser", x.db)
	err := x.s.CreateUser(ctx, u)
	end(span, err)
	return err
}

func (x users) GetUser(ctx context.Context, id string) (*domain.User, error) {
	ctx, span := start(ctx, "store.GetUser", x.db)
	v0, err := x.s.GetUser(ctx, id)
	end(span, err)
	return v0, err
}

func (x users) GetUserByEmail(ctx context.Context, email string) (*domain.User, error) {
	ctx, span := start(ctx, "store.GetUserByEmail", x.db)
	v0, err := x.s.GetUserByEmail(ctx, email)
	end(span, err)
	return v0, err
}

func (x users) ListUsers(ctx context.Context, teamID string) ([]*domain.User, error) {
	ctx, span := start(ctx, "store.ListUsers", x.db)
	v0, err := x.s.ListUsers(ctx, teamID)
	end(span, err)
	return v0, err
}

func (x users) UpdateUser(ctx context.Context, u *domain.User) error {
	ctx, span := start(ctx, "store.UpdateUser", x.db)
	err := x.s.UpdateUser(ctx, u)
	end(span, err)
	return err
}

func (x users) RecordLogin(ctx context.Context, id string, at time.Time) error {
	ctx, span := start(ctx, "store.RecordLogin", x.db)
	err := x.s.RecordLogin(ctx, id, at)
	end(span, err)
	return err
}

func (x users) EndSessions(ctx context.Context, id string) (int64, error) {
	ctx, span := start(ctx, "store.EndSessions", x.db)
	v0, err := x.s.EndSessions(ctx, id)
	end(span, err)
	return v0, err
}

func (x users) DeleteUser(ctx context.Context, teamID string, id string) error {
	ctx, span := start(ctx, "store.DeleteUser", x.db)
	err := x.s.DeleteUser(ctx, teamID, id)
	end(span, err)
	return err
}

// keys traces a domain.KeyStore.
type keys struct {
	s  domain.KeyStore
	db attribute.KeyValue
}

func (x keys) CreateAPIKey(ctx context.Context, k *domain.APIKey) error {
	ctx, span := start(ctx, "store.CreateAPIKey", x.db)
	err := x.s.CreateAPIKey(ctx, k)
	end(span, err)
	return err
}

func (x keys) GetAPIKeyByHash(ctx context.Context, hash string) (*domain.APIKey, error) {
	ctx, span := start(ctx, "store.GetAPIKeyByHash", x.db)
	v0, err := x.s.GetAPIKeyByHash(ctx, hash)
	end(span, err)
	return v0, err
}

func (x keys) ListAPIKeys(ctx context.Context, teamID string) ([]*domain.APIKey, error) {
	ctx, span := start(ctx, "store.ListAPIKeys", x.db)
	v0, err := x.s.ListAPIKeys(ctx, teamID)
	end(span, err)
	return v0, err
}

func (x keys) RevokeAPIKey(ctx context.Context, teamID string, id string, at time.Time) error {
	ctx, span := start(ctx, "store.RevokeAPIKey", x.db)
	err := x.s.RevokeAPIKey(ctx, teamID, id, at)
	end(span, err)
	return err
}

func (x keys) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	ctx, span := start(ctx, "store.TouchAPIKey", x.db)
	err := x.s.TouchAPIKey(ctx, id, at)
	end(span, err)
	return err
}

// templates traces a domain.TemplateStore.
type templates struct {
	s  domain.TemplateStore
	db attribute.KeyValue
}

func (x templates) UpsertTemplate(ctx context.Context, t *domain.Template) error {
	ctx, span := start(ctx, "store.UpsertTemplate", x.db)
	err := x.s.UpsertTemplate(ctx, t)
	end(span, err)
	return err
}

func (x templates) GetTemplate(ctx context.Context, teamID, id string) (*domain.Template, error) {
	ctx, span := start(ctx, "store.GetTemplate", x.db)
	v0, err := x.s.GetTemplate(ctx, teamID, id)
	end(span, err)
	return v0, err
}

func (x templates) ListTemplates(ctx context.Context, teamID string) ([]*domain.Template, error) {
	ctx, span := start(ctx, "store.ListTemplates", x.db)
	v0, err := x.s.ListTemplates(ctx, teamID)
	end(span, err)
	return v0, err
}

func (x templates) CreateTemplateWithinQuota(ctx context.Context, t *domain.Template, q domain.Quota) error {
	ctx, span := start(ctx, "store.CreateTemplateWithinQuota", x.db)
	err := x.s.CreateTemplateWithinQuota(ctx, t, q)
	end(span, err)
	return err
}

func (x templates) UpdateTemplateWithinQuota(ctx context.Context, t *domain.Template, q domain.Quota) error {
	ctx, span := start(ctx, "store.UpdateTemplateWithinQuota", x.db)
	err := x.s.UpdateTemplateWithinQuota(ctx, t, q)
	end(span, err)
	return err
}

func (x templates) DeleteTemplate(ctx context.Context, teamID, id string) error {
	ctx, span := start(ctx, "store.DeleteTemplate", x.db)
	err := x.s.DeleteTemplate(ctx, teamID, id)
	end(span, err)
	return err
}

// builds traces a domain.TemplateBuildStore.
type builds struct {
	s  domain.TemplateBuildStore
	db attribute.KeyValue
}

func (x builds) CreateBuild(ctx context.Context, b *domain.Build) error {
	ctx, span := start(ctx, "store.CreateBuild", x.db)
	err := x.s.CreateBuild(ctx, b)
	end(span, err)
	return err
}

func (x builds) GetBuild(ctx context.Context, teamID, templateID, id string) (*domain.Build, error) {
	ctx, span := start(ctx, "store.GetBuild", x.db)
	v0, err := x.s.GetBuild(ctx, teamID, templateID, id)
	end(span, err)
	return v0, err
}

func (x builds) BeginBuild(ctx context.Context, b *domain.Build, spec domain.BuildSpec) error {
	ctx, span := start(ctx, "store.BeginBuild", x.db)
	err := x.s.BeginBuild(ctx, b, spec)
	end(span, err)
	return err
}

func (x builds) UpdateBuild(ctx context.Context, b *domain.Build) error {
	ctx, span := start(ctx, "store.UpdateBuild", x.db)
	err := x.s.UpdateBuild(ctx, b)
	end(span, err)
	return err
}

func (x builds) ListBuilds(ctx context.Context, teamID, templateID string, states ...domain.BuildState) ([]*domain.Build, error) {
	ctx, span := start(ctx, "store.ListBuilds", x.db)
	v0, err := x.s.ListBuilds(ctx, teamID, templateID, states...)
	end(span, err)
	return v0, err
}

func (x builds) DeleteBuild(ctx context.Context, teamID, id string) error {
	ctx, span := start(ctx, "store.DeleteBuild", x.db)
	err := x.s.DeleteBuild(ctx, teamID, id)
	end(span, err)
	return err
}

func (x builds) AppendBuildLogs(ctx context.Context, buildID string, first int, lines []domain.BuildLogLine) error {
	ctx, span := start(ctx, "store.AppendBuildLogs", x.db)
	err := x.s.AppendBuildLogs(ctx, buildID, first, lines)
	end(span, err)
	return err
}

func (x builds) ListBuildLogs(ctx context.Context, buildID string, offset, limit int) ([]domain.BuildLogLine, error) {
	ctx, span := start(ctx, "store.ListBuildLogs", x.db)
	v0, err := x.s.ListBuildLogs(ctx, buildID, offset, limit)
	end(span, err)
	return v0, err
}

// sandboxes traces a domain.SandboxStore.
type sandboxes struct {
	s  domain.SandboxStore
	db attribute.KeyValue
}

func (x sandboxes) CreateSandbox(ctx context.Context, s *domain.Sandbox) error {
	ctx, span := start(ctx, "store.CreateSandbox", x.db)
	err := x.s.CreateSandbox(ctx, s)
	end(span, err)
	return err
}

func (x sandboxes) CreateSandboxWithinQuota(ctx context.Context, s *domain.Sandbox, q domain.Quota) error {
	ctx, span := start(ctx, "store.CreateSandboxWithinQuota", x.db)
	err := x.s.CreateSandboxWithinQuota(ctx, s, q)
	end(span, err)
	return err
}

func (x sandboxes) ResumeSandboxWithinQuota(ctx context.Context, s *domain.Sandbox, q domain.Quota) error {
	ctx, span := start(ctx, "store.ResumeSandboxWithinQuota", x.db)
	err := x.s.ResumeSandboxWithinQuota(ctx, s, q)
	end(span, err)
	return err
}

func (x sandboxes) TeamUsage(ctx context.Context, teamID string) (domain.QuotaUsage, error) {
	ctx, span := start(ctx, "store.TeamUsage", x.db)
	v0, err := x.s.TeamUsage(ctx, teamID)
	end(span, err)
	return v0, err
}

func (x sandboxes) GetSandbox(ctx context.Context, teamID string, id string) (*domain.Sandbox, error) {
	ctx, span := start(ctx, "store.GetSandbox", x.db)
	v0, err := x.s.GetSandbox(ctx, teamID, id)
	end(span, err)
	return v0, err
}

func (x sandboxes) UpdateSandbox(ctx context.Context, s *domain.Sandbox) error {
	ctx, span := start(ctx, "store.UpdateSandbox", x.db)
	err := x.s.UpdateSandbox(ctx, s)
	end(span, err)
	return err
}

func (x sandboxes) SetSandboxNetwork(ctx context.Context, teamID string, id string, p domain.NetworkPolicy) error {
	ctx, span := start(ctx, "store.SetSandboxNetwork", x.db)
	err := x.s.SetSandboxNetwork(ctx, teamID, id, p)
	end(span, err)
	return err
}

func (x sandboxes) ListSandboxes(ctx context.Context, f domain.SandboxFilter) ([]*domain.Sandbox, string, error) {
	ctx, span := start(ctx, "store.ListSandboxes", x.db)
	v0, v1, err := x.s.ListSandboxes(ctx, f)
	end(span, err)
	return v0, v1, err
}

func (x sandboxes) UsedSlots(ctx context.Context) ([]int, error) {
	ctx, span := start(ctx, "store.UsedSlots", x.db)
	v0, err := x.s.UsedSlots(ctx)
	end(span, err)
	return v0, err
}

// snapshots traces a domain.SnapshotStore.
type snapshots struct {
	s  domain.SnapshotStore
	db attribute.KeyValue
}

func (x snapshots) CreateSnapshotWithinQuota(ctx context.Context, s *domain.Snapshot, max int64) error {
	ctx, span := start(ctx, "store.CreateSnapshotWithinQuota", x.db)
	err := x.s.CreateSnapshotWithinQuota(ctx, s, max)
	end(span, err)
	return err
}

func (x snapshots) GetSnapshot(ctx context.Context, teamID string, ref string) (*domain.Snapshot, error) {
	ctx, span := start(ctx, "store.GetSnapshot", x.db)
	v0, err := x.s.GetSnapshot(ctx, teamID, ref)
	end(span, err)
	return v0, err
}

func (x snapshots) ListSnapshots(ctx context.Context, f domain.SnapshotFilter) ([]*domain.Snapshot, string, error) {
	ctx, span := start(ctx, "store.ListSnapshots", x.db)
	v0, v1, err := x.s.ListSnapshots(ctx, f)
	end(span, err)
	return v0, v1, err
}

func (x snapshots) DeleteSnapshot(ctx context.Context, teamID string, id string) error {
	ctx, span := start(ctx, "store.DeleteSnapshot", x.db)
	err := x.s.DeleteSnapshot(ctx, teamID, id)
	end(span, err)
	return err
}

// audit traces a domain.AuditStore.
type audit struct {
	s  domain.AuditStore
	db attribute.KeyValue
}

func (x audit) AppendAudit(ctx context.Context, e *domain.AuditEntry) error {
	ctx, span := start(ctx, "store.AppendAudit", x.db)
	err := x.s.AppendAudit(ctx, e)
	end(span, err)
	return err
}

func (x audit) ListAudit(ctx context.Context, f domain.AuditFilter) ([]*domain.AuditEntry, error) {
	ctx, span := start(ctx, "store.ListAudit", x.db)
	v0, err := x.s.ListAudit(ctx, f)
	end(span, err)
	return v0, err
}

// usages traces a domain.UsageStore.
type usages struct {
	s  domain.UsageStore
	db attribute.KeyValue
}

func (x usages) RecordUsage(ctx context.Context, m *domain.Meter, deltas []domain.UsageDelta) error {
	ctx, span := start(ctx, "store.RecordUsage", x.db)
	err := x.s.RecordUsage(ctx, m, deltas)
	end(span, err)
	return err
}

func (x usages) GetMeter(ctx context.Context, sandboxID string) (*domain.Meter, error) {
	ctx, span := start(ctx, "store.GetMeter", x.db)
	v0, err := x.s.GetMeter(ctx, sandboxID)
	end(span, err)
	return v0, err
}

func (x usages) OpenMeters(ctx context.Context) ([]*domain.Meter, error) {
	ctx, span := start(ctx, "store.OpenMeters", x.db)
	v0, err := x.s.OpenMeters(ctx)
	end(span, err)
	return v0, err
}

func (x usages) ListUsage(ctx context.Context, f domain.UsageFilter) ([]domain.UsageRow, error) {
	ctx, span := start(ctx, "store.ListUsage", x.db)
	v0, err := x.s.ListUsage(ctx, f)
	end(span, err)
	return v0, err
}

// invoices traces a domain.InvoiceStore.
type invoices struct {
	s  domain.InvoiceStore
	db attribute.KeyValue
}

func (x invoices) SaveInvoice(ctx context.Context, inv *domain.Invoice) error {
	ctx, span := start(ctx, "store.SaveInvoice", x.db)
	err := x.s.SaveInvoice(ctx, inv)
	end(span, err)
	return err
}

func (x invoices) ListInvoices(ctx context.Context, teamID string) ([]*domain.Invoice, error) {
	ctx, span := start(ctx, "store.ListInvoices", x.db)
	v0, err := x.s.ListInvoices(ctx, teamID)
	end(span, err)
	return v0, err
}
