package e2b

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/api/httpjson"
)

// maxJSONBytes caps JSON request bodies.
const maxJSONBytes = 1 << 20

// defaultRetryAfter is the Retry-After sent with 429 when the error does not say how long
// to wait. The SDK retries up to 3 times when the wait fits its request timeout.
const defaultRetryAfter = 5 * time.Second

// errorBody is E2B's error shape. Code equals the HTTP status: the SDK reads it, not the
// status, to tell "not found" (404) and "already paused" (409) from other failures.
type errorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// renderError is the E2B API's edge.Renderer. E2B's body has no field member, so the
// message names the field itself; every 429 says how long to wait, and so does a 503
// from a full node.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, c edge.Class) {
	msg := c.Message
	if c.Field != "" && !strings.Contains(msg, c.Field) {
		msg = c.Field + ": " + msg
	}
	if c.Status == http.StatusTooManyRequests || c.RetryAfter > 0 {
		wait := c.RetryAfter
		if wait == 0 {
			wait = int(defaultRetryAfter / time.Second)
		}
		w.Header().Set("Retry-After", strconv.Itoa(wait))
	}
	s.edge.WriteJSON(w, r, c.Status, errorBody{Code: c.Status, Message: msg})
}

// noContent answers a success without a body: 204, which the SDK accepts and never parses.
func noContent(w http.ResponseWriter) {
	w.WriteHeader(http.StatusNoContent)
}

// decodeJSON reads one JSON object from the capped body (chunked or not) into dst. An
// empty body leaves dst as is. Unknown fields are rejected: a setting Warren does not know
// could be one the caller relies on for security. Errors are KindInvalid and name the field.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	return httpjson.Decode(w, r, dst, maxJSONBytes, "field %q is not supported by this Warren server")
}
