// Package version holds the protocol versions that the server and warren-agent must
// agree on. It imports nothing, so both binaries can use it without the server linking
// the agent or the agent linking server code.
package version

// Envd is the version of E2B's envd protocol that warren-agent implements. The control
// plane reports it to SDKs as envdVersion, which gates SDK features (see
// e2b-protocol.md §5).
const Envd = "0.6.13"
