package storetest

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

func teamTemplate(teamID, id string, size int64) *domain.Template {
	return &domain.Template{TeamID: teamID, ID: id, Description: "team template " + id, Hash: "h-" + id,
		RootFS: "/data/builds/" + id, SizeBytes: size, CreatedAt: at(5, 0)}
}

func templateIDs(ts []*domain.Template) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.TeamID+"/"+t.ID)
	}
	return out
}

func testTeamTemplates(t *testing.T, s domain.Store) {
	ctx := t.Context()
	a, b := addTeam(t, s, "a"), addTeam(t, s, "b")
	must(t, "built-in", s.UpsertTemplate(ctx, &domain.Template{ID: "base", Hash: "hb", RootFS: "/cache/base", Ready: true}))
	mine := teamTemplate(a.ID, "app", 0)
	mine.Env, mine.Workdir, mine.User = map[string]string{"K": "v"}, "/srv", "1000"
	mine.ReadyCheck = domain.ReadyCheck{Port: 8080, Timeout: time.Minute}
	must(t, "a's template", s.CreateTemplateWithinQuota(ctx, mine, domain.Quota{}))
	got, err := s.GetTemplate(ctx, a.ID, "app")
	must(t, "a getting its template", err)
	same(t, "a's template", got, mine, normTemplate)
	if got, err := s.GetTemplate(ctx, a.ID, "base"); err != nil || got.TeamID != "" {
		t.Errorf("a getting the built-in: %+v, %v", got, err)
	}

	// Another team neither sees nor touches it, and may use the same name.
	wantKind(t, "b getting a's template", get(s.GetTemplate(ctx, b.ID, "app")), domain.KindNotFound)
	wantKind(t, "built-ins only", get(s.GetTemplate(ctx, "", "app")), domain.KindNotFound)
	wantKind(t, "AnyTeam lookup", get(s.GetTemplate(ctx, domain.AnyTeam, "app")), domain.KindInvalid)
	other := teamTemplate(b.ID, "app", 0)
	other.ReadyCheck = domain.ReadyCheck{}
	wantKind(t, "b updating a's (its own does not exist yet)", s.UpdateTemplateWithinQuota(ctx, other, domain.Quota{}), domain.KindNotFound)
	wantKind(t, "b deleting a's", s.DeleteTemplate(ctx, b.ID, "app"), domain.KindNotFound)
	must(t, "b's template of the same name", s.CreateTemplateWithinQuota(ctx, other, domain.Quota{}))
	if got, err := s.GetTemplate(ctx, b.ID, "app"); err != nil || got.TeamID != b.ID {
		t.Errorf("b getting its own app: %+v, %v", got, err)
	}

	// Names never shadow a built-in nor repeat within a team.
	err = s.CreateTemplateWithinQuota(ctx, teamTemplate(a.ID, "base", 0), domain.Quota{})
	wantKind(t, "a built-in's name", err, domain.KindConflict)
	if !strings.Contains(domain.PublicMessage(err), "built-in") {
		t.Errorf("the conflict with a built-in does not say so: %q", domain.PublicMessage(err))
	}
	wantKind(t, "a's name again", s.CreateTemplateWithinQuota(ctx, teamTemplate(a.ID, "app", 0), domain.Quota{}), domain.KindConflict)
	wantKind(t, "a built-in through CreateTemplateWithinQuota", s.CreateTemplateWithinQuota(ctx, teamTemplate("", "x", 0), domain.Quota{}), domain.KindInvalid)
	wantKind(t, "an unknown team", s.CreateTemplateWithinQuota(ctx, teamTemplate("nope", "x", 0), domain.Quota{}), domain.KindNotFound)

	// The team's own template comes before a built-in of the same id (one added later).
	must(t, "a later built-in", s.UpsertTemplate(ctx, &domain.Template{ID: "app", Hash: "hb2", RootFS: "/cache/app"}))
	if got, err := s.GetTemplate(ctx, a.ID, "app"); err != nil || got.TeamID != a.ID {
		t.Errorf("a getting app with a built-in app: %+v, %v", got, err)
	}
	list, err := s.ListTemplates(ctx, a.ID)
	must(t, "listing a's", err)
	if ids, want := templateIDs(list), []string{"/app", a.ID + "/app", "/base"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("a lists %v, want %v", ids, want)
	}
	list, err = s.ListTemplates(ctx, "")
	must(t, "listing built-ins", err)
	if ids, want := templateIDs(list), []string{"/app", "/base"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("built-ins list %v, want %v", ids, want)
	}
	list, err = s.ListTemplates(ctx, domain.AnyTeam)
	must(t, "listing every template", err)
	if len(list) != 4 {
		t.Errorf("every template: %v, want 4", templateIDs(list))
	}

	// Updating writes every field of the team's own row only.
	mine.Ready, mine.RootFS, mine.SizeBytes, mine.BuiltAt, mine.StartCmd = true, "/data/builds/app-2", 4096, at(9, 9), "srv"
	mine.Limits = domain.Limits{CPUCores: 0.5, MemoryMB: 768}
	must(t, "updating a's", s.UpdateTemplateWithinQuota(ctx, mine, domain.Quota{}))
	got, err = s.GetTemplate(ctx, a.ID, "app")
	must(t, "getting updated", err)
	same(t, "updated template", got, mine, normTemplate)
	if got, _ := s.GetTemplate(ctx, b.ID, "app"); got.Ready || got.SizeBytes != 0 {
		t.Errorf("updating a's template changed b's: %+v", got)
	}

	// Deleting takes the builds and their logs along, never a built-in.
	bd := &domain.Build{ID: "bd-" + a.ID, TeamID: a.ID, TemplateID: "app", State: domain.BuildReady, CreatedAt: at(1, 0)}
	must(t, "a build", s.CreateBuild(ctx, bd))
	must(t, "its log", s.AppendBuildLogs(ctx, bd.ID, 0, []domain.BuildLogLine{{Time: at(1, 1), Level: "info", Message: "hi"}}))
	wantKind(t, "deleting a built-in", s.DeleteTemplate(ctx, "", "base"), domain.KindInvalid)
	must(t, "deleting a's", s.DeleteTemplate(ctx, a.ID, "app"))
	wantKind(t, "a's build after delete", get(s.GetBuild(ctx, a.ID, "", bd.ID)), domain.KindNotFound)
	if lines, err := s.ListBuildLogs(ctx, bd.ID, 0, 10); err != nil || len(lines) != 0 {
		t.Errorf("logs after delete: %v, %v", lines, err)
	}
	if got, err := s.GetTemplate(ctx, a.ID, "app"); err != nil || got.TeamID != "" {
		t.Errorf("after delete a sees the built-in app: %+v, %v", got, err)
	}
	must(t, "b's still there", get(s.GetTemplate(ctx, b.ID, "app")))
	wantKind(t, "deleting again", s.DeleteTemplate(ctx, a.ID, "app"), domain.KindNotFound)
}

