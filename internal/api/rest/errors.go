package rest

import (
	"net/http"
	"strconv"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/api/httpjson"
)

// errorBody is the JSON shape of every error response and of the SSE "error" event.
type errorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	Field     string `json:"field,omitempty"`
	quotaJSON
}

// quotaJSON explains a quota refusal (Quota, Limit, Used) and a rate limit (RetryAfter,
// in seconds); all are left out otherwise.
type quotaJSON struct {
	Quota      string   `json:"quota,omitempty"`
	Limit      *float64 `json:"limit,omitempty"`
	Used       *float64 `json:"used,omitempty"`
	RetryAfter int      `json:"retry_after,omitempty"`
}

// toErrorBody renders c, classified for r, in /v1's shape.
func toErrorBody(r *http.Request, c edge.Class) errorBody {
	b := errorBody{Code: c.Code, Message: c.Message, RequestID: edge.RequestID(r.Context()), Field: c.Field}
	b.RetryAfter = c.RetryAfter
	if q := c.Quota; q != nil {
		b.Quota, b.Limit, b.Used = q.Quota, &q.Limit, &q.Used
	}
	return b
}

// renderError is /v1's edge.Renderer.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, c edge.Class) {
	if c.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(c.RetryAfter))
	}
	if c.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="warren"`)
	}
	s.edge.WriteJSON(w, r, c.Status, toErrorBody(r, c))
}

// errorEvent is the data of an SSE "error" event: err as an error body.
func (s *Server) errorEvent(r *http.Request, err error) errorBody {
	return toErrorBody(r, s.edge.Class(r, err))
}

// decodeJSON reads one JSON object from the capped body into dst. An empty body leaves
// dst as is (all defaults). Errors are KindInvalid and say which field is wrong and how.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	return httpjson.Decode(w, r, dst, s.opts.maxJSONBytes, "unknown field %q")
}
