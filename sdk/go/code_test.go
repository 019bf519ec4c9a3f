package warren

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// pngBase64 is a 1x1 PNG.
const pngBase64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

const codeStream = ": keep-alive\n\n" +
	"event: number_of_executions\ndata: {\"type\":\"number_of_executions\",\"execution_count\":4}\n\n" +
	"event: stdout\ndata: {\"type\":\"stdout\",\"text\":\"a\\n\",\"timestamp\":\"t\"}\n\n" +
	"event: result\ndata: {\"type\":\"result\",\"is_main_result\":false,\"png\":\"" + pngBase64 + "\",\"extra\":{\"image/gif\":\"R0\"},\"future\":[1]}\n\n" +
	"event: stderr\ndata: {\"type\":\"stderr\",\"text\":\"w\\n\"}\n\n" +
	"event: future_line\ndata: {\"type\":\"future_line\"}\n\n" +
	"event: result\ndata: {\"type\":\"result\",\"is_main_result\":true,\"text\":\"42\",\"data\":{\"k\":1},\"html\":null,\"jpeg\":\"/9j/\\n4A==\",\"pdf\":\"JVBERi0\"}\n\n" +
	"event: error\ndata: {\"type\":\"error\",\"name\":\"ValueError\",\"value\":\"bad\",\"traceback\":[\"l1\",\"l2\"]}\n\n" +
	"event: end_of_execution\ndata: {\"type\":\"end_of_execution\"}\n\n"