func testTemplateQuota(t *testing.T, s domain.Store) {
	ctx := t.Context()
	team, other := addTeam(t, s, "q"), addTeam(t, s, "other")
	must(t, "other team's template", s.CreateTemplateWithinQuota(ctx, teamTemplate(other.ID, "o", 50*domain.MiB), domain.Quota{}))
	must(t, "a built-in", s.UpsertTemplate(ctx, &domain.Template{ID: "base", SizeBytes: 500 * domain.MiB}))
	q := domain.Quota{MaxTemplates: 3, MaxTemplateMB: 100}
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.CreateTemplateWithinQuota(ctx, teamTemplate(team.ID, "t"+string(rune('a'+i)), domain.MiB), q)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				admitted++
				return
			}
			wantQuotaError(t, "concurrent refusal", err, "max_templates", 3, 3)
		}()
	}
	wg.Wait()
	if admitted != 3 {
		t.Fatalf("8 concurrent templates against max_templates 3 admitted %d", admitted)
	}
	u, err := s.TeamUsage(ctx, team.ID)
	must(t, "TeamUsage", err)
	if u.Templates != 3 || u.TemplateMB != 3 {
		t.Errorf("TeamUsage: %d templates of %d MB, want 3 of 3 (neither built-ins nor other teams count)", u.Templates, u.TemplateMB)
	}
	list, err := s.ListTemplates(ctx, team.ID)
	must(t, "listing", err)
	var one *domain.Template
	for _, tpl := range list {
		if tpl.TeamID == team.ID {
			one = tpl
			break
		}
	}
	// The size a build leaves counts, less the template's old size.
	one.SizeBytes = 98 * domain.MiB
	must(t, "growing to the limit", s.UpdateTemplateWithinQuota(ctx, one, q))
	one.SizeBytes = 99 * domain.MiB
	wantQuotaError(t, "growing past the limit", s.UpdateTemplateWithinQuota(ctx, one, q), "max_template_mb", 100, 101)
	got, err := s.GetTemplate(ctx, team.ID, one.ID)
	must(t, "getting", err)
	if got.SizeBytes != 98*domain.MiB {
		t.Errorf("a refused update was written: size %d", got.SizeBytes)
	}
	wantQuotaError(t, "a template past max_template_mb", s.CreateTemplateWithinQuota(ctx, teamTemplate(team.ID, "big", 2*domain.MiB),
		domain.Quota{MaxTemplateMB: 100}), "max_template_mb", 100, 102)
	must(t, "no limit", s.CreateTemplateWithinQuota(ctx, teamTemplate(team.ID, "free", 0), domain.Quota{}))
}

