// Package domain holds Warren's core types (Sandbox, Template, Team, APIKey), the
// interfaces the rest of the system plugs into (Store), and the error kinds that the
// API edges map to status codes. It imports only the standard library.
package domain
