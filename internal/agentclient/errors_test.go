package agentclient

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/domain"
)

func TestAgentErrorKinds(t *testing.T) {
	cause := errors.New("dial tcp 10.211.0.2:49983: connect: connection refused")
	cases := []struct {
		code  connect.Code
		msg   string
		kind  domain.Kind
		field string
	}{
		{connect.CodeNotFound, "path '/x' does not exist", domain.KindNotFound, ""},
		{connect.CodeInvalidArgument, "'/x' is a directory", domain.KindInvalid, "path"},
		{connect.CodeOutOfRange, "offset past the end", domain.KindInvalid, "path"},
		{connect.CodeAlreadyExists, "directory '/x' already exists", domain.KindConflict, ""},
		{connect.CodeFailedPrecondition, "stdin of this process was closed", domain.KindConflict, ""},
		{connect.CodeAborted, "aborted", domain.KindConflict, ""},
		{connect.CodePermissionDenied, "permission denied on '/proc/1/mem'", domain.KindConflict, ""},
		{connect.CodeResourceExhausted, "no space left for '/x'", domain.KindQuotaExceeded, ""},
		{connect.CodeUnauthenticated, `invalid username: "mallory" does not exist in the sandbox`, domain.KindInvalid, "user"},
		// The agent refused the server's own token: the server's fault, not the caller's.
		{connect.CodeUnauthenticated, "missing or wrong access token", domain.KindInternal, ""},
		{connect.CodeUnavailable, cause.Error(), domain.KindUnavailable, ""},
		{connect.CodeDeadlineExceeded, cause.Error(), domain.KindUnavailable, ""},
		{connect.CodeCanceled, cause.Error(), domain.KindUnavailable, ""},
		{connect.CodeInternal, "reading '/x': input/output error", domain.KindInternal, ""},
		{connect.CodeUnimplemented, "no such method", domain.KindInternal, ""},
		{connect.CodeUnknown, cause.Error(), domain.KindInternal, ""},
	}
	for _, c := range cases {
		err := agentError(c.code, c.msg, "path", connect.NewError(c.code, errors.New(c.msg)))
		if domain.KindOf(err) != c.kind || domain.FieldOf(err) != c.field {
			t.Errorf("%s %q: kind %s, field %q; want %s, %q", c.code, c.msg, domain.KindOf(err), domain.FieldOf(err), c.kind, c.field)
		}
		msg := domain.PublicMessage(err)
		if strings.Contains(msg, "10.211.0.2") || strings.Contains(msg, "dial tcp") {
			t.Errorf("%s: public message %q carries the transport error", c.code, msg)
		}
		if c.kind == domain.KindUnavailable && !strings.Contains(err.Error(), "10.211.0.2") {
			t.Errorf("%s: the cause is lost for the log: %v", c.code, err)
		}
	}
	// mapErr passes errors that are not the agent's through.
	if err := mapErr(context.Canceled); err != context.Canceled {
		t.Errorf("mapErr(context.Canceled) = %v", err)
	}
}

// TestRefusals asks a real agent what the server cannot know in advance: a sandbox
// user that does not exist is the caller's mistake (400 naming "user"), a wrong access
// token the server's (500), over RPC and over the /files routes alike.
func TestRefusals(t *testing.T) {
	c := newTestAgent(t)
	ctx := context.Background()
	if _, err := c.Files().Stat(ctx, "/tmp", "mallory"); !domain.IsKind(err, domain.KindInvalid) || domain.FieldOf(err) != "user" {
		t.Errorf("stat as an unknown user: %v (%s, field %q), want invalid user", err, domain.KindOf(err), domain.FieldOf(err))
	}
	if err := c.Files().ReadFile(ctx, "/etc/hostname", "mallory", &bytes.Buffer{}); !domain.IsKind(err, domain.KindInvalid) || domain.FieldOf(err) != "user" {
		t.Errorf("read as an unknown user: %v, want invalid user", err)
	}

	wrong := New(strings.TrimPrefix(c.base, "http://"), "not-the-token")
	defer wrong.Close()
	if _, err := wrong.Files().Stat(ctx, "/tmp", ""); !domain.IsKind(err, domain.KindInternal) {
		t.Errorf("stat with a wrong token: %v (%s), want internal", err, domain.KindOf(err))
	}
	if _, err := wrong.Files().WriteFile(ctx, "/tmp/x", "", strings.NewReader("x")); !domain.IsKind(err, domain.KindInternal) {
		t.Errorf("write with a wrong token: %v (%s), want internal", err, domain.KindOf(err))
	}
}

// TestUnreachable checks that an agent that does not answer is Unavailable, and that
// the public message says so without the sandbox's address or the dial error.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	c := New(addr, "tok")
	defer c.Close()
	ctx := context.Background()
	_, statErr := c.Files().Stat(ctx, "/tmp", "")
	_, writeErr := c.Files().WriteFile(ctx, "/tmp/x", "", strings.NewReader("x"))
	_, metricsErr := c.Metrics(ctx)
	for name, err := range map[string]error{
		"stat":    statErr,
		"read":    c.Files().ReadFile(ctx, "/tmp/x", "", &bytes.Buffer{}),
		"write":   writeErr,
		"metrics": metricsErr,
	} {
		msg := domain.PublicMessage(err)
		if !domain.IsKind(err, domain.KindUnavailable) || strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "dial") ||
			!strings.Contains(msg, "did not answer") {
			t.Errorf("%s: %v (%s), public message %q", name, err, domain.KindOf(err), msg)
		}
		if !strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("%s: the cause is lost for the log: %v", name, err)
		}
	}
}
