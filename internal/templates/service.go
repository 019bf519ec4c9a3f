// Package templates is templates as a team's property (domain.TemplateService): a team
// sees the built-ins and its own templates, builds its own from a domain.BuildSpec in
// the background through a domain.StepBuilder (the layer engine), and keeps within its
// quota on how many templates it has and how much disk they take. Another team's
// template, build, logs and files are KindNotFound everywhere.
//
// A build goes waiting (CreateBuild; files are uploaded with PutFiles) → building
// (StartBuild) → ready or error. Its log lines are written to the store as they come, a
// bounded number per build; its step results to the build's row. Only a ready build
// changes the template's row (root filesystem, size, start command and defaults): a
// failed build leaves the previous ready build what sandboxes start from. A server that
// restarts marks the builds that were running as failed (Recover).
package templates

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/template/oci"
)

// Store is what the service keeps in the database (a domain.Store has it all).
type Store interface {
	GetTeam(ctx context.Context, id string) (*domain.Team, error)
	domain.TemplateStore
	domain.TemplateBuildStore
	ListSandboxes(ctx context.Context, f domain.SandboxFilter) ([]*domain.Sandbox, string, error)
	GetSnapshot(ctx context.Context, teamID, ref string) (*domain.Snapshot, error)
}

// ImagePuller pulls an OCI image and unpacks it (oci.Puller).
type ImagePuller interface {
	Pull(ctx context.Context, ref string) (*oci.Image, error)
}

// Config is the service's dependencies and limits. Zero limits take the defaults.
type Config struct {
	Store Store
	// Builder runs builds; nil refuses builds with a KindUnavailable error.
	Builder domain.StepBuilder
	// Images pulls a build's FromImage; nil refuses image parents (KindUnavailable).
	Images ImagePuller
	// FilesDir holds uploaded build files, <FilesDir>/<team>/<sha256>.
	FilesDir string
	// MaxFileBytes bounds one uploaded archive (default 1 GiB), TeamFilesBytes all of a
	// team's (default 4 GiB).
	MaxFileBytes, TeamFilesBytes int64
	// BuildTimeout bounds a build whose spec names no timeout, and caps those that do
	// (default 1 h).
	BuildTimeout time.Duration
	// MaxConcurrent builds run at once on this server (default 2); others wait.
	MaxConcurrent int
	// MaxLogLines is how many log lines a build keeps (default 10,000: the first 80% and
	// the last 20%); MaxLineBytes bounds one line (default 4 KiB).
	MaxLogLines, MaxLineBytes int
	// KeepBuilds is how many builds of a template are kept (default 20).
	KeepBuilds int
	// MaxLimits are the server's maxima for a sandbox (zero fields: none): a template's
	// own limits may not exceed them.
	MaxLimits domain.Limits
	Log       *slog.Logger
	Now       func() time.Time
}

// Service is the domain.TemplateService.
type Service struct {
	cfg   Config
	log   *slog.Logger
	slots chan struct{}

	ctx    context.Context // ends at Close: the builds' lifetime, never a request's
	cancel context.CancelFunc
	wg     sync.WaitGroup
	bus    bus
}

var _ domain.TemplateService = (*Service)(nil)

// New returns the service; Close stops its builds.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("templates: no store")
	}
	if cfg.FilesDir == "" {
		return nil, errors.New("templates: no files directory")
	}
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = 1 << 30
	}
	if cfg.TeamFilesBytes <= 0 {
		cfg.TeamFilesBytes = 4 << 30
	}
	if cfg.BuildTimeout <= 0 {
		cfg.BuildTimeout = time.Hour
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 2
	}
	if cfg.MaxLogLines <= 0 {
		cfg.MaxLogLines = 10000
	}
	if cfg.MaxLineBytes <= 0 {
		cfg.MaxLineBytes = 4 << 10
	}
	if cfg.KeepBuilds <= 0 {
		cfg.KeepBuilds = 20
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, log: cfg.Log.With(logkey.Subsystem, "templates"), slots: make(chan struct{}, cfg.MaxConcurrent),
		ctx: ctx, cancel: cancel}, nil
}

// Close cancels the running builds (each is marked failed) and waits for them.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

// ErrRestart is the reason of a build a server restart cut off.
const ErrRestart = "interrupted by a server restart; start the build again"

// Recover marks the builds that were building when the server stopped as failed.
func (s *Service) Recover(ctx context.Context) (int, error) {
	bs, err := s.cfg.Store.ListBuilds(ctx, domain.AnyTeam, "", domain.BuildBuilding)
	if err != nil {
		return 0, err
	}
	for _, b := range bs {
		b.State, b.Reason, b.FinishedAt = domain.BuildError, ErrRestart, s.cfg.Now().UTC()
		if err := s.cfg.Store.UpdateBuild(ctx, b); err != nil {
			return 0, fmt.Errorf("marking build %s failed: %w", b.ID, err)
		}
		s.log.InfoContext(ctx, "template build interrupted by a restart", logkey.BuildID, b.ID, logkey.Template, b.TemplateID,
			logkey.TeamID, b.TeamID)
	}
	return len(bs), nil
}

