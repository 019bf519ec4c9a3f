package templates

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// BuildIDPrefix starts every build id.
const BuildIDPrefix = "bld_"

// errNoBuilder is the refusal of a server without the layer builder.
var errNoBuilder = domain.Errorf(domain.KindUnavailable,
	"template builds need the layer builder, which this server does not have; ask the operator")

// CreateBuild implements domain.TemplateService: the team's template name (registered
// now within the team's quota if it is new) gets a waiting build.
func (s *Service) CreateBuild(ctx context.Context, p domain.Principal, name string, o domain.BuildOptions) (*domain.Template, *domain.Build, error) {
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return nil, nil, err
	}
	if s.cfg.Builder == nil {
		return nil, nil, errNoBuilder
	}
	if err := checkName(name); err != nil {
		return nil, nil, err
	}
	if err := checkLimits(o.Limits, s.cfg.MaxLimits); err != nil {
		return nil, nil, err
	}
	tags, err := checkTags(o.Tags)
	if err != nil {
		return nil, nil, err
	}
	tpl, err := s.own(ctx, p, name)
	if domain.IsKind(err, domain.KindNotFound) {
		tpl, err = s.register(ctx, p, name)
	}
	if err != nil {
		return nil, nil, err
	}
	b := &domain.Build{ID: BuildIDPrefix + domain.NewID(16), TemplateID: tpl.ID, TeamID: p.TeamID,
		State: domain.BuildWaiting, CreatedAt: s.cfg.Now().UTC(), Limits: o.Limits, Tags: tags}
	if err := s.cfg.Store.CreateBuild(ctx, b); err != nil {
		return nil, nil, err
	}
	prune(ctx, s, p.TeamID, tpl.ID)
	return tpl, b, nil
}

// register adds the team's new template, not ready, within its quota.
func (s *Service) register(ctx context.Context, p domain.Principal, name string) (*domain.Template, error) {
	if _, err := s.cfg.Store.GetSnapshot(ctx, p.TeamID, name); err == nil {
		return nil, domain.Errorf(domain.KindConflict, "the team has a snapshot named %q; choose another name for the template", name)
	}
	team, err := s.cfg.Store.GetTeam(ctx, p.TeamID)
	if err != nil {
		return nil, err
	}
	tpl := &domain.Template{ID: name, TeamID: p.TeamID, Description: "built by team " + p.TeamID, CreatedAt: s.cfg.Now().UTC()}
	if err := s.cfg.Store.CreateTemplateWithinQuota(ctx, tpl, team.Quota); err != nil {
		return nil, err
	}
	return tpl, nil
}

// refused ends the waiting build b of tpl that StartBuild refused with err, and returns
// err. The build becomes an error with err's message. A template that was never built
// and has no other build waiting or running is removed with it: it was registered for
// this build alone (E2B's POST /v3/templates comes before the steps), and would
// otherwise count toward the team's template quota for nothing.
func refused(ctx context.Context, s *Service, tpl *domain.Template, b *domain.Build, err error) error {
	b.State, b.Reason, b.FinishedAt = domain.BuildError, domain.PublicMessage(err), s.cfg.Now().UTC()
	if uerr := s.cfg.Store.UpdateBuild(ctx, b); uerr != nil {
		s.log.WarnContext(ctx, "ending a refused build", logkey.BuildID, b.ID, logkey.Err, uerr)
		return err
	}
	if tpl.Ready || tpl.RootFS != "" {
		return err
	}
	bs, lerr := s.cfg.Store.ListBuilds(ctx, tpl.TeamID, tpl.ID)
	if lerr != nil {
		s.log.WarnContext(ctx, "listing builds of a refused template", logkey.Template, tpl.ID, logkey.Err, lerr)
		return err
	}
	for _, o := range bs {
		if o.ID != b.ID && (o.State == domain.BuildWaiting || o.State == domain.BuildBuilding) {
			return err
		}
	}
	if derr := s.cfg.Store.DeleteTemplate(ctx, tpl.TeamID, tpl.ID); derr != nil && !domain.IsKind(derr, domain.KindNotFound) {
		s.log.WarnContext(ctx, "removing a template whose only build was refused", logkey.Template, tpl.ID, logkey.Err, derr)
	}
	return err
}

