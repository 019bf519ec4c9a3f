package rest

import (
	"context"
	"net/http"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

// WithNodes serves the node table (GET /v1/nodes, drain, undrain) from ns.
func WithNodes(ns domain.NodeService) Option { return func(o *options) { o.nodes = ns } }

// nodeJSON is one node as it last reported itself.
type nodeJSON struct {
	Name        string              `json:"name"`
	Address     string              `json:"address"`
	State       string              `json:"state"`
	Runtimes    []string            `json:"runtimes"`
	Templates   []string            `json:"templates"`
	Capacity    domain.NodeCapacity `json:"capacity"`
	Free        domain.NodeCapacity `json:"free"`
	Sandboxes   int                 `json:"sandboxes"`
	WarmPools   map[string]int      `json:"warm_pools"`
	StartedAt   *time.Time          `json:"started_at,omitempty"`
	HeartbeatAt time.Time           `json:"heartbeat_at"`
}

type listNodesResponse struct {
	Nodes []nodeJSON `json:"nodes"`
}

func toNodeJSON(n *domain.Node) nodeJSON {
	j := nodeJSON{Name: n.Name, Address: n.Address, State: string(n.State), Runtimes: n.Runtimes, Templates: n.Templates,
		Capacity: n.Capacity, Free: n.Free, Sandboxes: n.Sandboxes, WarmPools: n.WarmPools,
		StartedAt: optTime(n.StartedAt), HeartbeatAt: n.HeartbeatAt.UTC()}
	if j.Runtimes == nil {
		j.Runtimes = []string{}
	}
	if j.Templates == nil {
		j.Templates = []string{}
	}
	if j.WarmPools == nil {
		j.WarmPools = map[string]int{}
	}
	return j
}

// nodeService returns the node service, or a 404 on a server without one.
func nodeService(o *options) (domain.NodeService, error) {
	if o.nodes == nil {
		return nil, domain.Errorf(domain.KindNotFound, "this server keeps no node table")
	}
	return o.nodes, nil
}

// listNodes answers GET /v1/nodes: every node, by name (platform admins).
func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	ns, err := nodeService(&s.opts)
	if err != nil {
		return err
	}
	nodes, err := ns.ListNodes(r.Context(), p)
	if err != nil {
		return err
	}
	resp := listNodesResponse{Nodes: make([]nodeJSON, 0, len(nodes))}
	for _, n := range nodes {
		resp.Nodes = append(resp.Nodes, toNodeJSON(n))
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}

// drainNode answers POST /v1/nodes/{name}/drain.
func (s *Server) drainNode(w http.ResponseWriter, r *http.Request) error {
	return setNode(s, w, r, domain.NodeService.Drain)
}

// undrainNode answers POST /v1/nodes/{name}/undrain.
func (s *Server) undrainNode(w http.ResponseWriter, r *http.Request) error {
	return setNode(s, w, r, domain.NodeService.Undrain)
}

// setNode answers a drain or undrain with the node as set.
func setNode(s *Server, w http.ResponseWriter, r *http.Request,
	set func(domain.NodeService, context.Context, domain.Principal, string) (*domain.Node, error)) error {
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	ns, err := nodeService(&s.opts)
	if err != nil {
		return err
	}
	n, err := set(ns, r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, toNodeJSON(n))
	return nil
}