// namePattern is what a team's template may be called: an E2B alias (lowercase
// letters, digits, '-' and '_'), which also keeps it DNS- and path-safe.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func checkName(name string) error {
	switch {
	case !namePattern.MatchString(name):
		return domain.Invalid("name", "template name %q is not valid: use 1 to 63 lowercase letters, digits, '-' and '_', starting with a letter or digit", name)
	case strings.HasPrefix(name, domain.SnapshotIDPrefix):
		return domain.Invalid("name", "template names may not start with %q (snapshot ids do)", domain.SnapshotIDPrefix)
	}
	return nil
}

// ListTemplates implements domain.TemplateService: the built-ins and the team's own.
func (s *Service) ListTemplates(ctx context.Context, p domain.Principal) ([]*domain.Template, error) {
	if err := p.Need(domain.ScopeSandboxesRead); err != nil {
		return nil, err
	}
	return s.cfg.Store.ListTemplates(ctx, p.TeamID)
}

// GetTemplate implements domain.TemplateService.
func (s *Service) GetTemplate(ctx context.Context, p domain.Principal, id string) (*domain.Template, error) {
	if err := p.Need(domain.ScopeSandboxesRead); err != nil {
		return nil, err
	}
	return s.cfg.Store.GetTemplate(ctx, p.TeamID, id)
}

// own returns the team's own template id: another team's is KindNotFound, a built-in
// KindInvalid (it cannot be built, fed files or deleted).
func (s *Service) own(ctx context.Context, p domain.Principal, id string) (*domain.Template, error) {
	if p.TeamID == "" || p.TeamID == domain.AnyTeam {
		return nil, domain.Errorf(domain.KindForbidden, "template builds belong to a team: use a team's API key")
	}
	tpl, err := s.cfg.Store.GetTemplate(ctx, p.TeamID, id)
	if err != nil {
		return nil, err
	}
	if tpl.TeamID == "" {
		return nil, domain.Invalid("template", "%q is a built-in template: it cannot be changed; build a template of your own (from_template %q)", id, id)
	}
	return tpl, nil
}

// DeleteTemplate implements domain.TemplateService. A template is not deleted while
// sandboxes of it run or are paused, or while a build of it runs (KindConflict). Its
// root filesystem belongs to the layer builder's cache, which shares layers between
// templates; only the row, its builds and their logs go.
func (s *Service) DeleteTemplate(ctx context.Context, p domain.Principal, id string) error {
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return err
	}
	if _, err := s.own(ctx, p, id); err != nil {
		return err
	}
	if err := inUse(ctx, s, p.TeamID, id); err != nil {
		return err
	}
	tags, err := s.cfg.Store.ListTemplateTags(ctx, p.TeamID, id)
	if err != nil {
		return err
	}
	for _, t := range tags {
		if err := inUse(ctx, s, p.TeamID, t.ID); err != nil {
			return err
		}
	}
	running, err := s.cfg.Store.ListBuilds(ctx, p.TeamID, id, domain.BuildBuilding)
	if err != nil {
		return err
	}
	if len(running) > 0 {
		return domain.Errorf(domain.KindConflict, "a build of template %q runs (%s): wait for it to end, then delete the template", id, running[0].ID)
	}
	if err := s.cfg.Store.DeleteTemplate(ctx, p.TeamID, id); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "template deleted", logkey.Template, id, logkey.TeamID, p.TeamID)
	dropFiles(ctx, s, p.TeamID)
	return nil
}

// inUse is a KindConflict error when sandboxes of the team's template (or tag) id run or
// are paused.
func inUse(ctx context.Context, s *Service, teamID, id string) error {
	live, _, err := s.cfg.Store.ListSandboxes(ctx, domain.SandboxFilter{TeamID: teamID, TemplateID: id,
		States: []domain.SandboxState{domain.StateStarting, domain.StateRunning, domain.StatePaused}, Limit: 1})
	if err != nil {
		return err
	}
	if len(live) > 0 {
		return domain.Errorf(domain.KindConflict, "template %q has sandboxes that run or are paused (%s, ...): kill them first, then delete the template",
			id, live[0].ID)
	}
	return nil
}

// dropFiles removes the team's uploaded build files once it has no template of its
// own left (uploads are shared by the team's builds, so they go with the last one).
func dropFiles(ctx context.Context, s *Service, teamID string) {
	ts, err := s.cfg.Store.ListTemplates(ctx, teamID)
	if err != nil {
		s.log.WarnContext(ctx, "listing templates to drop build files", logkey.TeamID, teamID, logkey.Err, err)
		return
	}
	for _, t := range ts {
		if t.TeamID == teamID {
			return
		}
	}
	if err := os.RemoveAll(teamDir(s.cfg.FilesDir, teamID)); err != nil {
		s.log.WarnContext(ctx, "removing the team's build files", logkey.TeamID, teamID, logkey.Err, err)
	}
}