// prune removes the template's oldest finished builds beyond KeepBuilds.
func prune(ctx context.Context, s *Service, teamID, tplID string) {
	bs, err := s.cfg.Store.ListBuilds(ctx, teamID, tplID)
	if err != nil {
		s.log.WarnContext(ctx, "listing builds to prune", logkey.Template, tplID, logkey.Err, err)
		return
	}
	kept := 0
	for _, b := range bs {
		if kept++; kept <= s.cfg.KeepBuilds || b.State == domain.BuildBuilding {
			continue
		}
		if err := s.cfg.Store.DeleteBuild(ctx, teamID, b.ID); err != nil && !domain.IsKind(err, domain.KindNotFound) {
			s.log.WarnContext(ctx, "pruning a build", logkey.BuildID, b.ID, logkey.Err, err)
		}
	}
}

// GetBuild implements domain.TemplateService.
func (s *Service) GetBuild(ctx context.Context, p domain.Principal, templateID, buildID string) (*domain.Build, error) {
	if err := p.Need(domain.ScopeSandboxesRead); err != nil {
		return nil, err
	}
	if p.TeamID == "" || p.TeamID == domain.AnyTeam {
		return nil, domain.NotFound("build", buildID)
	}
	return s.cfg.Store.GetBuild(ctx, p.TeamID, templateID, buildID)
}

// ListBuilds implements domain.TemplateService: the team's builds of templateID, which
// must be a template the team sees (another team's is KindNotFound; a built-in, built
// by the server, has no builds of the team's).
func (s *Service) ListBuilds(ctx context.Context, p domain.Principal, templateID string) ([]*domain.Build, error) {
	if err := p.Need(domain.ScopeSandboxesRead); err != nil {
		return nil, err
	}
	tpl, err := s.cfg.Store.GetTemplate(ctx, p.TeamID, templateID)
	if err != nil {
		return nil, err
	}
	if tpl.TeamID == "" || p.TeamID == "" || p.TeamID == domain.AnyTeam {
		return []*domain.Build{}, nil
	}
	return s.cfg.Store.ListBuilds(ctx, p.TeamID, tpl.ID)
}

// checkSpec validates spec for the team's template tplID and fills in its name.
func (s *Service) checkSpec(ctx context.Context, p domain.Principal, tplID string, spec *domain.BuildSpec) error {
	spec.Name = tplID
	switch {
	case spec.FromTemplate == "" && spec.FromImage == "":
		return domain.Invalid("from_template", "a build needs a parent: from_template (a template id, such as base) or from_image (an OCI image reference)")
	case spec.FromTemplate != "" && spec.FromImage != "":
		return domain.Invalid("from_template", "give from_template or from_image, not both")
	case spec.FromImage != "" && s.cfg.Images == nil:
		return domain.Errorf(domain.KindUnavailable, "this server cannot pull images; build from a template (from_template), or ask the operator")
	case len(spec.Steps) > 1000:
		return domain.Invalid("steps", "a build has at most 1000 steps; this one has %d", len(spec.Steps))
	case spec.Timeout < 0:
		return domain.Invalid("timeout", "timeout must not be negative")
	case len(spec.StartCmd) > 16<<10:
		return domain.Invalid("start_cmd", "start_cmd is longer than 16 KiB")
	}
	if err := spec.Ready.Validate(); err != nil {
		return err
	}
	if err := checkLimits(spec.Limits, s.cfg.MaxLimits); err != nil {
		return err
	}
	if spec.Timeout == 0 || spec.Timeout > s.cfg.BuildTimeout {
		spec.Timeout = s.cfg.BuildTimeout
	}
	for i, st := range spec.Steps {
		if err := checkStep(i, st, func(hash string) (bool, error) { return hasFiles(s.cfg.FilesDir, p.TeamID, hash) }); err != nil {
			return err
		}
	}
	return nil
}

