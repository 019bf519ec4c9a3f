package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// pngBase64 is a 1x1 PNG.
const pngBase64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

func TestRunCode(t *testing.T) {
	var got map[string]any
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/prefix/v1/sandboxes/sb1/execute" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %s %s %v", r.Method, r.URL.Path, r.Header)
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"results":[{"is_main_result":false,"png":%q,"text":"<Figure>"},{"is_main_result":true,"text":"3","json":{"a":1},"extra":{"x/y":"z"}}],`+
			`"logs":{"stdout":["hi\n"],"stderr":[]},"error":{"name":"E","value":"v","traceback":"tb"},"execution_count":7}`, pngBase64)
	})
	ex, err := c.RunCode(context.Background(), "sb1", RunCodeRequest{Code: "1+2", Language: "python", Env: map[string]string{"A": "1"}, Timeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"code": "1+2", "language": "python", "env": map[string]any{"A": "1"}, "timeout": 2.0}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("request body = %v, want %v", got, want)
	}
	if ex.ExecutionCount != 7 || ex.Text() != "3" || len(ex.Results) != 2 || ex.Logs.Stdout[0] != "hi\n" ||
		ex.Error == nil || ex.Error.Error() != "E: v" || string(ex.Results[1].JSON) != `{"a":1}` || string(ex.Results[1].Extra["x/y"]) != `"z"` {
		t.Errorf("execution = %+v", ex)
	}
	img, err := ex.Results[0].PNG()
	if err != nil || len(img) < 8 || string(img[1:4]) != "PNG" {
		t.Errorf("PNG() = %q, %v", img, err)
	}
	if f := ex.Results[0].Formats(); !reflect.DeepEqual(f, []string{"text/plain", "image/png"}) {
		t.Errorf("Formats() = %v", f)
	}
}

func TestResultDecoders(t *testing.T) {
	r := Result{JPEGBase64: "/9j/\n4A==", PDFBase64: "JVBERi0", PNGBase64: "%%%"}
	if b, err := r.JPEG(); err != nil || string(b) != "\xff\xd8\xff\xe0" {
		t.Errorf("line-wrapped JPEG: %q %v", b, err)
	}
	if b, err := r.PDF(); err != nil || string(b) != "%PDF-" {
		t.Errorf("unpadded PDF: %q %v", b, err)
	}
	if _, err := r.PNG(); err == nil || !strings.Contains(err.Error(), "png is not valid base64") {
		t.Errorf("bad PNG: %v", err)
	}
	if b, err := (&Result{}).PNG(); b != nil || err != nil {
		t.Errorf("no PNG: %q %v", b, err)
	}
	if (&ExecutionError{Name: "KeyboardInterrupt"}).Error() != "KeyboardInterrupt" {
		t.Error("ExecutionError without value")
	}
}

const codeStream = ": keep-alive\n\n" +
	"event: number_of_executions\ndata: {\"type\":\"number_of_executions\",\"execution_count\":4}\n\n" +
	"event: stdout\ndata: {\"type\":\"stdout\",\"text\":\"a\\n\",\"timestamp\":\"t\"}\n\n" +
	": keepalive\n\n" +
	"event: result\ndata: {\"type\":\"result\",\"is_main_result\":false,\"png\":\"" + pngBase64 + "\",\"extra\":{\"image/gif\":\"R0\"},\"future\":[1]}\n\n" +
	"event: stderr\ndata: {\"type\":\"stderr\",\"text\":\"w\\n\"}\n\n" +
	"event: future_line\ndata: {\"type\":\"future_line\"}\n\n" +
	"event: result\ndata: {\"type\":\"result\",\"is_main_result\":true,\"text\":\"42\",\"data\":{\"k\":1},\"html\":null}\n\n" +
	"event: error\ndata: {\"type\":\"error\",\"name\":\"ValueError\",\"value\":\"bad\",\"traceback\":[\"l1\",\"l2\"]}\n\n" +
	"event: end_of_execution\ndata: {\"type\":\"end_of_execution\"}\n\n"

func TestRunCodeStream(t *testing.T) {
	var got map[string]any
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&got)
		sseHandler(t, codeStream)(w, r)
	})
	var events []string
	ex, err := c.RunCodeStream(context.Background(), "sb1", RunCodeRequest{Code: "x", ContextID: "ctx/1"}, func(ev CodeEvent) error {
		s := ev.Type
		switch {
		case ev.Text != "":
			s += ":" + ev.Text
		case ev.Result != nil:
			s += fmt.Sprintf(":main=%v", ev.Result.IsMainResult)
		case ev.Error != nil:
			s += ":" + ev.Error.Name
		case ev.ExecutionCount != 0:
			s += fmt.Sprint(":", ev.ExecutionCount)
		}
		events = append(events, s)
		if ev.Raw == nil || !json.Valid(ev.Raw) {
			t.Errorf("%s: raw %q", ev.Type, ev.Raw)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"code": "x", "context_id": "ctx/1", "stream": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("request body = %v", got)
	}
	want := "[number_of_executions:4 stdout:a\n result:main=false stderr:w\n future_line result:main=true error:ValueError end_of_execution]"
	if fmt.Sprint(events) != want {
		t.Errorf("events:\n got %q\nwant %q", fmt.Sprint(events), want)
	}
	wantEx := &Execution{
		Results: []Result{
			{PNGBase64: pngBase64, Extra: map[string]json.RawMessage{"image/gif": json.RawMessage(`"R0"`), "future": json.RawMessage(`[1]`)}},
			{IsMainResult: true, Text: "42", Data: json.RawMessage(`{"k":1}`)},
		},
		Logs:           Logs{Stdout: []string{"a\n"}, Stderr: []string{"w\n"}},
		Error:          &ExecutionError{Name: "ValueError", Value: "bad", Traceback: "l1\nl2"},
		ExecutionCount: 4,
	}
	if !reflect.DeepEqual(ex, wantEx) {
		gotJS, _ := json.Marshal(ex)
		wantJS, _ := json.Marshal(wantEx)
		t.Errorf("execution:\n got %s\nwant %s", gotJS, wantJS)
	}
}

func TestRunCodeStreamFailures(t *testing.T) {
	ctx := context.Background()
	c := newTestClient(t, sseHandler(t, "event: number_of_executions\ndata: {\"type\":\"number_of_executions\",\"execution_count\":1}\n\n"+
		"event: error\ndata: {\"code\":\"unavailable\",\"message\":\"stream broke off\",\"request_id\":\"req_e\"}\n\n"))
	_, err := c.RunCodeStream(ctx, "sb1", RunCodeRequest{Code: "x"}, nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "unavailable" || ae.RequestID != "req_e" || ae.Status != 200 {
		t.Errorf("error event: %#v", err)
	}

	// A stream that just ends is a finished cell (the interpreter may stop without
	// end_of_execution after an unexpected end).
	c = newTestClient(t, sseHandler(t, "event: unexpected_end_of_execution\ndata: {\"type\":\"unexpected_end_of_execution\"}\n\n"))
	ex, err := c.RunCodeStream(ctx, "sb1", RunCodeRequest{Code: "x"}, nil)
	if err != nil || ex.Error == nil || ex.Error.Name != "UnexpectedEndOfExecution" || ex.Error.Value != unexpectedEnd {
		t.Errorf("unexpected end: %+v %v", ex, err)
	}

	stop := errors.New("stop")
	c = newTestClient(t, sseHandler(t, codeStream))
	n := 0
	if _, err := c.RunCodeStream(ctx, "sb1", RunCodeRequest{Code: "x"}, func(CodeEvent) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("callback error: %v after %d events", err, n)
	}

	c = newTestClient(t, sseHandler(t, "event: stdout\ndata: not json\n\n"))
	if _, err := c.RunCodeStream(ctx, "sb1", RunCodeRequest{Code: "x"}, nil); err == nil || !strings.Contains(err.Error(), "bad stdout event") {
		t.Errorf("bad data: %v", err)
	}

	c = newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"results":[]}`)
	})
	if _, err := c.RunCodeStream(ctx, "sb1", RunCodeRequest{Code: "x"}, nil); err == nil || !strings.Contains(err.Error(), "not an event stream") {
		t.Errorf("JSON instead of a stream: %v", err)
	}

	c = newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(501)
		io.WriteString(w, `{"code":"not_implemented","message":"code execution is not configured","request_id":"r"}`)
	})
	if _, err := c.RunCodeStream(ctx, "sb1", RunCodeRequest{Code: "x"}, nil); !errors.As(err, &ae) || ae.Status != 501 || ae.Code != "not_implemented" {
		t.Errorf("501: %v", err)
	}
}

