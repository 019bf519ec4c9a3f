package e2b

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
)

// fakeTags is a domain.TemplateTagService of function fields.
type fakeTags struct {
	AssignFn func(ctx context.Context, p domain.Principal, target string, tags []string) (string, error)
	RemoveFn func(ctx context.Context, p domain.Principal, name string, tags []string) error
	ListFn   func(ctx context.Context, p domain.Principal, name string) ([]domain.TemplateTag, error)
}

var _ domain.TemplateTagService = (*fakeTags)(nil)

func (f *fakeTags) AssignTags(ctx context.Context, p domain.Principal, target string, tags []string) (string, error) {
	if f.AssignFn == nil {
		return "", fake.ErrNotSet
	}
	return f.AssignFn(ctx, p, target, tags)
}
func (f *fakeTags) RemoveTags(ctx context.Context, p domain.Principal, name string, tags []string) error {
	if f.RemoveFn == nil {
		return fake.ErrNotSet
	}
	return f.RemoveFn(ctx, p, name, tags)
}
func (f *fakeTags) ListTags(ctx context.Context, p domain.Principal, name string) ([]domain.TemplateTag, error) {
	if f.ListFn == nil {
		return nil, fake.ErrNotSet
	}
	return f.ListFn(ctx, p, name)
}

// TestTagRoutes: the SDK's assignTags, removeTags and getTags calls reach the tag service
// with the caller and answer as the SDK reads them; the alias lookup shares its route.
func TestTagRoutes(t *testing.T) {
	var calls []string
	tags := &fakeTags{
		AssignFn: func(_ context.Context, p domain.Principal, target string, tags []string) (string, error) {
			calls = append(calls, p.TeamID+" assign "+target)
			if target == "nope" {
				return "", domain.NotFound("template", target)
			}
			return "bld_1", nil
		},
		RemoveFn: func(_ context.Context, p domain.Principal, name string, tags []string) error {
			calls = append(calls, p.TeamID+" remove "+name)
			return nil
		},
		ListFn: func(_ context.Context, p domain.Principal, name string) ([]domain.TemplateTag, error) {
			calls = append(calls, p.TeamID+" list "+name)
			return []domain.TemplateTag{{Tag: "default", BuildID: "bld_2", CreatedAt: time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC)}, {Tag: "v1", BuildID: "bld_1"}}, nil
		},
	}
	h := newBuildHarness(t, Config{Tags: tags})
	res := h.do("POST", "/templates/tags", map[string]any{"target": "my-tpl:v1", "tags": []string{"prod"}})
	wantStatus(t, res, http.StatusCreated)
	var a assignTagsJSON
	if err := json.Unmarshal(res.Body, &a); err != nil || a.BuildID != "bld_1" || !reflect.DeepEqual(a.Tags, []string{"prod"}) {
		t.Errorf("assign answer %s", res.Body)
	}
	wantError(t, h.do("POST", "/templates/tags", map[string]any{"target": "nope", "tags": []string{"x"}}), 404, "nope")
	wantError(t, h.do("POST", "/templates/tags", map[string]any{"tags": []string{"x"}}), 400, "target is required")
	wantNoContent(t, h.do("DELETE", "/templates/tags", map[string]any{"name": "my-tpl", "tags": []string{"prod"}}))
	wantError(t, h.do("DELETE", "/templates/tags", map[string]any{"tags": []string{"x"}}), 400, "name is required")
	res = h.do("GET", "/templates/my-tpl/tags", nil)
	wantStatus(t, res, http.StatusOK)
	var list []map[string]any
	if err := json.Unmarshal(res.Body, &list); err != nil || len(list) != 2 || list[0]["tag"] != "default" || list[0]["buildID"] != "bld_2" ||
		list[0]["createdAt"] != "2026-12-06T01:02:03Z" || list[1]["tag"] != "v1" {
		t.Errorf("getTags answer %s", res.Body)
	}
	if want := []string{"team1 assign my-tpl:v1", "team1 assign nope", "team1 remove my-tpl", "team1 list my-tpl"}; !reflect.DeepEqual(calls, want) {
		t.Errorf("calls %q, want %q", calls, want)
	}
	// The alias lookup still answers on the shared route.
	wantStatus(t, h.do("GET", "/templates/aliases/my-tpl", nil), http.StatusOK)
}
