package warren

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// Execution is what a cell did. A cell that raised is not a Go error: its exception
// is in Error.
type Execution struct {
	// Results are the cell's display outputs and its value, in order.
	Results []Result `json:"results"`
	Logs    Logs     `json:"logs"`
	// Error is the exception the cell raised (the last one), or nil.
	Error *ExecutionError `json:"error"`
	// ExecutionCount is the context's execution counter after this cell (In [N]).
	ExecutionCount int `json:"execution_count"`
}

// Logs are the cell's output chunks in order, as the interpreter sent them (usually
// whole lines with their newline).
type Logs struct {
	Stdout []string `json:"stdout"`
	Stderr []string `json:"stderr"`
}

// ExecutionError is an exception raised by a cell. Name is UnexpectedEndOfExecution
// when the interpreter died mid-cell.
type ExecutionError struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Traceback is the formatted traceback (it may hold ANSI colour codes).
	Traceback string `json:"traceback"`
}

// Error returns "Name: Value".
func (e *ExecutionError) Error() string {
	if e.Value == "" {
		return e.Name
	}
	return e.Name + ": " + e.Value
}

// Text returns the text of the cell's value (its main result), or "".
func (e *Execution) Text() string {
	for _, r := range e.Results {
		if r.IsMainResult {
			return r.Text
		}
	}
	return ""
}

// Result is one output of a cell, with a field per MIME representation it has.
// Binary representations are decoded; in JSON they are base64, as on the wire.
type Result struct {
	// IsMainResult is true for the cell's value, false for display outputs (plots).
	IsMainResult bool   `json:"is_main_result"`
	Text         string `json:"text,omitempty"`     // text/plain
	HTML         string `json:"html,omitempty"`     // text/html
	Markdown     string `json:"markdown,omitempty"` // text/markdown
	SVG          string `json:"svg,omitempty"`      // image/svg+xml
	PNG          []byte `json:"png,omitempty"`      // image/png
	JPEG         []byte `json:"jpeg,omitempty"`     // image/jpeg
	PDF          []byte `json:"pdf,omitempty"`      // application/pdf
	LaTeX        string `json:"latex,omitempty"`    // text/latex
	// JSON is an application/json representation: any JSON value.
	JSON       json.RawMessage `json:"json,omitempty"`
	JavaScript string          `json:"javascript,omitempty"` // application/javascript
	Data       json.RawMessage `json:"data,omitempty"`       // e2b/data
	Chart      json.RawMessage `json:"chart,omitempty"`      // e2b/chart
	// Extra holds other MIME types by name, and keys of the interpreter's line that
	// are not fields here (a png that is not valid base64 is kept here as sent).
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

// Formats lists the MIME types the result has, text/plain first.
func (r *Result) Formats() []string {
	var out []string
	for _, f := range []struct {
		mime string
		set  bool
	}{
		{"text/plain", r.Text != ""}, {"text/html", r.HTML != ""}, {"text/markdown", r.Markdown != ""},
		{"image/svg+xml", r.SVG != ""}, {"image/png", len(r.PNG) > 0}, {"image/jpeg", len(r.JPEG) > 0},
		{"application/pdf", len(r.PDF) > 0}, {"text/latex", r.LaTeX != ""}, {"application/json", len(r.JSON) > 0},
		{"application/javascript", r.JavaScript != ""}, {"e2b/data", len(r.Data) > 0}, {"e2b/chart", len(r.Chart) > 0},
	} {
		if f.set {
			out = append(out, f.mime)
		}
	}
	return out
}

// UnmarshalJSON decodes a result leniently, as the server assembles executions:
// unknown keys go to Extra, base64 may be line-wrapped or unpadded.
func (r *Result) UnmarshalJSON(b []byte) error {
	var line map[string]json.RawMessage
	if err := json.Unmarshal(b, &line); err != nil {
		return err
	}
	*r = *decodeResult(line)
	return nil
}

// decodeResult builds a Result from an interpreter result line (or a result object).
func decodeResult(line map[string]json.RawMessage) *Result {
	r := &Result{}
	_ = json.Unmarshal(line["is_main_result"], &r.IsMainResult)
	strs := map[string]*string{
		"text": &r.Text, "html": &r.HTML, "markdown": &r.Markdown, "svg": &r.SVG,
		"latex": &r.LaTeX, "javascript": &r.JavaScript,
	}
	bins := map[string]*[]byte{"png": &r.PNG, "jpeg": &r.JPEG, "pdf": &r.PDF}
	raws := map[string]*json.RawMessage{"json": &r.JSON, "data": &r.Data, "chart": &r.Chart}
	extra := map[string]json.RawMessage{}
	if raw, ok := line["extra"]; ok {
		_ = json.Unmarshal(raw, &extra)
	}
	for k, v := range line {
		trimmed := strings.TrimSpace(string(v))
		isObj := strings.HasPrefix(trimmed, "{")
		if k == "type" || k == "is_main_result" || k == "extra" && isObj || trimmed == "null" {
			continue
		}
		if p, ok := strs[k]; ok && json.Unmarshal(v, p) == nil {
			continue
		}
		if p, ok := bins[k]; ok {
			var s string
			if json.Unmarshal(v, &s) == nil {
				if b, ok := decodeBase64(s); ok {
					*p = b
					continue
				}
			}
		}
		if p, ok := raws[k]; ok && (k == "json" || isObj) {
			*p = append(json.RawMessage(nil), v...)
			continue
		}
		if _, dup := extra[k]; !dup {
			extra[k] = append(json.RawMessage(nil), v...)
		}
	}
	if len(extra) > 0 {
		r.Extra = extra
	}
	return r
}

// decodeBase64 decodes standard base64, tolerating line breaks and missing padding.
func decodeBase64(s string) ([]byte, bool) {
	s = strings.Join(strings.Fields(s), "")
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, true
	}
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, true
	}
	return nil, false
}