func TestRunCodeStream(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { sse(w, codeStream) })
	var events []string
	ex, err := f.client().Sandbox("sb1").RunCode(context.Background(), "x", RunCodeOptions{
		Context:  &CodeContext{ID: "ctx/1"},
		OnStdout: func(s string) { events = append(events, "out:"+s) },
		OnStderr: func(s string) { events = append(events, "err:"+s) },
		OnResult: func(r *Result) { events = append(events, fmt.Sprint("result:", r.IsMainResult)) },
		OnError:  func(e *ExecutionError) { events = append(events, "error:"+e.Name) },
		OnEvent: func(ev CodeEvent) {
			events = append(events, "ev:"+ev.Type)
			if !json.Valid(ev.Raw) {
				t.Errorf("%s: raw %q", ev.Type, ev.Raw)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := f.last()
	if body := decodeBody(t, r.body); !reflect.DeepEqual(body, map[string]any{"code": "x", "context_id": "ctx/1", "stream": true}) || r.path != "/v1/sandboxes/sb1/execute" {
		t.Errorf("request %s %v", r.path, body)
	}
	want := "[ev:number_of_executions out:a\n ev:stdout result:false ev:result err:w\n ev:stderr ev:future_line result:true ev:result error:ValueError ev:error ev:end_of_execution]"
	if fmt.Sprint(events) != want {
		t.Errorf("events:\n got %q\nwant %q", fmt.Sprint(events), want)
	}
	if ex.ExecutionCount != 4 || ex.Text() != "42" || ex.Error.Traceback != "l1\nl2" || ex.Error.Error() != "ValueError: bad" ||
		!reflect.DeepEqual(ex.Logs, Logs{Stdout: []string{"a\n"}, Stderr: []string{"w\n"}}) || len(ex.Results) != 2 {
		t.Fatalf("execution %+v", ex)
	}
	plot, main := ex.Results[0], ex.Results[1]
	if string(plot.PNG[1:4]) != "PNG" || string(plot.Extra["future"]) != "[1]" || string(plot.Extra["image/gif"]) != `"R0"` {
		t.Errorf("plot result %+v", plot)
	}
	if string(main.JPEG) != "\xff\xd8\xff\xe0" || string(main.PDF) != "%PDF-" || string(main.Data) != `{"k":1}` || main.HTML != "" {
		t.Errorf("main result %+v", main)
	}
	if got := plot.Formats(); !reflect.DeepEqual(got, []string{"image/png"}) {
		t.Errorf("Formats = %v", got)
	}
}

// TestResultJSON: a result survives a JSON round trip (binary as base64, as on the
// wire), and a whole execution decodes like a streamed one.
func TestResultJSON(t *testing.T) {
	whole := `{"results":[{"is_main_result":false,"png":"` + pngBase64 + `","text":"<Figure>"},{"is_main_result":true,"text":"3","json":{"a":1},"extra":{"x/y":"z"},"png":"%%%"}],` +
		`"logs":{"stdout":["hi\n"],"stderr":[]},"error":{"name":"E","value":"v","traceback":"tb"},"execution_count":7}`
	var ex Execution
	if err := json.Unmarshal([]byte(whole), &ex); err != nil {
		t.Fatal(err)
	}
	if ex.ExecutionCount != 7 || ex.Text() != "3" || string(ex.Results[0].PNG[1:4]) != "PNG" ||
		string(ex.Results[1].JSON) != `{"a":1}` || string(ex.Results[1].Extra["x/y"]) != `"z"` || string(ex.Results[1].Extra["png"]) != `"%%%"` {
		t.Errorf("decoded %+v", ex)
	}
	b, err := json.Marshal(ex)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"png":"`+pngBase64+`"`) {
		t.Errorf("PNG is not base64 in JSON: %s", b)
	}
	var back Execution
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, ex) {
		t.Errorf("round trip differs:\n%+v\n%+v (%v)", back, ex, err)
	}
}

func TestRunCodeFailures(t *testing.T) {
	ctx := context.Background()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		sse(w, ev("stdout", map[string]string{"type": "stdout", "text": "partial\n"}),
			ev("error", map[string]string{"code": "unavailable", "message": "the code interpreter's stream broke off", "request_id": "req_c"}))
	})
	sbx := f.client().Sandbox("sb1")
	var got []string
	_, err := sbx.RunCode(ctx, "x", RunCodeOptions{OnStdout: func(s string) { got = append(got, s) }})
	var ae *APIError
	if !errors.As(err, &ae) || ae.RequestID != "req_c" || !errors.Is(err, ErrUnavailable) || fmt.Sprint(got) != "[partial\n]" {
		t.Errorf("broken stream: %v, output %q", err, got)
	}
	f.set(func(w http.ResponseWriter, r *http.Request) {
		sse(w, ev("unexpected_end_of_execution", map[string]string{"type": "unexpected_end_of_execution"}))
	})
	ex, err := sbx.RunCode(ctx, "crash()", RunCodeOptions{})
	if err != nil || ex.Error == nil || ex.Error.Name != "UnexpectedEndOfExecution" || !strings.HasPrefix(ex.Error.Value, "the interpreter ended") {
		t.Errorf("unexpected end: %+v %v", ex, err)
	}
	f.set(func(w http.ResponseWriter, r *http.Request) {
		apiError(w, 501, "not_implemented", "code execution is not configured")
	})
	if _, err := sbx.RunCode(ctx, "1", RunCodeOptions{}); !errors.As(err, &ae) || ae.Status != 501 {
		t.Errorf("501: %v", err)
	}
	if _, err := sbx.RunCode(ctx, "1", RunCodeOptions{Language: "python", Context: &CodeContext{ID: "c"}}); err == nil {
		t.Error("Language and Context together accepted")
	}
}

func TestCodeContexts(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "POST /v1/sandboxes/sb1/contexts":
			writeJSON(w, 201, CodeContext{ID: "c1", Language: "javascript", Cwd: "/tmp"})
		case "GET /v1/sandboxes/sb1/contexts":
			writeJSON(w, 200, map[string]any{"contexts": []CodeContext{{ID: "c1"}, {ID: "c2"}}})
		case "POST /v1/sandboxes/sb1/contexts/c1/restart", "DELETE /v1/sandboxes/sb1/contexts/c1":
			w.WriteHeader(204)
		default:
			apiError(w, 404, "not_found", r.URL.Path)
		}
	})
	sbx, ctx := f.client().Sandbox("sb1"), context.Background()
	cc, err := sbx.CreateCodeContext(ctx, CodeContextOptions{Language: "javascript", Cwd: "/tmp"})
	if err != nil || *cc != (CodeContext{ID: "c1", Language: "javascript", Cwd: "/tmp"}) {
		t.Fatalf("create: %+v %v", cc, err)
	}
	if b := decodeBody(t, f.last().body); !reflect.DeepEqual(b, map[string]any{"language": "javascript", "cwd": "/tmp"}) {
		t.Errorf("create body %v", b)
	}
	if list, err := sbx.ListCodeContexts(ctx); err != nil || len(list) != 2 {
		t.Errorf("list: %v %v", list, err)
	}
	if err := sbx.RestartCodeContext(ctx, "c1"); err != nil {
		t.Error(err)
	}
	if err := sbx.RemoveCodeContext(ctx, "c1"); err != nil {
		t.Error(err)
	}
	if err := sbx.RemoveCodeContext(ctx, "c9"); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove unknown: %v", err)
	}
}
