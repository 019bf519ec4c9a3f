// Package agent is warren-agent, the daemon that runs as PID 1 inside every sandbox and
// speaks E2B's envd protocol (version [Version]) so the unmodified E2B SDKs work against
// Warren.
//
// One [Agent] is an [http.Handler] serving, on a single mux:
//
//   - the Connect RPC services process.Process and filesystem.Filesystem
//     (connect-go, so the SDK's Connect+JSON and binary protobuf both work);
//   - the plain HTTP routes /health, /files, /envs, /metrics and /init.
//
// Processes are started without os/exec: a reaper (reaper.go) owns every wait on a
// child, so that when the agent is PID 1 it can reap orphaned grandchildren with
// wait4(-1) without stealing exit statuses from the processes it started itself.
//
// File metadata (the SDK's X-Metadata-* headers and EntryInfo.metadata) is stored as
// extended attributes named "user.e2b.<key>" on the file.
//
// The package imports nothing from Warren except the generated envd protobuf code and
// the log key and version constants (logkey, version), so
// the agent binary stays small and free of server code (see the deps test in
// cmd/warren-agent).
package agent

import "github.com/warren-sh/warren/internal/version"

// Version is the envd protocol version this agent implements. The control plane
// reports the same constant (package version) to SDKs as envdVersion, which gates SDK
// features (see docs/e2b-protocol.md §5).
const Version = version.Envd
