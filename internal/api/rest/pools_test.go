package rest

import (
	"context"
	"net/http"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

// poolsFake is a domain.PoolService that answers platform admins only, as sandbox.Pool.
type poolsFake struct{ stats []domain.PoolStats }

func (f poolsFake) Pools(_ context.Context, p domain.Principal) ([]domain.PoolStats, error) {
	if !p.Admin {
		return nil, domain.Errorf(domain.KindForbidden, "only a platform admin may read the warm pools")
	}
	return f.stats, nil
}

func TestListPools(t *testing.T) {
	h := newHarness(t, WithPools(poolsFake{stats: []domain.PoolStats{{TemplateID: "base", Size: 2, Ready: 1, Starting: 1, Claims: 3, Misses: 1}}}))
	h.as(domain.Principal{TeamID: "team_root", KeyID: "key_root", Admin: true})
	res := h.do("GET", "/v1/pools", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	pools, _ := res.Obj(t)["pools"].([]any)
	if len(pools) != 1 {
		t.Fatalf("pools %s", res.Body)
	}
	p := pools[0].(map[string]any)
	if p["template_id"] != "base" || p["size"] != 2.0 || p["ready"] != 1.0 || p["claims"] != 3.0 || p["misses"] != 1.0 || p["failures"] != 0.0 {
		t.Errorf("pool %v", p)
	}

	h.as(domain.Principal{TeamID: "team_a", Scopes: []domain.Scope{domain.ScopeAdmin}})
	h.wantError(h.do("GET", "/v1/pools", nil), http.StatusForbidden, "forbidden", "")

	none := newHarness(t)
	none.as(domain.Principal{TeamID: "team_root", Admin: true})
	none.wantError(none.do("GET", "/v1/pools", nil), http.StatusNotFound, "not_found", "")
}
