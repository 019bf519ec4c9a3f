package auth

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/warren-sh/warren/internal/domain"
)

var (
	decimalRe     = regexp.MustCompile(`^[0-9]{1,12}(\.[0-9]{1,6})?$`)
	runtimeNameRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
)

var _ domain.TeamService = (*Teams)(nil)

// Teams implements domain.TeamService: platform admins create and change teams (name,
// quota, plan, spending limit, allowed runtimes); team members read their own.
type Teams struct {
	*core
	defaultQuota domain.Quota
	defaultPlan  string
	checkPlan    func(id string) error // nil: any plan id
	runtimes     []string              // what a team's allowed_runtimes may name; nil: any name
}

// checkRuntimes validates a team's allowed_runtimes and returns it without duplicates
// (nil for an empty list, which allows every enabled runtime).
func (s *Teams) checkRuntimes(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		switch {
		case s.runtimes != nil && !slices.Contains(s.runtimes, n):
			return nil, domain.Invalid("allowed_runtimes", "runtime %q is not enabled on this server; enabled: %s (an empty list allows all of them)",
				n, strings.Join(s.runtimes, ", "))
		case !runtimeNameRe.MatchString(n):
			return nil, domain.Invalid("allowed_runtimes", "%q is not a runtime name: use names such as gvisor or runc", n)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func needAdmin(p domain.Principal, what string) error {
	if p.Admin {
		return nil
	}
	return domain.Errorf(domain.KindForbidden, "only platform administrators can %s: use the admin key (%s)", what, "admin.key in the data directory")
}

// CreateTeam makes a team (platform admins only). Missing quota and plan take the
// server's defaults.
func (s *Teams) CreateTeam(ctx context.Context, p domain.Principal, spec domain.TeamSpec) (*domain.Team, error) {
	if err := needAdmin(p, "create teams"); err != nil {
		return nil, err
	}
	t := &domain.Team{ID: domain.NewID(20), Quota: s.defaultQuota, PlanID: s.defaultPlan, CreatedAt: s.now().UTC()}
	if err := s.applyTeam(t, spec, true); err != nil {
		return nil, err
	}
	if err := s.store.CreateTeam(ctx, t); err != nil {
		return nil, fmt.Errorf("creating team %q: %w", t.Name, err)
	}
	return t, nil
}

// applyTeam validates spec and writes its set fields into t.
func (s *Teams) applyTeam(t *domain.Team, spec domain.TeamSpec, create bool) error {
	name := strings.TrimSpace(spec.Name)
	if create || spec.Name != "" {
		switch {
		case name == "":
			return domain.Invalid("name", "a team needs a name")
		case len(name) > maxNameLen:
			return domain.Invalid("name", "team name is %d bytes long: keep it to %d", len(name), maxNameLen)
		case strings.IndexFunc(name, unicode.IsControl) >= 0:
			return domain.Invalid("name", "team name contains control characters: use printable text")
		}
		t.Name = name
	}
	if spec.Quota != nil {
		q := t.Quota.Apply(spec.Quota)
		switch {
		case q.MaxSandboxes < 0:
			return domain.Invalid("quota.max_sandboxes", "max_sandboxes is %d: use 0 (no limit) or more", q.MaxSandboxes)
		case q.MaxCPUCores < 0:
			return domain.Invalid("quota.max_cpu_cores", "max_cpu_cores is %g: use 0 (no limit) or more", q.MaxCPUCores)
		case q.MaxMemoryMB < 0:
			return domain.Invalid("quota.max_memory_mb", "max_memory_mb is %d: use 0 (no limit) or more", q.MaxMemoryMB)
		case q.MaxDiskMB < 0:
			return domain.Invalid("quota.max_disk_mb", "max_disk_mb is %d: use 0 (no limit) or more", q.MaxDiskMB)
		case q.RequestsPerMinute < 0:
			return domain.Invalid("quota.requests_per_minute", "requests_per_minute is %d: use 0 (no limit) or more", q.RequestsPerMinute)
		case q.MaxSnapshots < 0:
			return domain.Invalid("quota.max_snapshots", "max_snapshots is %d: use 0 (no limit) or more", q.MaxSnapshots)
		case q.MaxTemplates < 0:
			return domain.Invalid("quota.max_templates", "max_templates is %d: use 0 (no limit) or more", q.MaxTemplates)
		case q.MaxTemplateMB < 0:
			return domain.Invalid("quota.max_template_mb", "max_template_mb is %d: use 0 (no limit) or more", q.MaxTemplateMB)
		}
		t.Quota = q
	}
	if spec.PlanID != nil {
		if s.checkPlan != nil && *spec.PlanID != "" {
			if err := s.checkPlan(*spec.PlanID); err != nil {
				msg := domain.PublicMessage(err)
				if msg == "" {
					msg = fmt.Sprintf("unknown plan %q: list plans with GET /v1/plans", *spec.PlanID)
				}
				return domain.Invalid("plan_id", "%s", msg)
			}
		}
		t.PlanID = *spec.PlanID
	}
	if spec.SpendLimit != nil {
		v := strings.TrimSpace(*spec.SpendLimit)
		if v != "" && !decimalRe.MatchString(v) {
			return domain.Invalid("spend_limit", "spend_limit %q is not an amount: write a decimal such as \"50\" or \"49.99\", or \"\" for none", v)
		}
		t.SpendLimit = v
	}
	if spec.AllowedRuntimes != nil {
		names, err := s.checkRuntimes(*spec.AllowedRuntimes)
		if err != nil {
			return err
		}
		t.AllowedRuntimes = names
	}
	return nil
}

// ListTeams returns every team to platform admins, and their own team to others.
func (s *Teams) ListTeams(ctx context.Context, p domain.Principal) ([]*domain.Team, error) {
	if err := needTeam(p); err != nil {
		return nil, err
	}
	if p.Admin {
		return s.store.ListTeams(ctx)
	}
	if err := p.Need(domain.ScopeTeamRead); err != nil {
		return nil, err
	}
	t, err := s.store.GetTeam(ctx, p.TeamID)
	if err != nil {
		return nil, err
	}
	return []*domain.Team{t}, nil
}

// GetTeam returns a team and what it holds now; other teams are not found.
func (s *Teams) GetTeam(ctx context.Context, p domain.Principal, id string) (*domain.Team, domain.QuotaUsage, error) {
	if err := needTeam(p); err != nil {
		return nil, domain.QuotaUsage{}, err
	}
	if !p.Admin {
		if id != p.TeamID {
			return nil, domain.QuotaUsage{}, domain.NotFound("team", id)
		}
		if err := p.Need(domain.ScopeTeamRead); err != nil {
			return nil, domain.QuotaUsage{}, err
		}
	}
	t, err := s.store.GetTeam(ctx, id)
	if err != nil {
		return nil, domain.QuotaUsage{}, err
	}
	u, err := s.store.TeamUsage(ctx, id)
	if err != nil {
		return nil, domain.QuotaUsage{}, fmt.Errorf("reading team usage: %w", err)
	}
	return t, u, nil
}

// UpdateTeam changes a team's name, quota, plan, spending limit or allowed runtimes
// (platform admins only).
func (s *Teams) UpdateTeam(ctx context.Context, p domain.Principal, id string, patch domain.TeamSpec) (*domain.Team, error) {
	if err := needAdmin(p, "change teams"); err != nil {
		return nil, err
	}
	t, err := s.store.GetTeam(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.applyTeam(t, patch, false); err != nil {
		return nil, err
	}
	if err := s.store.UpdateTeam(ctx, t); err != nil {
		return nil, fmt.Errorf("updating team %s: %w", id, err)
	}
	s.teams.forget(id)
	return t, nil
}