func testTemplateBuilds(t *testing.T, s domain.Store) {
	ctx := t.Context()
	a, b := addTeam(t, s, "a"), addTeam(t, s, "b")
	must(t, "a's template", s.CreateTemplateWithinQuota(ctx, teamTemplate(a.ID, "app", 0), domain.Quota{}))
	first := &domain.Build{ID: "b1-" + a.ID, TeamID: a.ID, TemplateID: "app", State: domain.BuildWaiting, CreatedAt: at(1, 0)}
	second := &domain.Build{ID: "b2-" + a.ID, TeamID: a.ID, TemplateID: "app", State: domain.BuildWaiting, CreatedAt: at(2, 0),
		Limits: domain.Limits{CPUCores: 2, MemoryMB: 4096}}
	for _, bd := range []*domain.Build{first, second} {
		must(t, "creating build", s.CreateBuild(ctx, bd))
	}
	got, err := s.GetBuild(ctx, a.ID, "app", first.ID)
	must(t, "getting build", err)
	same(t, "waiting build", got, first, normBuild)
	got, err = s.GetBuild(ctx, a.ID, "app", second.ID)
	must(t, "getting build", err)
	same(t, "waiting build with limits", got, second, normBuild)
	wantKind(t, "the same id again", s.CreateBuild(ctx, first), domain.KindConflict)
	wantKind(t, "an unknown team", s.CreateBuild(ctx, &domain.Build{ID: "x", TeamID: "nope", TemplateID: "app",
		State: domain.BuildWaiting, CreatedAt: at(1, 0)}), domain.KindNotFound)

	// Scoping.
	wantKind(t, "b getting a's build", get(s.GetBuild(ctx, b.ID, "", first.ID)), domain.KindNotFound)
	wantKind(t, "a's build under another template", get(s.GetBuild(ctx, a.ID, "other", first.ID)), domain.KindNotFound)
	wantKind(t, "no team", get(s.GetBuild(ctx, "", "", first.ID)), domain.KindInvalid)
	must(t, "AnyTeam", get(s.GetBuild(ctx, domain.AnyTeam, "", first.ID)))
	wantKind(t, "b deleting a's build", s.DeleteBuild(ctx, b.ID, first.ID), domain.KindNotFound)
	wantKind(t, "b beginning a's build", s.BeginBuild(ctx, &domain.Build{ID: first.ID, TeamID: b.ID, State: domain.BuildBuilding},
		domain.BuildSpec{}), domain.KindNotFound)

	// Begin moves a waiting build only.
	first.State = domain.BuildBuilding
	spec := domain.BuildSpec{Name: "app", FromTemplate: "base", Steps: []domain.BuildStep{{Kind: domain.StepRun, Args: []string{"true"}}}}
	must(t, "beginning", s.BeginBuild(ctx, first, spec))
	err = s.BeginBuild(ctx, first, spec)
	wantKind(t, "beginning twice", err, domain.KindConflict)
	first.State, first.Reason, first.FinishedAt = domain.BuildError, "step 1 (RUN false) exited 1", at(3, 5)
	first.Steps = []domain.StepResult{{Index: 0, Key: "k0", Cached: true}, {Index: 1, Key: "k1", ExitCode: 1, Duration: 1500 * time.Millisecond}}
	must(t, "finishing", s.UpdateBuild(ctx, first))
	got, err = s.GetBuild(ctx, a.ID, "", first.ID)
	must(t, "getting finished", err)
	same(t, "finished build", got, first, normBuild)

	states, err := s.ListBuilds(ctx, a.ID, "app")
	must(t, "listing builds", err)
	if len(states) != 2 || states[0].ID != second.ID || states[1].ID != first.ID {
		t.Errorf("ListBuilds: %d builds, want second then first", len(states))
	}
	waiting, err := s.ListBuilds(ctx, domain.AnyTeam, "", domain.BuildWaiting, domain.BuildBuilding)
	must(t, "listing waiting", err)
	if len(waiting) != 1 || waiting[0].ID != second.ID {
		t.Errorf("waiting or building builds: %d, want the second only", len(waiting))
	}
	if bs, err := s.ListBuilds(ctx, b.ID, ""); err != nil || len(bs) != 0 {
		t.Errorf("b lists %d builds (%v), want none", len(bs), err)
	}
	wantKind(t, "listing without a team", get(s.ListBuilds(ctx, "", "")), domain.KindInvalid)
	must(t, "deleting", s.DeleteBuild(ctx, a.ID, second.ID))
	wantKind(t, "deleted", get(s.GetBuild(ctx, a.ID, "", second.ID)), domain.KindNotFound)
}

