// Package warren is the Go SDK for Warren's native REST API (/v1): sandboxes for AI
// agents and their ports, commands in them (run to the end and streamed, or started in
// the background with stdin and signals), their files, code execution in a sandbox's
// code interpreter, and the tenancy, usage and billing API (teams, users, API keys,
// usage, plans, invoices, audit log).
//
// A Client talks to one server. Configuration comes from options or the environment
// (WARREN_API_URL, default http://127.0.0.1:3000; WARREN_API_KEY; WARREN_DOMAIN to
// override the sandbox domain GetHost takes from the server):
//
//	c, err := warren.New()
//	if err != nil { ... }
//	sbx, err := c.CreateSandbox(ctx, warren.SandboxOptions{Template: "base"})
//	if err != nil { ... }
//	defer sbx.Kill(context.WithoutCancel(ctx))
//	res, err := sbx.Commands().Run(ctx, "echo hello", warren.RunOptions{})
//	fmt.Print(res.Stdout) // hello
//
// Errors the API reports are *APIError values (or *RateLimitedError and
// *QuotaExceededError, which wrap one); match them with errors.Is against ErrNotFound,
// ErrAuthentication, ErrForbidden, ErrConflict, ErrInvalid, ErrRateLimited,
// ErrQuotaExceeded, ErrUnavailable and ErrTimeout, or with errors.As. A command that
// exits non-zero is a *CommandExitError unless RunOptions.AllowNonZeroExit is set; one
// killed at its timeout is a *CommandTimeoutError (matching ErrTimeout). Both carry the
// result with the output.
//
// Requests answered 429 (rate limited) or 503 (unavailable: the server did not do the
// work) are retried with exponential backoff and jitter, honouring Retry-After, a
// bounded number of times and only when the request can be sent again (see
// RetryPolicy).
//
// The package uses only the standard library and speaks only the documented wire
// format (internal/api/rest/openapi.json in the Warren repository); every route it
// calls is listed in one table that a test checks against that document.
package warren
