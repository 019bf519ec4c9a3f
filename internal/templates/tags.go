package templates

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// A tag names one build of a template (E2B's "app:v2"). The build tagged
// domain.DefaultTag is the template's own row; every other tag is a row of its own, id
// "<template>:<tag>", holding what that build made (root filesystem, start command,
// defaults): sandboxes start from it like from any template, and lists and quotas leave
// it out (its root is the build's, in the layer cache, shared).

// tagPattern is what a tag may be.
var tagPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// maxTags bounds the tags of one request.
const maxTags = 16

// checkTags validates tags and returns them without repeats (nil for none).
func checkTags(tags []string) ([]string, error) {
	if len(tags) > maxTags {
		return nil, domain.Invalid("tags", "give at most %d tags, not %d", maxTags, len(tags))
	}
	var out []string
	for _, t := range tags {
		if !tagPattern.MatchString(t) {
			return nil, domain.Invalid("tags", "tag %q is not valid: use 1 to 64 lowercase letters, digits, '.', '-' and '_', starting with a letter or digit", t)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// tagRow is the row of template name's tag: tpl's content (a build of it) under the
// tag's id.
func tagRow(tpl *domain.Template, name, tag string) *domain.Template {
	row := *tpl
	row.ID, row.TeamID = name+domain.TagSeparator+tag, tpl.TeamID
	row.Description = fmt.Sprintf("%s, tag %s", name, tag)
	return &row
}

// Tags is the domain.TemplateTagService of a Service's templates.
type Tags struct{ s *Service }

var _ domain.TemplateTagService = (*Tags)(nil)

// NewTags returns the tag service of s's templates.
func NewTags(s *Service) *Tags { return &Tags{s: s} }

// splitTarget splits "name[:tag]" (no tag: the default).
func splitTarget(target string) (name, tag string, err error) {
	name, tag, _ = strings.Cut(target, domain.TagSeparator)
	if tag == "" {
		tag = domain.DefaultTag
	}
	if err := checkName(name); err != nil {
		return "", "", err
	}
	if _, err := checkTags([]string{tag}); err != nil {
		return "", "", err
	}
	return name, tag, nil
}

// built returns the ready row of the caller's template name's tag.
func (t *Tags) built(ctx context.Context, p domain.Principal, name, tag string) (*domain.Template, *domain.Template, error) {
	tpl, err := t.s.own(ctx, p, name)
	if err != nil {
		return nil, nil, err
	}
	row := tpl
	if tag != domain.DefaultTag {
		if row, err = t.s.cfg.Store.GetTemplate(ctx, p.TeamID, name+domain.TagSeparator+tag); err != nil {
			return nil, nil, err
		}
	}
	if !row.Ready || row.RootFS == "" {
		return nil, nil, domain.Errorf(domain.KindConflict, "template %s has no ready build tagged %s; build it first", name, tag)
	}
	return tpl, row, nil
}

// AssignTags implements domain.TemplateTagService: each tag now names the build that
// target names.
func (t *Tags) AssignTags(ctx context.Context, p domain.Principal, target string, tags []string) (string, error) {
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return "", err
	}
	name, tag, err := splitTarget(target)
	if err != nil {
		return "", err
	}
	if tags, err = checkTags(tags); err != nil {
		return "", err
	}
	if len(tags) == 0 {
		return "", domain.Invalid("tags", "give the tags to assign")
	}
	tpl, src, err := t.built(ctx, p, name, tag)
	if err != nil {
		return "", err
	}
	for _, nt := range tags {
		if nt == domain.DefaultTag {
			row := *src
			row.ID, row.Description, row.CreatedAt = tpl.ID, tpl.Description, tpl.CreatedAt
			team, err := t.s.cfg.Store.GetTeam(ctx, p.TeamID)
			if err != nil {
				return "", err
			}
			if err := t.s.cfg.Store.UpdateTemplateWithinQuota(ctx, &row, team.Quota); err != nil {
				return "", err
			}
			continue
		}
		if err := t.s.cfg.Store.UpsertTemplate(ctx, tagRow(src, name, nt)); err != nil {
			return "", err
		}
	}
	t.s.log.InfoContext(ctx, "template tags assigned", logkey.Template, name, logkey.BuildID, src.Hash, "tags", tags)
	return src.Hash, nil
}

// RemoveTags implements domain.TemplateTagService. A tag whose sandboxes run or are
// paused stays (KindConflict), as a template does.
func (t *Tags) RemoveTags(ctx context.Context, p domain.Principal, name string, tags []string) error {
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return err
	}
	tags, err := checkTags(tags)
	if err != nil {
		return err
	}
	if len(tags) == 0 {
		return domain.Invalid("tags", "give the tags to remove")
	}
	if slices.Contains(tags, domain.DefaultTag) {
		return domain.Invalid("tags", "the default tag cannot be removed; delete the template instead")
	}
	if _, err := t.s.own(ctx, p, name); err != nil {
		return err
	}
	for _, tag := range tags {
		id := name + domain.TagSeparator + tag
		if _, err := t.s.cfg.Store.GetTemplate(ctx, p.TeamID, id); domain.IsKind(err, domain.KindNotFound) {
			return domain.NotFound("template tag", id)
		} else if err != nil {
			return err
		}
		if err := inUse(ctx, t.s, p.TeamID, id); err != nil {
			return err
		}
	}
	for _, tag := range tags {
		if err := t.s.cfg.Store.DeleteTemplate(ctx, p.TeamID, name+domain.TagSeparator+tag); err != nil {
			return err
		}
	}
	return nil
}

// ListTags implements domain.TemplateTagService.
func (t *Tags) ListTags(ctx context.Context, p domain.Principal, name string) ([]domain.TemplateTag, error) {
	if err := p.Need(domain.ScopeSandboxesRead); err != nil {
		return nil, err
	}
	tpl, err := t.s.own(ctx, p, name)
	if err != nil {
		return nil, err
	}
	out := []domain.TemplateTag{}
	if tpl.Ready {
		out = append(out, domain.TemplateTag{Tag: domain.DefaultTag, BuildID: tpl.Hash, CreatedAt: tpl.BuiltAt})
	}
	rows, err := t.s.cfg.Store.ListTemplateTags(ctx, p.TeamID, tpl.ID)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		out = append(out, domain.TemplateTag{Tag: strings.TrimPrefix(r.ID, tpl.ID+domain.TagSeparator), BuildID: r.Hash, CreatedAt: r.BuiltAt})
	}
	return out, nil
}
