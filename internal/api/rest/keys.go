package rest

import (
	"fmt"
	"net/http"

	"github.com/warren-sh/warren/internal/domain"
)

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
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
	k, secret, err := s.keys.CreateKey(r.Context(), p, req.Name)
	if err != nil {
		return err
	}
	if k == nil {
		return fmt.Errorf("create key: service returned no key")
	}
	s.writeJSON(w, r, http.StatusCreated, createdKeyJSON{
		ID: k.ID, Name: k.Name, Prefix: k.Prefix, CreatedAt: k.CreatedAt.UTC(), Key: secret,
	})
	return nil
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	keys, err := s.keys.ListKeys(r.Context(), p)
	if err != nil {
		return err
	}
	resp := listKeysResponse{Keys: make([]keyJSON, 0, len(keys))}
	for _, k := range keys {
		resp.Keys = append(resp.Keys, keyJSON{
			ID: k.ID, Name: k.Name, Prefix: k.Prefix, CreatedAt: k.CreatedAt.UTC(),
			LastUsedAt: optTime(k.LastUsedAt), RevokedAt: optTime(k.RevokedAt), Admin: k.Admin,
		})
	}
	s.writeJSON(w, r, http.StatusOK, resp)
	return nil
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	if err := s.keys.RevokeKey(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
