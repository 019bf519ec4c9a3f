package e2b

import (
	"encoding/json"
	"net/http"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

// networkUpdateRequest is E2B's SandboxNetworkUpdateConfig, the body of
// PUT /sandboxes/{id}/network (the SDK's updateNetwork): it replaces the whole egress
// configuration; what it omits is cleared.
type networkUpdateRequest struct {
	AllowOut            []string                   `json:"allowOut"`
	DenyOut             []string                   `json:"denyOut"`
	Rules               map[string]json.RawMessage `json:"rules"`
	EgressProxy         json.RawMessage            `json:"egressProxy"`
	AllowInternetAccess *bool                      `json:"allow_internet_access"`
}

// e2bPolicy validates E2B's allowOut and denyOut as a Warren policy, naming the fields
// as E2B does (prefix "network." on create, "" on update) in errors. E2B documents
// denyOut as addresses only; Warren takes names there too.
func e2bPolicy(prefix string, allow, deny []string) (domain.NetworkPolicy, error) {
	a, err := domain.ParseNetworkEntries(prefix+"allowOut", allow)
	if err != nil {
		return domain.NetworkPolicy{}, err
	}
	d, err := domain.ParseNetworkEntries(prefix+"denyOut", deny)
	if err != nil {
		return domain.NetworkPolicy{}, err
	}
	return domain.NetworkPolicy{AllowOut: a, DenyOut: d}, nil
}

// updateNetwork replaces the sandbox's egress policy: 204, applied to its new
// connections. allow_internet_access false is E2B's denyOut ["0.0.0.0/0"]; true cannot
// give internet access back to a sandbox created without it (Warren fixes that at
// creation), which is refused rather than ignored.
func (s *Server) updateNetwork(w http.ResponseWriter, r *http.Request) error {
	p, id, req, err := edge.SandboxCall[networkUpdateRequest](w, r, decodeJSON)
	if err != nil {
		return err
	}
	switch {
	case len(req.Rules) > 0:
		return domain.Invalid("rules", "rules is not supported by this Warren server: egress requests cannot be rewritten")
	case present(req.EgressProxy):
		return domain.Invalid("egressProxy", "egressProxy is not supported by this Warren server: egress cannot go through a proxy")
	}
	np, err := e2bPolicy("", req.AllowOut, req.DenyOut)
	if err != nil {
		return err
	}
	if req.AllowInternetAccess != nil {
		if *req.AllowInternetAccess {
			sb, err := s.svc.Get(r.Context(), p, id)
			if err != nil {
				return err
			}
			if !sb.Internet {
				return domain.Invalid("allow_internet_access", "sandbox %s was created without internet access, which cannot be turned on later; list the destinations it may reach in allowOut (%q for all), or create a sandbox with allow_internet_access true", id, domain.AllTraffic)
			}
		} else {
			np.DenyOut = append([]string{domain.AllTraffic}, np.DenyOut...)
			if np, err = domain.NewNetworkPolicy(np.AllowOut, np.DenyOut); err != nil {
				return err
			}
		}
	}
	if _, err := s.svc.SetNetwork(r.Context(), p, id, np); err != nil {
		return err
	}
	noContent(w)
	return nil
}
