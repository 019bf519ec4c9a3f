package edgetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// ErrorCase is an error a service may return and what the edge makes of it.
type ErrorCase struct {
	Name string
	Err  error
	// Status and Code are the HTTP status and the machine-readable code.
	Status int
	Code   string
	// Message is the client-safe message; "" for an internal error, whose message is
	// generic.
	Message string
	Field   string
	// Quota is the quota a refusal names, RetryAfter its wait in seconds (rate limits).
	Quota      string
	RetryAfter int
}

// ErrorCases are one error of each kind, and the kinds' corner cases (wrapped,
// spending limit, rate limit, full node), with what Classify must make of them.
func ErrorCases() []ErrorCase {
	return []ErrorCase{
		{Name: "not found", Err: domain.NotFound("sandbox", "abc"), Status: 404, Code: "not_found", Message: `sandbox "abc" not found`},
		{Name: "wrapped not found", Err: fmt.Errorf("getting sandbox: %w", domain.NotFound("sandbox", "abc")),
			Status: 404, Code: "not_found", Message: `sandbox "abc" not found`},
		{Name: "invalid field", Err: domain.Invalid("timeout", "must be at most 24 hours"), Status: 400, Code: "invalid",
			Message: "must be at most 24 hours", Field: "timeout"},
		{Name: "unauthorized", Err: domain.Errorf(domain.KindUnauthorized, "expired"), Status: 401, Code: "unauthorized", Message: "expired"},
		{Name: "forbidden", Err: domain.Errorf(domain.KindForbidden, "admins only"), Status: 403, Code: "forbidden", Message: "admins only"},
		{Name: "conflict", Err: domain.Errorf(domain.KindConflict, "already stopped"), Status: 409, Code: "conflict", Message: "already stopped"},
		{Name: "quota", Err: domain.Errorf(domain.KindQuotaExceeded, "too many sandboxes"), Status: 429, Code: "quota_exceeded",
			Message: "too many sandboxes"},
		{Name: "named quota", Err: domain.CheckSandboxQuota(domain.Quota{MaxSandboxes: 2}, domain.QuotaUsage{Sandboxes: 2}, domain.Limits{}),
			Status: 429, Code: "quota_exceeded", Quota: "max_sandboxes",
			Message: "quota max_sandboxes exceeded: the team's running sandboxes hold 2 of at most 2 sandboxes and this one needs 1 more; stop sandboxes you no longer need, or ask the operator to raise the quota"},
		{Name: "rate limit", Err: &domain.Error{Kind: domain.KindQuotaExceeded, Message: "slow down",
			Err: &domain.QuotaError{Quota: "requests_per_minute", Limit: 60, Used: 60, RetryAfter: 1500 * time.Millisecond}},
			Status: 429, Code: "rate_limited", Message: "slow down", Quota: "requests_per_minute", RetryAfter: 2},
		{Name: "spending limit", Err: &domain.Error{Kind: domain.KindQuotaExceeded, Message: "spending limit reached",
			Err: &domain.QuotaError{Quota: "spending_limit", Limit: 5, Used: 5}},
			Status: 403, Code: "quota_exceeded", Message: "spending limit reached", Quota: "spending_limit"},
		{Name: "unavailable", Err: domain.Errorf(domain.KindUnavailable, "node draining"), Status: 503, Code: "unavailable", Message: "node draining"},
		{Name: "node full", Err: fmt.Errorf("creating sandbox: %w", domain.NodeFull("memory", 4608, 1000, 30*time.Second)),
			Status: 503, Code: "node_full", RetryAfter: 30,
			Message: "this node has no room for the sandbox: it needs 4608 MB of free memory (its limit plus the node's reserve) and 1000 MB are free; " +
				"retry later, ask for a smaller memory_mb or disk_mb, or ask the operator to add capacity"},
		{Name: "kind without message", Err: &domain.Error{Kind: domain.KindNotFound}, Status: 404, Code: "not_found", Message: "not found"},
		{Name: "internal", Err: errors.New("disk on fire"), Status: 500, Code: "internal"},
	}
}

// Secrets stand for what must never reach a client: a sandbox's address, runsc's
// stderr, an agent's transport error.
var Secrets = []string{"10.211.0.2", "runsc", "dial tcp"}

// secret is an error whose text carries every one of Secrets.
var secret = errors.New("runsc: exit status 1: dial tcp 10.211.0.2:49983: connect: connection refused")

// LeakyErrors are errors whose text carries Secrets, as services return them: internal
// errors, context wrapped around a classified error, classified errors that wrap their
// cause. Message is the whole client-safe message.
func LeakyErrors() []ErrorCase {
	return []ErrorCase{
		{Name: "internal", Err: fmt.Errorf("starting sandbox abc: %w", secret), Status: 500, Code: "internal"},
		{Name: "context around a classified error", Err: fmt.Errorf("exec at 10.211.0.2 (runsc): %w",
			domain.Errorf(domain.KindConflict, "sandbox is stopping")), Status: 409, Code: "conflict", Message: "sandbox is stopping"},
		{Name: "classified error wrapping its cause", Err: &domain.Error{Kind: domain.KindUnavailable,
			Message: "the sandbox's agent did not answer; retry", Err: secret},
			Status: 503, Code: "unavailable", Message: "the sandbox's agent did not answer; retry"},
		{Name: "quota wrapping its cause", Err: &domain.Error{Kind: domain.KindQuotaExceeded, Message: "no space left",
			Err: fmt.Errorf("%w: %w", &domain.QuotaError{Quota: "disk"}, secret)},
			Status: 429, Code: "quota_exceeded", Message: "no space left", Quota: "disk"},
	}
}

// EachError runs check as a subtest for each of ErrorCases and LeakyErrors.
func EachError(t *testing.T, check func(t *testing.T, c ErrorCase)) {
	for _, c := range append(ErrorCases(), LeakyErrors()...) {
		t.Run(c.Name, func(t *testing.T) { check(t, c) })
	}
}

// NoSecrets fails t if body contains one of Secrets.
func NoSecrets(t testing.TB, body []byte) {
	t.Helper()
	for _, s := range Secrets {
		if strings.Contains(string(body), s) {
			t.Errorf("the response carries %q from an error's internals: %s", s, body)
		}
	}
}