func normBuild(b domain.Build) domain.Build {
	b.CreatedAt, b.FinishedAt = normTime(b.CreatedAt), normTime(b.FinishedAt)
	return b
}

func testTemplateBuildLogs(t *testing.T, s domain.Store) {
	ctx := t.Context()
	lines := make([]domain.BuildLogLine, 7)
	for i := range lines {
		lines[i] = domain.BuildLogLine{Time: at(i, i), Level: []string{"info", "warn", "error"}[i%3], Message: "line ü " + string(rune('a'+i))}
	}
	must(t, "appending 0-3", s.AppendBuildLogs(ctx, "bld", 0, lines[:4]))
	must(t, "appending 4-6", s.AppendBuildLogs(ctx, "bld", 4, lines[4:]))
	must(t, "appending nothing", s.AppendBuildLogs(ctx, "bld", 7, nil))
	wantKind(t, "a line again", s.AppendBuildLogs(ctx, "bld", 6, lines[:1]), domain.KindConflict)
	must(t, "another build's lines", s.AppendBuildLogs(ctx, "other", 0, lines[:2]))
	got, err := s.ListBuildLogs(ctx, "bld", 2, 3)
	must(t, "reading", err)
	if len(got) != 3 {
		t.Fatalf("read %d lines, want 3", len(got))
	}
	for i, l := range got {
		w := lines[2+i]
		if !l.Time.Equal(w.Time) || l.Level != w.Level || l.Message != w.Message {
			t.Errorf("line %d = %+v, want %+v", 2+i, l, w)
		}
	}
	if got, err := s.ListBuildLogs(ctx, "bld", 5, 100); err != nil || len(got) != 2 {
		t.Errorf("from 5: %d lines (%v), want 2", len(got), err)
	}
	if got, err := s.ListBuildLogs(ctx, "bld", 7, 100); err != nil || got == nil || len(got) != 0 {
		t.Errorf("past the end: %v (%v), want an empty list", got, err)
	}
	wantKind(t, "a negative offset", get(s.ListBuildLogs(ctx, "bld", -1, 1)), domain.KindInvalid)
}