// checkLimits validates a template's sandbox defaults l against the server's maxima mx
// (zero fields: none): only cpu_cores and memory_mb, each zero (the server's default) or
// from the sandbox minimum to the maximum.
func checkLimits(l, mx domain.Limits) error {
	switch {
	case l.DiskMB != 0 || l.MaxProcesses != 0:
		return domain.Invalid("limits", "a template sets only cpu_cores and memory_mb for its sandboxes; set disk_mb and max_processes when creating a sandbox")
	case l.CPUCores < 0 || l.CPUCores > 0 && l.CPUCores < 0.05:
		return domain.Invalid("limits.cpu_cores", "cpu_cores (cpuCount) %g is below the minimum of 0.05", l.CPUCores)
	case l.MemoryMB < 0 || l.MemoryMB > 0 && l.MemoryMB < 128:
		return domain.Invalid("limits.memory_mb", "memory_mb (memoryMB) %d is below the minimum of 128", l.MemoryMB)
	case mx.CPUCores > 0 && l.CPUCores > mx.CPUCores:
		return domain.Invalid("limits.cpu_cores", "cpu_cores (cpuCount) %g exceeds this server's maximum of %g; ask for less, or ask the operator to raise WARREN_MAX_CPU_CORES", l.CPUCores, mx.CPUCores)
	case mx.MemoryMB > 0 && l.MemoryMB > mx.MemoryMB:
		return domain.Invalid("limits.memory_mb", "memory_mb (memoryMB) %d exceeds this server's maximum of %d; ask for less, or ask the operator to raise WARREN_MAX_MEMORY_MB", l.MemoryMB, mx.MemoryMB)
	}
	return nil
}

// checkStep validates step i; has says whether the team's files of a hash are stored.
func checkStep(i int, st domain.BuildStep, has func(hash string) (bool, error)) error {
	field := fmt.Sprintf("steps[%d]", i)
	bad := func(format string, args ...any) error {
		return domain.Invalid(field, "step %d (%s): %s", i+1, st.Kind, fmt.Sprintf(format, args...))
	}
	n := len(st.Args)
	for _, a := range st.Args {
		if len(a) > 64<<10 {
			return bad("an argument is longer than 64 KiB")
		}
	}
	switch st.Kind {
	case domain.StepRun:
		if n != 1 || strings.TrimSpace(st.Args[0]) == "" {
			return bad("give one shell command")
		}
	case domain.StepCopy:
		if n < 2 || n > 4 {
			return bad("give src, dst and optionally an owner (user[:group], \"\" for root) and a mode (octal, such as 0755)")
		}
		if st.FilesHash == "" {
			return bad("name the uploaded files (files_hash): the sha256 of the tar archive COPY reads src from")
		}
		if !validHash(st.FilesHash) {
			return bad("files_hash %q is not a sha256 in hex", st.FilesHash)
		}
		ok, err := has(st.FilesHash)
		if err != nil {
			return err
		}
		if !ok {
			return bad("the files %s are not uploaded; upload them first (PUT the tar archive)", st.FilesHash)
		}
	case domain.StepEnv:
		if n == 0 || n%2 != 0 {
			return bad("give key, value pairs")
		}
		for j := 0; j < n; j += 2 {
			if st.Args[j] == "" || strings.ContainsAny(st.Args[j], "=\x00") {
				return bad("%q is not a variable name", st.Args[j])
			}
		}
	case domain.StepWorkdir:
		if n != 1 || !strings.HasPrefix(st.Args[0], "/") {
			return bad("give one absolute directory")
		}
	case domain.StepUser:
		if n != 1 || st.Args[0] == "" {
			return bad("give one user name or uid")
		}
	default:
		return bad("unknown step type: use RUN, COPY, ENV, WORKDIR or USER")
	}
	return nil
}

// StartBuild implements domain.TemplateService.
func (s *Service) StartBuild(ctx context.Context, p domain.Principal, templateID, buildID string, spec domain.BuildSpec) (*domain.Build, error) {
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return nil, err
	}
	if s.cfg.Builder == nil {
		return nil, errNoBuilder
	}
	tpl, err := s.own(ctx, p, templateID)
	if err != nil {
		return nil, err
	}
	b, err := s.cfg.Store.GetBuild(ctx, p.TeamID, tpl.ID, buildID)
	if err != nil {
		return nil, err
	}
	if b.State != domain.BuildWaiting {
		return nil, domain.Errorf(domain.KindConflict, "build %s is %s, not waiting: it was started already; create a new build to build again", b.ID, b.State)
	}
	if spec.Limits == (domain.Limits{}) {
		spec.Limits = b.Limits
	}
	if err := s.checkSpec(ctx, p, tpl.ID, &spec); err != nil {
		return nil, refused(ctx, s, tpl, b, err)
	}
	var from *domain.Template
	if spec.FromTemplate != "" {
		from, err = s.cfg.Store.GetTemplate(ctx, p.TeamID, spec.FromTemplate)
		if domain.IsKind(err, domain.KindNotFound) {
			return nil, refused(ctx, s, tpl, b,
				domain.Invalid("from_template", "template %q does not exist; list templates with GET /v1/templates", spec.FromTemplate))
		}
		if err != nil {
			return nil, err
		}
		if !from.Ready || from.RootFS == "" {
			return nil, refused(ctx, s, tpl, b,
				domain.Errorf(domain.KindUnavailable, "template %q is not built yet; try again once it is ready", spec.FromTemplate))
		}
		spec.Env = mergeEnv(from.Env, spec.Env)
		spec.Workdir = cmp(spec.Workdir, from.Workdir)
		spec.User = cmp(spec.User, from.User)
		if spec.Limits == (domain.Limits{}) {
			spec.Limits = from.Limits // a team's template passes its sizes on, as its env
		}
	}
	b.State = domain.BuildBuilding
	if err := s.cfg.Store.BeginBuild(ctx, b, spec); err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(b, spec, from)
	}()
	return b, nil
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// mergeEnv returns base overridden by over (nil when both are empty).
func mergeEnv(base, over map[string]string) map[string]string {
	if len(base) == 0 && len(over) == 0 {
		return nil
	}
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, over)
	return out
}

