// Package logkey names the attributes that Warren's operator logs share, so that one
// thing has one key in every package (an operator filters on sandbox_id, never also on
// sandbox) and a typo is a compile error.
//
// It imports nothing, so that the in-sandbox agent may use it too (see the deps test
// in cmd/warren-agent). Keys used by one call site only may stay literals there.
package logkey

const (
	// Subsystem names the component that logs ("node", "api.rest", ...). A component's
	// constructor adds it once with slog.Logger.With; callers hand over their logger
	// without it, so that no line carries the attribute twice.
	Subsystem = "subsystem"
	// Err is the error being reported, as slog.Any(logkey.Err, err).
	Err = "err"
	// SandboxID, TeamID, UserID and KeyID identify the objects a line is about.
	SandboxID = "sandbox_id"
	TeamID    = "team_id"
	UserID    = "user_id"
	KeyID     = "key_id"
	// RequestID is the id of the API request a line belongs to, as in the
	// X-Request-Id header and in error bodies.
	RequestID = "request_id"
	// TraceID and SpanID are the OpenTelemetry trace and span a line was logged in
	// (hex, as in a W3C traceparent header), added by telemetry.LogHandler.
	TraceID = "trace_id"
	SpanID  = "span_id"
	// Template is a template id.
	Template = "template"
	// PID is a process id inside a sandbox.
	PID = "pid"
	// Image is an OCI image reference (registry/repository:tag or @digest).
	Image = "image"
	// BuildID is a template build's id.
	BuildID = "build_id"
	// Node is a node's name (--node-name); Job a job that runs on one server at a time.
	Node = "node"
	Job  = "job"
)
