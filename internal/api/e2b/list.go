package e2b

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

const (
	// listLimit is the page size of GET /v2/sandboxes when none is asked for (and its max).
	listLimit = 100
	// maxV1Pages bounds the unpaged v1 listing (listLimit * maxV1Pages sandboxes).
	maxV1Pages = 100
)

// listV2 serves the SDK's Sandbox.list paginator: running and paused sandboxes (the
// state filter picks), newest first unless order=asc, with X-Next-Token when there is more.
func (s *Server) listV2(w http.ResponseWriter, r *http.Request) error {
	return s.list(w, r, parseListQuery, 1)
}

// listV1 serves the legacy GET /sandboxes: every running sandbox, unpaged (up to
// maxV1Pages pages), filtered by metadata only.
func (s *Server) listV1(w http.ResponseWriter, r *http.Request) error {
	return s.list(w, r, parseV1Query, maxV1Pages)
}

// list answers up to pages pages of the caller's running sandboxes that the query,
// read with parse, selects; X-Next-Token carries the cursor of what is left.
func (s *Server) list(w http.ResponseWriter, r *http.Request, parse func(url.Values) (domain.SandboxFilter, error), pages int) error {
	f, err := parse(r.URL.Query())
	if err != nil {
		return err
	}
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	out, next := []listedSandboxJSON{}, ""
	for range pages {
		var items []*domain.Sandbox
		items, next, err = s.svc.List(r.Context(), p, f)
		if err != nil {
			if domain.IsKind(err, domain.KindInvalid) && domain.FieldOf(err) == "cursor" {
				return domain.Invalid("nextToken", "nextToken is malformed: pass the X-Next-Token of the previous page unchanged")
			}
			return err
		}
		for _, sb := range items {
			if slices.Contains(f.States, sb.State) { // a state that changed meanwhile
				out = append(out, s.toListed(sb))
			}
		}
		if f.Cursor = next; next == "" {
			break
		}
	}
	if next != "" {
		w.Header().Set("X-Next-Token", next)
	}
	s.edge.WriteJSON(w, r, http.StatusOK, out)
	return nil
}

// parseV1Query reads GET /sandboxes' query: metadata only; other parameters are ignored.
// The v1 listing has running sandboxes only.
func parseV1Query(q url.Values) (domain.SandboxFilter, error) {
	md, err := parseMetadataQuery(q)
	return domain.SandboxFilter{States: []domain.SandboxState{domain.StateRunning}, Metadata: md, Limit: listLimit}, err
}

// parseListQuery reads GET /v2/sandboxes' query. Unknown parameters are ignored, as E2B
// does. state (running, paused or both, comma-separated) defaults to both.
func parseListQuery(q url.Values) (f domain.SandboxFilter, err error) {
	f = domain.SandboxFilter{States: []domain.SandboxState{domain.StateRunning, domain.StatePaused}, Limit: listLimit}
	if f.Metadata, err = parseMetadataQuery(q); err != nil {
		return f, err
	}
	if vals, ok := q["state"]; ok {
		f.States = nil
		for _, st := range strings.Split(strings.Join(vals, ","), ",") {
			switch st = strings.TrimSpace(st); st {
			case "running", "paused":
				if !slices.Contains(f.States, domain.SandboxState(st)) {
					f.States = append(f.States, domain.SandboxState(st))
				}
			case "":
			default:
				return f, domain.Invalid("state", "state must be a comma-separated list of running and paused, got %q", st)
			}
		}
		if len(f.States) == 0 {
			f.States = []domain.SandboxState{domain.StateRunning, domain.StatePaused}
		}
	}
	if f.CreatedAfter, err = edge.TimeParam(q.Get("startedAfter"), "startedAfter"); err != nil {
		return f, err
	}
	if v := q.Get("template"); v != "" {
		f.TemplateID = resolveTemplate(v)
	}
	switch v := q.Get("order"); v {
	case "", "desc":
	case "asc":
		f.Ascending = true
	default:
		return f, domain.Invalid("order", "order must be asc or desc, got %q", v)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > listLimit {
			return f, domain.Invalid("limit", "limit must be an integer from 1 to %d, got %q", listLimit, v)
		}
		f.Limit = n
	}
	f.Cursor = q.Get("nextToken")
	return f, nil
}

// parseMetadataQuery decodes the metadata filter, which the SDK encodes three times: each
// key and value with encodeURIComponent, the pairs with URLSearchParams, the whole string
// once more as a query value. url.Values has undone the last; this undoes the other two,
// like E2B's server: unescape the whole string, split on & and =, unescape key and value.
// Observed: metadata=a%3Db%252520c means {a: "b c"}.
func parseMetadataQuery(q url.Values) (map[string]string, error) {
	raw := q.Get("metadata")
	if raw == "" {
		return nil, nil
	}
	bad := func(format string, args ...any) error {
		return domain.Invalid("metadata", "metadata filter: "+format+
			`; expected URL-encoded key=value pairs joined by & (as the E2B SDK sends them)`, args...)
	}
	pairs, err := url.QueryUnescape(raw)
	if err != nil {
		return nil, bad("%q is not URL-encoded", raw)
	}
	m := map[string]string{}
	for _, pair := range strings.Split(pairs, "&") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || strings.Contains(v, "=") {
			return nil, bad("%q is not a key=value pair", pair)
		}
		key, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, bad("%q is not URL-encoded", pair)
		}
		if key == "" {
			return nil, bad("%q has an empty key", pair)
		}
		m[key] = val
	}
	return m, nil
}
