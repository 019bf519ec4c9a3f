package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/api/rest"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
	warren "github.com/warren-sh/warren/sdk/go"
)

// codeSandbox is the one sandbox the fake code service knows.
const codeSandbox = "abcdefghij0123456789"

// newCodeTestEnv is newTestEnv with code execution served by code.
func newCodeTestEnv(t *testing.T, code *fake.Code) *testEnv {
	t.Helper()
	svc := newMemService()
	srv := httptest.NewServer(restServer(svc, rest.WithCode(code)))
	t.Cleanup(srv.Close)
	return &testEnv{t: t, svc: svc, url: srv.URL, vars: map[string]string{
		"WARREN_API_URL": srv.URL, "WARREN_API_KEY": keyA,
	}}
}

// linesCell answers every cell with lines (JSON objects), recording the request.
func linesCell(got *domain.RunCode, lines ...any) func(context.Context, domain.Principal, string, domain.RunCode, func(domain.CodeEvent) error) error {
	return func(_ context.Context, _ domain.Principal, id string, req domain.RunCode, onEvent func(domain.CodeEvent) error) error {
		if id != codeSandbox {
			return domain.NotFound("sandbox", id)
		}
		if got != nil {
			*got = req
		}
		for _, l := range lines {
			if err := onEvent(codeLine(l)); err != nil {
				return err
			}
		}
		return nil
	}
}

func codeLine(v any) domain.CodeEvent {
	raw, _ := json.Marshal(v)
	var head struct{ Type string }
	_ = json.Unmarshal(raw, &head)
	return domain.CodeEvent{Type: head.Type, Raw: raw}
}

type line = map[string]any

func tinyImage(t *testing.T, enc func(*bytes.Buffer, image.Image) error) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	img.Set(1, 1, color.RGBA{R: 255, A: 255})
	var buf bytes.Buffer
	if err := enc(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRunCodeOutput(t *testing.T) {
	pngBytes := tinyImage(t, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })
	jpegBytes := tinyImage(t, func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) })
	code := &fake.Code{}
	var got domain.RunCode
	code.RunCodeFn = linesCell(&got,
		line{"type": "number_of_executions", "execution_count": 5},
		line{"type": "stdout", "text": "loading\n"},
		line{"type": "stderr", "text": "warning: slow\n"},
		line{"type": "result", "is_main_result": false, "png": base64.StdEncoding.EncodeToString(pngBytes), "text": "<Figure size 3x2>"},
		line{"type": "result", "is_main_result": false, "jpeg": base64.StdEncoding.EncodeToString(jpegBytes), "svg": "<svg/>", "pdf": base64.StdEncoding.EncodeToString([]byte("%PDF-1.4"))},
		line{"type": "result", "is_main_result": false, "html": "<b>x</b>"},
		line{"type": "result", "is_main_result": true, "text": "42"},
		line{"type": "end_of_execution"},
	)
	e := newCodeTestEnv(t, code)
	dir := filepath.Join(t.TempDir(), "out")
	src := filepath.Join(t.TempDir(), "cell.py")
	if err := os.WriteFile(src, []byte("plot()\n42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer // stdout and stderr together, to see the order
	c := RunIO(context.Background(), []string{"run-code", "--save-dir", dir, "-l", "python", "--env", "A=1", "--timeout", "9", codeSandbox, src},
		strings.NewReader(""), &all, &all, func(k string) string { return e.vars[k] })
	if c != 0 {
		t.Fatalf("exit %d\n%s", c, all.String())
	}
	want := domain.RunCode{Code: "plot()\n42\n", Language: "python", Env: map[string]string{"A": "1"}, Timeout: 9 * time.Second}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("request = %+v, want %+v", got, want)
	}
	base := filepath.Join(dir, codeSandbox+"-5-")
	wantOut := "loading\n" +
		"warning: slow\n" +
		"[image/png 3x2 saved to " + base + "1.png]\n" +
		"[image/jpeg 3x2 saved to " + base + "2.jpg]\n" +
		"[image/svg+xml saved to " + base + "2.svg]\n" +
		"[application/pdf saved to " + base + "2.pdf]\n" +
		"[text/html result; -o json shows it]\n" +
		"42\n"
	if all.String() != wantOut {
		t.Errorf("output:\n%s\nwant:\n%s", all.String(), wantOut)
	}
	for name, data := range map[string][]byte{"1.png": pngBytes, "2.jpg": jpegBytes, "2.svg": []byte("<svg/>"), "2.pdf": []byte("%PDF-1.4")} {
		if b, err := os.ReadFile(base + name); err != nil || !bytes.Equal(b, data) {
			t.Errorf("%s: %v, content %q", name, err, b)
		}
	}

	// By default files go to the current directory; code may come from stdin.
	t.Chdir(t.TempDir())
	code.RunCodeFn = linesCell(&got,
		line{"type": "number_of_executions", "execution_count": 6},
		line{"type": "result", "is_main_result": false, "png": base64.StdEncoding.EncodeToString(pngBytes)})
	r := e.runIn(strings.NewReader("show()"), "run-code", "--context", "ctx-1", codeSandbox, "-")
	wantLine := "[image/png 3x2 saved to ." + string(filepath.Separator) + codeSandbox + "-6-1.png]\n"
	if r.code != 0 || r.stdout != wantLine || got.Code != "show()" || got.ContextID != "ctx-1" || got.Language != "" {
		t.Errorf("stdin and default dir: %+v, request %+v", r, got)
	}
	if b, err := os.ReadFile(codeSandbox + "-6-1.png"); err != nil || !bytes.Equal(b, pngBytes) {
		t.Errorf("saved in the current directory: %v", err)
	}
}