func TestCodeContexts(t *testing.T) {
	var calls []string
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		calls = append(calls, r.Method+" "+r.URL.EscapedPath()+" "+string(body))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/contexts"):
			w.WriteHeader(201)
			io.WriteString(w, `{"id":"c1","language":"r","cwd":"/tmp"}`)
		case r.Method == "GET":
			io.WriteString(w, `{"contexts":[{"id":"c1","language":"r","cwd":"/tmp"}]}`)
		default:
			w.WriteHeader(204)
		}
	})
	ctx := context.Background()
	cc, err := c.CreateCodeContext(ctx, "sb1", CreateCodeContextRequest{Language: "r", Cwd: "/tmp"})
	if err != nil || *cc != (CodeContext{ID: "c1", Language: "r", Cwd: "/tmp"}) {
		t.Errorf("create: %+v %v", cc, err)
	}
	if _, err := c.CreateCodeContext(ctx, "sb1", CreateCodeContextRequest{}); err != nil {
		t.Error(err)
	}
	list, err := c.ListCodeContexts(ctx, "sb1")
	if err != nil || len(list) != 1 || list[0].ID != "c1" {
		t.Errorf("list: %+v %v", list, err)
	}
	if err := c.RestartCodeContext(ctx, "sb1", "a/b"); err != nil {
		t.Error(err)
	}
	if err := c.DeleteCodeContext(ctx, "sb1", "c1"); err != nil {
		t.Error(err)
	}
	want := []string{
		`POST /prefix/v1/sandboxes/sb1/contexts {"language":"r","cwd":"/tmp"}`,
		`POST /prefix/v1/sandboxes/sb1/contexts {}`,
		`GET /prefix/v1/sandboxes/sb1/contexts `,
		`POST /prefix/v1/sandboxes/sb1/contexts/a%2Fb/restart `,
		`DELETE /prefix/v1/sandboxes/sb1/contexts/c1 `,
	}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("calls:\n got %q\nwant %q", calls, want)
	}
}
