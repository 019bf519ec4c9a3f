package edge

import (
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// LogEntry is one line of a sandbox's own log as both APIs send it: E2B's
// SandboxLogEntry, whose shape /v1 adopted (openapi.json's LogEntry). A change here
// changes both contracts.
type LogEntry struct {
	Timestamp time.Time         `json:"timestamp"`
	Level     string            `json:"level"`
	Message   string            `json:"message"`
	Fields    map[string]string `json:"fields"`
}

// ToLogEntry converts e; a line without fields has an empty object, never null.
func ToLogEntry(e domain.LogEntry) LogEntry {
	f := e.Fields
	if f == nil {
		f = map[string]string{}
	}
	return LogEntry{Timestamp: e.Timestamp.UTC(), Level: e.Level, Message: e.Message, Fields: f}
}