// signalWriter is a buffer that reports each write.
type signalWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return w.buf.Write(p)
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestRunCodeStreamsLive(t *testing.T) {
	out := &signalWriter{wrote: make(chan struct{}, 1)}
	code := &fake.Code{RunCodeFn: func(_ context.Context, _ domain.Principal, _ string, _ domain.RunCode, onEvent func(domain.CodeEvent) error) error {
		_ = onEvent(codeLine(line{"type": "stdout", "text": "step 1\n"}))
		select { // the CLI must print step 1 while the cell still runs
		case <-out.wrote:
		case <-time.After(5 * time.Second):
			t.Error("stdout was not printed while the cell ran")
		}
		_ = onEvent(codeLine(line{"type": "stdout", "text": "step 2\n"}))
		return onEvent(codeLine(line{"type": "end_of_execution"}))
	}}
	e := newCodeTestEnv(t, code)
	var errb bytes.Buffer
	c := RunIO(context.Background(), []string{"run-code", codeSandbox, "-"}, strings.NewReader("work()"), out, &errb, func(k string) string { return e.vars[k] })
	if c != 0 || out.String() != "step 1\nstep 2\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", c, out.String(), errb.String())
	}
}

func TestRunCodeErrors(t *testing.T) {
	code := &fake.Code{}
	e := newCodeTestEnv(t, code)
	code.RunCodeFn = linesCell(nil,
		line{"type": "number_of_executions", "execution_count": 2},
		line{"type": "stdout", "text": "before\n"},
		line{"type": "error", "name": "ZeroDivisionError", "value": "division by zero", "traceback": "Traceback (most recent call last):\nZeroDivisionError: division by zero"},
		line{"type": "end_of_execution"})
	r := e.runIn(strings.NewReader("1/0"), "run-code", codeSandbox, "-")
	if r.code != 1 || r.stdout != "before\n" || r.stderr != "Traceback (most recent call last):\nZeroDivisionError: division by zero\n" {
		t.Errorf("cell raised: %+v", r)
	}

	// -o json: the whole execution, and still exit 1.
	r = e.runIn(strings.NewReader("1/0"), "run-code", "-o", "json", codeSandbox, "-")
	ex := decode[map[string]any](t, r.stdout)
	errObj, _ := ex["error"].(map[string]any)
	if r.code != 1 || r.stderr != "" || ex["execution_count"] != 2.0 || errObj["name"] != "ZeroDivisionError" ||
		!reflect.DeepEqual(ex["logs"], map[string]any{"stdout": []any{"before\n"}, "stderr": []any{}}) || !reflect.DeepEqual(ex["results"], []any{}) {
		t.Errorf("-o json with error: %+v", r)
	}

	// The interpreter died: no traceback, so name and value.
	code.RunCodeFn = linesCell(nil, line{"type": "unexpected_end_of_execution"})
	if r := e.runIn(strings.NewReader("crash()"), "run-code", codeSandbox, "-"); r.code != 1 || !strings.HasPrefix(r.stderr, "the interpreter ended the execution unexpectedly") {
		t.Errorf("unexpected end: %+v", r)
	}

	// API errors: unknown sandbox, and a stream that breaks mid-way.
	if r := e.runIn(strings.NewReader("1"), "run-code", "zzzzzzzzzzzzzzzzzzzz", "-"); r.code != 1 || !strings.Contains(r.stderr, `error: sandbox "zzzzzzzzzzzzzzzzzzzz" not found (request req_`) {
		t.Errorf("unknown sandbox: %+v", r)
	}
	code.RunCodeFn = func(_ context.Context, _ domain.Principal, _ string, _ domain.RunCode, onEvent func(domain.CodeEvent) error) error {
		_ = onEvent(codeLine(line{"type": "stdout", "text": "partial\n"}))
		return domain.Errorf(domain.KindUnavailable, "the code interpreter's stream broke off")
	}
	if r := e.runIn(strings.NewReader("1"), "run-code", codeSandbox, "-"); r.code != 1 || r.stdout != "partial\n" || !strings.Contains(r.stderr, "error: the code interpreter's stream broke off (request req_") {
		t.Errorf("broken stream: %+v", r)
	}

	// Without a code service the server says so.
	plain := newTestEnv(t)
	if r := plain.runIn(strings.NewReader("1"), "run-code", codeSandbox, "-"); r.code != 1 || !strings.Contains(r.stderr, "code execution is not configured") {
		t.Errorf("not configured: %+v", r)
	}
}

