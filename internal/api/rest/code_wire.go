package rest

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
)

// The JSON shapes of code execution, and how an execution is assembled from the
// interpreter's lines (docs/e2b-protocol.md §4.1). openapi.json documents each of them.

type runCodeRequest struct {
	Code      string            `json:"code"`
	Language  string            `json:"language"`
	ContextID string            `json:"context_id"`
	Env       map[string]string `json:"env"`
	Timeout   int64             `json:"timeout"`
	Stream    bool              `json:"stream"`
}

type createContextRequest struct {
	Language string `json:"language"`
	Cwd      string `json:"cwd"`
}

type contextJSON struct {
	ID       string `json:"id"`
	Language string `json:"language"`
	Cwd      string `json:"cwd"`
}

func toContextJSON(c domain.CodeContext) contextJSON {
	return contextJSON{ID: c.ID, Language: c.Language, Cwd: c.Cwd}
}

type listContextsResponse struct {
	Contexts []contextJSON `json:"contexts"`
}

// maxExecutionPart bounds each part of a non-streamed execution the server assembles
// in memory: stdout, stderr and results (counted as the lines' bytes). What does not
// fit is dropped and the execution marked truncated.
const maxExecutionPart = 16 << 20

// execution is the non-streamed answer of POST /execute, built line by line by apply.
type execution struct {
	Results        []codeResult    `json:"results"`
	Logs           executionLogs   `json:"logs"`
	Error          *executionError `json:"error"`
	ExecutionCount int             `json:"execution_count"`
	Truncated      bool            `json:"truncated,omitempty"`

	// kept is how many bytes of each part (line type) apply has kept.
	kept map[string]int
}

type executionLogs struct {
	Stdout []string `json:"stdout"`
	Stderr []string `json:"stderr"`
}

type executionError struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Traceback string `json:"traceback"`
}

// codeResult is one result line without its type. png, jpeg and pdf are base64.
type codeResult struct {
	IsMainResult bool            `json:"is_main_result"`
	Text         string          `json:"text,omitempty"`
	HTML         string          `json:"html,omitempty"`
	Markdown     string          `json:"markdown,omitempty"`
	SVG          string          `json:"svg,omitempty"`
	PNG          string          `json:"png,omitempty"`
	JPEG         string          `json:"jpeg,omitempty"`
	PDF          string          `json:"pdf,omitempty"`
	LaTeX        string          `json:"latex,omitempty"`
	JSON         json.RawMessage `json:"json,omitempty"`
	JavaScript   string          `json:"javascript,omitempty"`
	Data         json.RawMessage `json:"data,omitempty"`
	Chart        json.RawMessage `json:"chart,omitempty"`
	// Extra holds the interpreter's extra object (other MIME types) and any key of the
	// line that is not a known field.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

func (e *execution) init() {
	e.Results = []codeResult{}
	e.Logs = executionLogs{Stdout: []string{}, Stderr: []string{}}
	e.kept = map[string]int{}
}

// fits reports whether a line of typ with n bytes still fits its part, and counts it
// if so; a line that does not fit marks the execution truncated.
func (e *execution) fits(typ string, n int) bool {
	if e.kept[typ]+n > maxExecutionPart {
		e.Truncated = true
		return false
	}
	e.kept[typ] += n
	return true
}

// apply adds one interpreter line to the execution. Lines of unknown types (keepalive,
// end_of_execution, future ones) change nothing. Preconditions: init was called.
func (e *execution) apply(ev domain.CodeEvent) error {
	switch ev.Type {
	case "stdout", "stderr", "result":
		if !e.fits(ev.Type, len(ev.Raw)) {
			return nil
		}
	}
	var line map[string]json.RawMessage
	if err := json.Unmarshal(ev.Raw, &line); err != nil {
		return fmt.Errorf("code interpreter sent a %s line that is not a JSON object: %w", ev.Type, err)
	}
	switch ev.Type {
	case "number_of_executions":
		var n *int
		if json.Unmarshal(line["execution_count"], &n) == nil && n != nil {
			e.ExecutionCount = *n
		}
	case "stdout":
		e.Logs.Stdout = append(e.Logs.Stdout, stringField(line, "text"))
	case "stderr":
		e.Logs.Stderr = append(e.Logs.Stderr, stringField(line, "text"))
	case "result":
		e.Results = append(e.Results, toCodeResult(line))
	case "error":
		e.Error = &executionError{
			Name: stringField(line, "name"), Value: stringField(line, "value"),
			Traceback: traceback(line["traceback"]),
		}
	case "unexpected_end_of_execution":
		value := stringField(line, "value")
		if value == "" {
			value = "the interpreter ended the execution unexpectedly (its kernel may have died); the context's state may be lost"
		}
		e.Error = &executionError{Name: "UnexpectedEndOfExecution", Value: value, Traceback: value}
	}
	return nil
}

// stringField returns line[key] if it is a JSON string, else "".
func stringField(line map[string]json.RawMessage, key string) string {
	var s string
	if json.Unmarshal(line[key], &s) != nil {
		return ""
	}
	return s
}

// traceback accepts the protocol's single string and Jupyter's list of lines.
func traceback(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var lines []string
	if json.Unmarshal(raw, &lines) == nil {
		return strings.Join(lines, "\n")
	}
	return ""
}

func toCodeResult(line map[string]json.RawMessage) codeResult {
	var r codeResult
	_ = json.Unmarshal(line["is_main_result"], &r.IsMainResult)
	strs := map[string]*string{
		"text": &r.Text, "html": &r.HTML, "markdown": &r.Markdown, "svg": &r.SVG, "png": &r.PNG,
		"jpeg": &r.JPEG, "pdf": &r.PDF, "latex": &r.LaTeX, "javascript": &r.JavaScript,
	}
	raws := map[string]*json.RawMessage{"json": &r.JSON, "data": &r.Data, "chart": &r.Chart}
	extra := map[string]json.RawMessage{}
	if raw, ok := line["extra"]; ok {
		_ = json.Unmarshal(raw, &extra) // a non-object extra is kept under its own name below
	}
	for k, v := range line {
		if k == "type" || k == "is_main_result" || k == "extra" && isObject(v) || isNull(v) {
			continue
		}
		if p, ok := strs[k]; ok && json.Unmarshal(v, p) == nil {
			continue
		}
		if p, ok := raws[k]; ok && (k == "json" || isObject(v)) {
			*p = v
			continue
		}
		if _, dup := extra[k]; !dup {
			extra[k] = v // an unknown key, or a known one of the wrong type
		}
	}
	if len(extra) > 0 {
		r.Extra = extra
	}
	return r
}

func isObject(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return strings.HasPrefix(s, "{")
}

func isNull(raw json.RawMessage) bool { return strings.TrimSpace(string(raw)) == "null" }
