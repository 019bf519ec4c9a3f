package rest

import (
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// buildRequest is POST /v1/templates as JSON (or the "spec" part of a multipart body).
type buildRequest struct {
	Name         string            `json:"name"`
	FromTemplate string            `json:"from_template"`
	FromImage    string            `json:"from_image"`
	Steps        []buildStepJSON   `json:"steps"`
	StartCmd     string            `json:"start_cmd"`
	Ready        *readyCheckJSON   `json:"ready"`
	Env          map[string]string `json:"env"`
	Workdir      string            `json:"workdir"`
	User         string            `json:"user"`
	Timeout      int64             `json:"timeout"` // seconds; 0 = the server's limit
	// CPUCores and MemoryMB are what the template's sandboxes get when they ask for
	// none (0: the server's defaults).
	CPUCores float64 `json:"cpu_cores"`
	MemoryMB int64   `json:"memory_mb"`
	// BuildArgs are a Dockerfile's --build-arg values (multipart with a Dockerfile).
	BuildArgs map[string]string `json:"build_args"`
}

type buildStepJSON struct {
	Type      string   `json:"type"`
	Args      []string `json:"args"`
	FilesHash string   `json:"files_hash,omitempty"`
	Force     bool     `json:"force,omitempty"`
}

type readyCheckJSON struct {
	Port    int    `json:"port,omitempty"`
	URL     string `json:"url,omitempty"`
	Process string `json:"process,omitempty"`
	File    string `json:"file,omitempty"`
	Cmd     string `json:"cmd,omitempty"`
	Timeout int64  `json:"timeout,omitempty"` // seconds
}

type buildStepResultJSON struct {
	Index      int    `json:"index"`
	Key        string `json:"key"`
	Cached     bool   `json:"cached"`
	ExitCode   int    `json:"exit_code"`
	DurationMS int64  `json:"duration_ms"`
}

type buildJSON struct {
	ID         string                `json:"id"`
	TemplateID string                `json:"template_id"`
	State      string                `json:"state"`
	Reason     string                `json:"reason,omitempty"`
	Steps      []buildStepResultJSON `json:"steps"`
	CreatedAt  time.Time             `json:"created_at"`
	FinishedAt *time.Time            `json:"finished_at,omitempty"`
}

type buildListResponse struct {
	Builds []buildJSON `json:"builds"`
}

type buildResponse struct {
	Template templateJSON `json:"template"`
	Build    buildJSON    `json:"build"`
}

type buildLogLineJSON struct {
	Offset  int       `json:"offset"`
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
}

type buildLogsResponse struct {
	Lines      []buildLogLineJSON `json:"lines"`
	NextOffset int                `json:"next_offset"`
	State      string             `json:"state"`
}

func toBuildJSON(b *domain.Build) buildJSON {
	out := buildJSON{ID: b.ID, TemplateID: b.TemplateID, State: string(b.State), Reason: b.Reason,
		Steps: []buildStepResultJSON{}, CreatedAt: b.CreatedAt, FinishedAt: optTime(b.FinishedAt)}
	for _, s := range b.Steps {
		out.Steps = append(out.Steps, buildStepResultJSON{Index: s.Index, Key: s.Key, Cached: s.Cached, ExitCode: s.ExitCode,
			DurationMS: s.Duration.Milliseconds()})
	}
	return out
}

func toTemplateJSON(t *domain.Template) templateJSON {
	return templateJSON{ID: t.ID, Description: t.Description, Ready: t.Ready, BuiltAt: optTime(t.BuiltAt),
		SizeBytes: t.SizeBytes, BuiltIn: t.TeamID == "", StartCmd: t.StartCmd, CPUCores: t.Limits.CPUCores, MemoryMB: t.Limits.MemoryMB}
}
