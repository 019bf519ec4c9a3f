package rest

import (
	"net/http"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

// WithPools serves the node's warm pools (GET /v1/pools) from ps.
func WithPools(ps domain.PoolService) Option { return func(o *options) { o.pools = ps } }

// poolJSON is one template's warm pool.
type poolJSON struct {
	TemplateID string `json:"template_id"`
	Size       int    `json:"size"`
	Ready      int    `json:"ready"`
	Starting   int    `json:"starting"`
	Claims     int64  `json:"claims"`
	Misses     int64  `json:"misses"`
	Failures   int64  `json:"failures"`
}

type listPoolsResponse struct {
	Pools []poolJSON `json:"pools"`
}

// listPools answers GET /v1/pools: each warm pool's size, ready members and counters.
func (s *Server) listPools(w http.ResponseWriter, r *http.Request) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	if s.opts.pools == nil {
		return domain.Errorf(domain.KindNotFound, "this server keeps no warm pools")
	}
	ps, err := s.opts.pools.Pools(r.Context(), p)
	if err != nil {
		return err
	}
	resp := listPoolsResponse{Pools: make([]poolJSON, 0, len(ps))}
	for _, st := range ps {
		resp.Pools = append(resp.Pools, poolJSON{TemplateID: st.TemplateID, Size: st.Size, Ready: st.Ready,
			Starting: st.Starting, Claims: st.Claims, Misses: st.Misses, Failures: st.Failures})
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}
