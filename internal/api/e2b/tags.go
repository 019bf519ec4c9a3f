package e2b

import (
	"net/http"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

// Template tags, E2B's way: POST /templates/tags {target, tags} gives the build target
// ("app" or "app:v1") more tags (201 {buildID, tags}); DELETE /templates/tags {name, tags}
// removes tags (204); GET /templates/{id}/tags lists them ([{tag, buildID, createdAt}]).

type assignTagsBody struct {
	Target string   `json:"target"`
	Tags   []string `json:"tags"`
}

type assignTagsJSON struct {
	BuildID string   `json:"buildID"`
	Tags    []string `json:"tags"`
}

type removeTagsBody struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

type templateTagJSON struct {
	Tag       string    `json:"tag"`
	BuildID   string    `json:"buildID"`
	CreatedAt time.Time `json:"createdAt"`
}

// tagService returns Config.Tags, or a 501.
func tagService(s *Server) (domain.TemplateTagService, error) {
	if s.cfg.Tags == nil {
		return nil, notImplemented("template tags", templateHint)
	}
	return s.cfg.Tags, nil
}

// tagCall returns the caller and the tag service of a tag route.
func tagCall(s *Server, r *http.Request) (domain.Principal, domain.TemplateTagService, error) {
	p, err := edge.Principal(r)
	if err != nil {
		return p, nil, err
	}
	svc, err := tagService(s)
	return p, svc, err
}

func (s *Server) assignTags(w http.ResponseWriter, r *http.Request) error {
	p, svc, err := tagCall(s, r)
	if err != nil {
		return err
	}
	var b assignTagsBody
	if err := decodeJSON(w, r, &b); err != nil {
		return err
	}
	if b.Target == "" {
		return domain.Invalid("target", "target is required: the template (name or name:tag) whose build gets the tags")
	}
	edge.SetTarget(r, b.Target)
	id, err := svc.AssignTags(r.Context(), p, b.Target, b.Tags)
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusCreated, assignTagsJSON{BuildID: id, Tags: b.Tags})
	return nil
}

func (s *Server) removeTags(w http.ResponseWriter, r *http.Request) error {
	p, svc, err := tagCall(s, r)
	if err != nil {
		return err
	}
	var b removeTagsBody
	if err := decodeJSON(w, r, &b); err != nil {
		return err
	}
	if b.Name == "" {
		return domain.Invalid("name", "name is required: the template to remove tags from")
	}
	edge.SetTarget(r, b.Name)
	if err := svc.RemoveTags(r.Context(), p, b.Name, b.Tags); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// templateSub serves GET /templates/aliases/{alias} and GET /templates/{id}/tags.
func (s *Server) templateSub(w http.ResponseWriter, r *http.Request) error {
	id, sub := r.PathValue("id"), r.PathValue("sub")
	switch {
	case id == "aliases":
		r.SetPathValue("alias", sub)
		return s.templateAlias(w, r)
	case sub == "tags":
		return listTags(s, w, r, id)
	}
	return domain.Errorf(domain.KindNotFound, "no such template route: GET /templates/%s/%s", id, sub)
}

func listTags(s *Server, w http.ResponseWriter, r *http.Request, id string) error {
	p, svc, err := tagCall(s, r)
	if err != nil {
		return err
	}
	edge.SetTarget(r, id)
	tags, err := svc.ListTags(r.Context(), p, id)
	if err != nil {
		return err
	}
	out := make([]templateTagJSON, 0, len(tags))
	for _, t := range tags {
		out = append(out, templateTagJSON{Tag: t.Tag, BuildID: t.BuildID, CreatedAt: t.CreatedAt})
	}
	s.edge.WriteJSON(w, r, http.StatusOK, out)
	return nil
}