// testTemplateTags: a tagged build's row ("app:v1") is a template of the team that
// GetTemplate finds, that lists and quotas leave out, that ListTemplateTags lists (only
// the template's: "a_b" is no pattern), and that goes with its template; a build keeps
// its tags.
func testTemplateTags(t *testing.T, s domain.Store) {
	ctx := t.Context()
	a, b := addTeam(t, s, "a"), addTeam(t, s, "b")
	q := domain.Quota{MaxTemplates: 2, MaxTemplateMB: 10}
	for _, id := range []string{"a_b", "axb"} {
		must(t, "template "+id, s.CreateTemplateWithinQuota(ctx, teamTemplate(a.ID, id, 4*domain.MiB), q))
	}
	for _, id := range []string{"a_b:v1", "a_b:v2", "axb:v1"} {
		must(t, "tag row "+id, s.UpsertTemplate(ctx, teamTemplate(a.ID, id, 4*domain.MiB)))
	}
	got, err := s.GetTemplate(ctx, a.ID, "a_b:v2")
	must(t, "getting a tag row", err)
	same(t, "tag row", got, teamTemplate(a.ID, "a_b:v2", 4*domain.MiB), normTemplate)
	wantKind(t, "b getting a's tag", get(s.GetTemplate(ctx, b.ID, "a_b:v1")), domain.KindNotFound)
	list, err := s.ListTemplates(ctx, a.ID)
	must(t, "listing", err)
	if ids := templateIDs(list); strings.Join(ids, ",") != a.ID+"/a_b,"+a.ID+"/axb" {
		t.Errorf("ListTemplates %v, want the two templates without their tags", ids)
	}
	tags, err := s.ListTemplateTags(ctx, a.ID, "a_b")
	must(t, "listing tags", err)
	if ids := templateIDs(tags); strings.Join(ids, ",") != a.ID+"/a_b:v1,"+a.ID+"/a_b:v2" {
		t.Errorf("ListTemplateTags(a_b) %v", ids)
	}
	if tags, _ := s.ListTemplateTags(ctx, b.ID, "a_b"); len(tags) != 0 {
		t.Errorf("b sees a's tags: %v", templateIDs(tags))
	}
	wantKind(t, "tags of AnyTeam", get(s.ListTemplateTags(ctx, domain.AnyTeam, "a_b")), domain.KindInvalid)
	// The quota counts the two templates (8 MiB), not the tag rows.
	u, err := s.TeamUsage(ctx, a.ID)
	must(t, "usage", err)
	if u.Templates != 2 {
		t.Errorf("usage counts %d templates, want 2", u.Templates)
	}
	up := teamTemplate(a.ID, "axb", 6*domain.MiB)
	must(t, "an update within max_template_mb beside tag rows", s.UpdateTemplateWithinQuota(ctx, up, q))
	wantQuotaError(t, "a third template", s.CreateTemplateWithinQuota(ctx, teamTemplate(a.ID, "c", 0), q), "max_templates", 2, 2)

	must(t, "deleting a_b", s.DeleteTemplate(ctx, a.ID, "a_b"))
	wantKind(t, "a deleted template's tag", get(s.GetTemplate(ctx, a.ID, "a_b:v1")), domain.KindNotFound)
	if _, err := s.GetTemplate(ctx, a.ID, "axb:v1"); err != nil {
		t.Errorf("deleting a_b took axb's tag: %v", err)
	}

	bd := &domain.Build{ID: "bt-" + a.ID, TeamID: a.ID, TemplateID: "axb", State: domain.BuildWaiting, CreatedAt: at(1, 0),
		Tags: []string{"v2", "prod"}}
	must(t, "a build with tags", s.CreateBuild(ctx, bd))
	gb, err := s.GetBuild(ctx, a.ID, "axb", bd.ID)
	must(t, "getting it", err)
	same(t, "build with tags", gb, bd, normBuild)
}
