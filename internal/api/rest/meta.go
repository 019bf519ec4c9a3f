package rest

import (
	_ "embed"
	"net/http"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

// openAPIDoc is the hand-written OpenAPI 3.1 description of this package's routes.
//
//go:embed openapi.json
var openAPIDoc []byte

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIDoc)
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	s.edge.WriteJSON(w, r, http.StatusOK, statusResponse{Status: "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.opts.ready != nil {
		if err := s.opts.ready(); err != nil {
			return &edge.HTTPError{Status: http.StatusServiceUnavailable, Code: domain.KindUnavailable.String(),
				Message: "not ready: " + err.Error()}
		}
	}
	s.edge.WriteJSON(w, r, http.StatusOK, statusResponse{Status: "ready"})
	return nil
}

func (s *Server) templates(w http.ResponseWriter, r *http.Request) error {
	var ts []*domain.Template
	var err error
	if s.opts.templates != nil {
		p, perr := edge.Principal(r)
		if perr != nil {
			return perr
		}
		ts, err = s.opts.templates.ListTemplates(r.Context(), p)
	} else {
		ts, err = s.svc.Templates(r.Context())
	}
	if err != nil {
		return err
	}
	resp := listTemplatesResponse{Templates: make([]templateJSON, 0, len(ts))}
	for _, t := range ts {
		resp.Templates = append(resp.Templates, toTemplateJSON(t))
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}