// run builds b in the background (on the template from, or spec's image) and records
// how it ended.
func (s *Service) run(b *domain.Build, spec domain.BuildSpec, from *domain.Template) {
	ctx, cancel := context.WithTimeout(s.ctx, spec.Timeout)
	defer cancel()
	log := s.log.With(logkey.BuildID, b.ID, logkey.Template, b.TemplateID, logkey.TeamID, b.TeamID)
	lw := newLogWriter(s, b.ID)
	defer lw.close()
	var steps []domain.StepResult
	recordStep := func(r domain.StepResult) {
		steps = append(steps, r)
		b.Steps = append([]domain.StepResult(nil), steps...)
		if err := s.cfg.Store.UpdateBuild(s.ctx, b); err != nil {
			log.WarnContext(ctx, "recording a build step", logkey.Err, err)
		}
	}
	parent := ""
	if from != nil {
		parent = from.RootFS
	}
	rootfs, size, err := s.build(ctx, lw, &spec, parent, b.TeamID, recordStep)
	var tpl *domain.Template
	if err == nil {
		tpl, err = s.finish(ctx, b, spec, from, rootfs, size)
	}
	b.Steps, b.FinishedAt = steps, s.cfg.Now().UTC()
	if err != nil {
		b.State, b.Reason = domain.BuildError, reason(s.ctx, ctx, err, spec.Timeout)
		lw.add(domain.BuildLogLine{Time: b.FinishedAt, Level: "error", Message: "build failed: " + b.Reason})
		log.InfoContext(ctx, "template build failed", logkey.Err, err)
	} else {
		b.State = domain.BuildReady
		lw.add(domain.BuildLogLine{Time: b.FinishedAt, Level: "info", Message: fmt.Sprintf("build ready: %s (%d MB)", tpl.ID, (size+domain.MiB-1)/domain.MiB)})
		log.InfoContext(ctx, "template build ready")
	}
	lw.close() // every line is stored before the state says the build ended
	// The build's row is written even when the server is stopping (s.ctx ended).
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(s.ctx), 10*time.Second)
	defer wcancel()
	if err := s.cfg.Store.UpdateBuild(wctx, b); err != nil {
		log.ErrorContext(wctx, "recording the end of a template build", logkey.Err, err)
	}
	s.bus.notify(b.ID)
}

// build waits for a slot, gets the parent and runs the builder.
func (s *Service) build(ctx context.Context, lw *logWriter, spec *domain.BuildSpec, parent, teamID string, step func(domain.StepResult)) (string, int64, error) {
	select {
	case s.slots <- struct{}{}:
	default:
		lw.info("waiting for a free build slot (%d builds run at once on this server)", cap(s.slots))
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return "", 0, ctx.Err()
		}
	}
	defer func() { <-s.slots }()
	if spec.FromImage != "" {
		lw.info("pulling image %s", spec.FromImage)
		img, err := s.cfg.Images.Pull(ctx, spec.FromImage)
		if err != nil {
			return "", 0, err
		}
		cached := ""
		if img.Cached {
			cached = " (cached)"
		}
		lw.info("image %s is %s%s", spec.FromImage, img.Digest, cached)
		parent = img.Root
		// The image's own defaults, where the build does not set them.
		env := map[string]string{}
		for _, kv := range img.Config.Env {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
		spec.Env = mergeEnv(env, spec.Env)
		spec.Workdir = cmp(spec.Workdir, img.Config.WorkingDir)
		spec.User = cmp(spec.User, img.Config.User)
	} else {
		lw.info("building on template %s", spec.FromTemplate)
	}
	return s.cfg.Builder.Build(ctx, *spec, parent, teamFiles{teamDir(s.cfg.FilesDir, teamID)}, lw.add, step)
}

