package agentclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/domain"
)

// unknownUser starts the agent's refusal of a sandbox user that does not exist
// (agent.userNamed), which it sends as Unauthenticated like a wrong access token.
const unknownUser = "invalid username"

// agentError maps a refusal of the agent, a Connect code (or an HTTP status turned into
// one by httpCode) with the agent's message, to a domain error. It is the one place
// where the agent's codes become kinds:
//
//	NotFound                                   NotFound
//	InvalidArgument, OutOfRange                Invalid (naming field)
//	AlreadyExists, FailedPrecondition, Aborted Conflict: the sandbox's state refuses
//	PermissionDenied                           Conflict: the agent runs as root, so this is
//	                                           the sandbox's filesystem refusing, never the
//	                                           caller's rights
//	ResourceExhausted                          QuotaExceeded: the sandbox's disk is full (or
//	                                           Conflict: a reply over the client's limit)
//	Unauthenticated                            Invalid "user" when the agent does not know
//	                                           the sandbox user the caller named; otherwise
//	                                           it refused the server's access token
//	                                           (ErrTokenRefused): a
//	                                           server fault, internal
//	Unavailable, DeadlineExceeded, Canceled    Unavailable, with a fixed message
//	anything else                              internal
//
// The agent's messages for the first five are written for the caller (they name the
// caller's paths and processes) and become the public message. Transport failures and
// the agent's internal errors are only wrapped: their text (the sandbox's address, a
// dial error) reaches the operator log, never the client.
func agentError(code connect.Code, msg, field string, cause error) error {
	switch code {
	case connect.CodeNotFound:
		return domain.Errorf(domain.KindNotFound, "%s", msg)
	case connect.CodeInvalidArgument, connect.CodeOutOfRange:
		return domain.Invalid(field, "%s", msg)
	case connect.CodeAlreadyExists, connect.CodeFailedPrecondition, connect.CodeAborted, connect.CodePermissionDenied:
		return domain.Errorf(domain.KindConflict, "%s", msg)
	case connect.CodeResourceExhausted:
		// The agent uses this code for a full disk; connect uses it for a message over
		// the client's read limit, saying so.
		if strings.Contains(msg, "larger than configured max") {
			return domain.Errorf(domain.KindConflict, "the sandbox's agent sent a reply of more than %d MiB, which the server does not read; ask for less (for a listing: fewer levels)", maxMessage>>20)
		}
		return domain.Errorf(domain.KindQuotaExceeded, "%s; free space in the sandbox, or create it with a larger limits.disk_mb", msg)
	case connect.CodeUnauthenticated:
		if strings.HasPrefix(msg, unknownUser) {
			return domain.Invalid("user", "%s", msg)
		}
		return fmt.Errorf("%w: %w", ErrTokenRefused, cause)
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeCanceled:
		return unreachable("", cause)
	}
	return fmt.Errorf("sandbox agent: %w", cause)
}

// ErrTokenRefused is in the error of a call the agent refused for its access token
// (errors.Is): the agent holds another token than the server's.
var ErrTokenRefused = errors.New("the sandbox's agent refused the server's access token")

// unreachable is the error of an agent call that got no answer (the connection failed,
// the stream broke, the call timed out): Unavailable, saying what to do, with the cause
// kept for the log. doing, if any, says what the call was doing ("reading /tmp/a").
func unreachable(doing string, cause error) error {
	msg := "the sandbox's agent did not answer; check that the sandbox is still running, then retry"
	if doing != "" {
		msg = doing + ": " + msg
	}
	return &domain.Error{Kind: domain.KindUnavailable, Message: msg, Err: cause}
}

// mapErr turns an agent RPC error into a domain error (agentError); errors that are not
// the agent's (the caller's own ctx) pass through.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return err
	}
	return agentError(ce.Code(), ce.Message(), "", err)
}

// httpErr maps a non-200 answer of the agent's plain HTTP routes (/files, /metrics) for
// path; its body is envd's {code, message}.
func httpErr(resp *http.Response, path string) error {
	var body struct {
		Message string `json:"message"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &body) != nil || body.Message == "" {
		body.Message = string(b)
	}
	msg := body.Message
	code := httpCode(resp.StatusCode)
	if code == connect.CodeResourceExhausted {
		msg = "no space left in the sandbox writing " + path + ": " + msg
	}
	return agentError(code, msg, "path", fmt.Errorf("agent answered %s for %s: %s", resp.Status, path, body.Message))
}

// httpCode is the Connect code of an HTTP status of the agent.
func httpCode(status int) connect.Code {
	switch status {
	case http.StatusBadRequest, http.StatusNotAcceptable:
		return connect.CodeInvalidArgument
	case http.StatusUnauthorized:
		return connect.CodeUnauthenticated
	case http.StatusForbidden:
		return connect.CodePermissionDenied
	case http.StatusNotFound:
		return connect.CodeNotFound
	case http.StatusConflict:
		return connect.CodeAlreadyExists
	case http.StatusInsufficientStorage, http.StatusRequestEntityTooLarge:
		return connect.CodeResourceExhausted
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return connect.CodeUnavailable
	}
	return connect.CodeInternal
}
