package edge

import (
	"net/http"

	"github.com/warren-sh/warren/internal/domain"
)

// Forwarder serves on another node what this server must not serve itself: in a
// cluster, a sandbox's requests are served by the node that runs it, a create by the
// node placement picks, and a template build by the build node.
type Forwarder interface {
	// Forward sends r (from p; zero for routes authenticated by a token of their own)
	// to the node that must serve t and relays its answer, returning true; it returns
	// false when this server serves r itself. An error is written by the caller while
	// nothing of the response was.
	Forward(w http.ResponseWriter, r *http.Request, p domain.Principal, t Target) (bool, error)
}

// TargetKind is what a forwarded route acts on.
type TargetKind int

// The kinds of Target.
const (
	// TargetSandbox routes act on one sandbox (Target.Sandbox).
	TargetSandbox TargetKind = iota + 1
	// TargetCreate routes make a new sandbox: its node is placed.
	TargetCreate
	// TargetBuild routes build templates: they run on the build node.
	TargetBuild
	// TargetSnapshot routes delete a snapshot (Target.Snapshot, an id or name; for
	// E2B's DELETE /templates/{id}, maybe none): its files are on the node that took it.
	TargetSnapshot
)

// Target is what a route acts on, for a Forwarder.
type Target struct {
	Kind TargetKind
	// Sandbox is the sandbox id of a TargetSandbox route.
	Sandbox string
	// Snapshot is the snapshot reference of a TargetSnapshot route.
	Snapshot string
}

// Forwarded hands r to f first, for the route's target (target returns the zero Target
// for requests f never takes), and serves it with next when f does not take it.
// Refusals are written with WriteError. It goes inside Authenticate (the principal is
// in the context, the request is charged to the team's budget here) and outside the
// audit (the node that serves the request records it).
func (e *Edge) Forwarded(f Forwarder, target func(*http.Request) Target, next http.Handler) http.Handler {
	if f == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := target(r)
		if t.Kind == 0 {
			next.ServeHTTP(w, r)
			return
		}
		p, _ := PrincipalFrom(r.Context())
		done, err := f.Forward(w, r, p, t)
		switch {
		case err != nil && !Started(w):
			e.WriteError(w, r, err)
		case !done && err == nil:
			next.ServeHTTP(w, r)
		}
	})
}