// finish makes the template's row the finished build's, within the team's quota. A
// template built on another keeps its parent's private ports (its services stay
// private), and, without a start command of its own, its parent's start command and
// ready checks, as a Docker image keeps its parent's CMD.
func (s *Service) finish(ctx context.Context, b *domain.Build, spec domain.BuildSpec, from *domain.Template, rootfs string, size int64) (*domain.Template, error) {
	team, err := s.cfg.Store.GetTeam(ctx, b.TeamID)
	if err != nil {
		return nil, err
	}
	tpl, err := s.cfg.Store.GetTemplate(ctx, b.TeamID, b.TemplateID)
	if err == nil && tpl.TeamID != b.TeamID {
		err = domain.NotFound("template", b.TemplateID)
	}
	if domain.IsKind(err, domain.KindNotFound) {
		return nil, domain.Errorf(domain.KindConflict, "template %q was deleted while it was being built", b.TemplateID)
	}
	if err != nil {
		return nil, err
	}
	tpl.Hash, tpl.RootFS, tpl.SizeBytes, tpl.Ready, tpl.BuiltAt = b.ID, rootfs, size, true, s.cfg.Now().UTC()
	env, workdir, user := finalDefaults(spec)
	tpl.StartCmd, tpl.Env, tpl.Workdir, tpl.User, tpl.ReadyCheck = spec.StartCmd, env, workdir, user, spec.Ready
	tpl.Limits = spec.Limits
	tpl.ReadyPort, tpl.PrivatePorts = 0, nil // ReadyPort is a /health check; a build's ready check is ReadyCheck
	if from != nil {
		tpl.PrivatePorts = from.PrivatePorts
		if spec.StartCmd == "" {
			tpl.StartCmd, tpl.ReadyPort, tpl.ReadyCheck = from.StartCmd, from.ReadyPort, from.ReadyCheck
		}
	}
	tags := b.Tags
	if len(tags) == 0 {
		tags = []string{domain.DefaultTag}
	}
	if slices.Contains(tags, domain.DefaultTag) {
		if err := s.cfg.Store.UpdateTemplateWithinQuota(ctx, tpl, team.Quota); err != nil {
			return nil, err
		}
	}
	for _, tag := range tags {
		if tag != domain.DefaultTag {
			if err := s.cfg.Store.UpsertTemplate(ctx, tagRow(tpl, tpl.ID, tag)); err != nil {
				return nil, err
			}
		}
	}
	return tpl, nil
}

// reason says why a build failed, for its client (svc is the service's lifetime, ctx
// the build's).
func reason(svc, ctx context.Context, err error, timeout time.Duration) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Sprintf("the build took longer than its time limit of %s and was stopped; make it faster or give it a longer timeout", timeout)
	case svc.Err() != nil:
		return "interrupted by a server shutdown; start the build again"
	}
	if msg := domain.PublicMessage(err); msg != "" && domain.KindOf(err) != domain.KindInternal {
		return msg
	}
	return "internal error while building; try again, and if it keeps failing, ask the operator to look it up in the server log"
}

// finalDefaults are what the template's sandboxes start with: spec's env, workdir and
// user (the parent's, under the request's) with the build's ENV, WORKDIR and USER
// steps applied in order.
func finalDefaults(spec domain.BuildSpec) (env map[string]string, workdir, user string) {
	env = mergeEnv(spec.Env, nil)
	workdir, user = spec.Workdir, spec.User
	for _, st := range spec.Steps {
		switch st.Kind {
		case domain.StepEnv:
			if env == nil {
				env = map[string]string{}
			}
			for i := 0; i+1 < len(st.Args); i += 2 {
				env[st.Args[i]] = st.Args[i+1]
			}
		case domain.StepWorkdir:
			if len(st.Args) == 1 {
				workdir = st.Args[0]
			}
		case domain.StepUser:
			if len(st.Args) == 1 {
				user = st.Args[0]
			}
		}
	}
	return env, workdir, user
}
