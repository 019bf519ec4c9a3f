package rest

import (
	"fmt"
	"net/http"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	var req createKeyRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	if len(req.Name) > 200 {
		return domain.Invalid("name", "name must be at most 200 bytes")
	}
	spec := domain.KeySpec{Name: req.Name, Scopes: req.Scopes, TeamID: req.TeamID}
	switch {
	case req.ExpiresAt != nil && req.ExpiresIn != nil:
		return domain.Invalid("expires_in", "give expires_at or expires_in, not both")
	case req.ExpiresAt != nil:
		if spec.ExpiresAt, err = edge.TimeParam(*req.ExpiresAt, "expires_at"); err != nil {
			return err
		}
	case req.ExpiresIn != nil:
		if *req.ExpiresIn <= 0 || *req.ExpiresIn > 10*365*24*3600 {
			return domain.Invalid("expires_in", "expires_in is %d: give a number of seconds between 1 and 315360000", *req.ExpiresIn)
		}
		spec.ExpiresAt = time.Now().Add(time.Duration(*req.ExpiresIn) * time.Second)
	}
	k, secret, err := s.keys.CreateKey(r.Context(), p, spec)
	if err != nil {
		return err
	}
	if k == nil {
		return fmt.Errorf("create key: service returned no key")
	}
	edge.SetTarget(r, k.ID)
	s.edge.WriteJSON(w, r, http.StatusCreated, createdKeyJSON{keyJSON: toKeyJSON(k), Key: secret})
	return nil
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	keys, err := s.keys.ListKeys(r.Context(), p)
	if err != nil {
		return err
	}
	resp := listKeysResponse{Keys: make([]keyJSON, 0, len(keys))}
	for _, k := range keys {
		resp.Keys = append(resp.Keys, toKeyJSON(k))
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	if err := s.keys.RevokeKey(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