func TestRunCodeUsage(t *testing.T) {
	e := newCodeTestEnv(t, &fake.Code{})
	empty := filepath.Join(t.TempDir(), "empty.py")
	_ = os.WriteFile(empty, []byte("\n  \n"), 0o644)
	cases := []struct {
		args  []string
		stdin string
		msg   string
	}{
		{[]string{"run-code"}, "", "usage: warren run-code"},
		{[]string{"run-code", codeSandbox}, "", "usage: warren run-code"},
		{[]string{"run-code", "-l", "python", "--context", "c", codeSandbox, "-"}, "1", "not both"},
		{[]string{"run-code", "--timeout", "-1", codeSandbox, "-"}, "1", "must not be negative"},
		{[]string{"run-code", codeSandbox, "/nonexistent/cell.py"}, "", "cannot read the code"},
		{[]string{"run-code", codeSandbox, empty}, "", "holds no code"},
		{[]string{"run-code", codeSandbox, "-"}, strings.Repeat("x", maxCode+1), "larger than"},
		{[]string{"run-code", "--env", "NOEQUALS", codeSandbox, "-"}, "1", "is not KEY=VALUE"},
	}
	for _, c := range cases {
		r := e.runIn(strings.NewReader(c.stdin), c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("warren %v: exit %d, stderr %q; want 2 and %q", c.args, r.code, r.stderr, c.msg)
		}
	}
	if r := e.ok("run-code", "--help"); !strings.Contains(r.stdout, "-save-dir") || !strings.Contains(r.stdout, "-context") {
		t.Errorf("run-code --help:\n%s", r.stdout)
	}
	if !Handles("run-code") {
		t.Error("Handles(run-code) = false")
	}
	var buf bytes.Buffer
	Usage(&buf)
	if !strings.Contains(buf.String(), "run-code") {
		t.Errorf("Usage lacks run-code:\n%s", buf.String())
	}
}

// TestClientRunCodeAgrees checks, through the real handler, that the SDK assembles the
// same Execution from the stream as the server does for a whole execution.
func TestClientRunCodeAgrees(t *testing.T) {
	code := &fake.Code{RunCodeFn: linesCell(nil,
		line{"type": "number_of_executions", "execution_count": 8},
		line{"type": "stdout", "text": "a\n", "timestamp": "2025-01-01T00:00:00Z"},
		line{"type": "keepalive"},
		line{"type": "result", "is_main_result": false, "png": "iVBORw0KGgo=", "extra": line{"image/gif": "R0"}, "future": 1, "html": nil},
		line{"type": "stderr", "text": "b\n"},
		line{"type": "result", "is_main_result": true, "text": "3", "json": []int{1}, "data": line{"k": 1}, "chart": line{"type": "bar"}},
		line{"type": "error", "name": "E", "value": "v", "traceback": []string{"l1", "l2"}},
		line{"type": "end_of_execution"})}
	e := newCodeTestEnv(t, code)
	ctx := context.Background()
	// The whole execution, as the server assembles it.
	req, _ := http.NewRequest("POST", e.url+"/v1/sandboxes/"+codeSandbox+"/execute", strings.NewReader(`{"code":"x"}`))
	req.Header.Set("Authorization", "Bearer "+keyA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var whole warren.Execution
	if err := json.NewDecoder(resp.Body).Decode(&whole); err != nil || resp.StatusCode != 200 {
		t.Fatalf("whole execution: %v %s", err, resp.Status)
	}
	c, err := warren.New(warren.WithEnv(nil), warren.WithAPIURL(e.url), warren.WithAPIKey(keyA))
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	streamed, err := c.Sandbox(codeSandbox).RunCode(ctx, "x", warren.RunCodeOptions{OnEvent: func(ev warren.CodeEvent) {
		types = append(types, ev.Type)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&whole, streamed) {
		a, _ := json.Marshal(whole)
		b, _ := json.Marshal(streamed)
		t.Errorf("whole and streamed executions differ:\n%s\n%s", a, b)
	}
	if fmt.Sprint(types) != "[number_of_executions stdout result stderr result error end_of_execution]" {
		t.Errorf("event order: %v", types)
	}
	if whole.ExecutionCount != 8 || whole.Text() != "3" || whole.Error.Traceback != "l1\nl2" || string(whole.Results[0].Extra["future"]) != "1" {
		t.Errorf("execution: %+v", whole)
	}
}