// Code event types: the interpreter's line types.
const (
	CodeEventNumberOfExecutions = "number_of_executions"
	CodeEventStdout             = "stdout"
	CodeEventStderr             = "stderr"
	CodeEventResult             = "result"
	CodeEventError              = "error"
	CodeEventEnd                = "end_of_execution"
	CodeEventUnexpectedEnd      = "unexpected_end_of_execution"
)

// CodeEvent is one line of a streamed execution. Type says which fields are set;
// events of other types (newer servers may send some) carry only Raw.
type CodeEvent struct {
	Type string
	// Text is the output chunk of CodeEventStdout and CodeEventStderr.
	Text string
	// Result is set for CodeEventResult.
	Result *Result
	// Error is set for CodeEventError and CodeEventUnexpectedEnd.
	Error *ExecutionError
	// ExecutionCount is set for CodeEventNumberOfExecutions.
	ExecutionCount int
	// Raw is the interpreter's line as the server relayed it.
	Raw json.RawMessage
}

// unexpectedEnd is the error value of an unexpected_end_of_execution line without one.
const unexpectedEnd = "the interpreter ended the execution unexpectedly (its kernel may have died); the context's state may be lost"

// decodeCodeLine turns an interpreter line into a CodeEvent. It is lenient in the
// same way as the server's assembly, so that streamed and whole executions agree.
func decodeCodeLine(typ string, data []byte) (*CodeEvent, error) {
	var line map[string]json.RawMessage
	if err := json.Unmarshal(data, &line); err != nil {
		return nil, err
	}
	ev := &CodeEvent{Type: typ, Raw: append(json.RawMessage(nil), data...)}
	switch typ {
	case CodeEventNumberOfExecutions:
		var n *int
		if json.Unmarshal(line["execution_count"], &n) == nil && n != nil {
			ev.ExecutionCount = *n
		}
	case CodeEventStdout, CodeEventStderr:
		ev.Text = str(line, "text")
	case CodeEventResult:
		ev.Result = decodeResult(line)
	case CodeEventError:
		ev.Error = &ExecutionError{Name: str(line, "name"), Value: str(line, "value"), Traceback: tracebackOf(line["traceback"])}
	case CodeEventUnexpectedEnd:
		v := str(line, "value")
		if v == "" {
			v = unexpectedEnd
		}
		ev.Error = &ExecutionError{Name: "UnexpectedEndOfExecution", Value: v, Traceback: v}
	}
	return ev, nil
}

// apply adds an event to the execution, as the server does for whole executions.
func (e *Execution) apply(ev *CodeEvent) {
	switch ev.Type {
	case CodeEventNumberOfExecutions:
		if ev.ExecutionCount != 0 {
			e.ExecutionCount = ev.ExecutionCount
		}
	case CodeEventStdout:
		e.Logs.Stdout = append(e.Logs.Stdout, ev.Text)
	case CodeEventStderr:
		e.Logs.Stderr = append(e.Logs.Stderr, ev.Text)
	case CodeEventResult:
		e.Results = append(e.Results, *ev.Result)
	case CodeEventError, CodeEventUnexpectedEnd:
		e.Error = ev.Error
	}
}

func str(line map[string]json.RawMessage, key string) string {
	var s string
	if json.Unmarshal(line[key], &s) != nil {
		return ""
	}
	return s
}

func tracebackOf(raw json.RawMessage) string {
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
