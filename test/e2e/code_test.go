package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type execution struct {
	Results []struct {
		IsMainResult bool   `json:"is_main_result"`
		Text         string `json:"text"`
		HTML         string `json:"html"`
		PNG          string `json:"png"`
		Chart        *struct {
			Type     string `json:"type"`
			Elements []struct {
				Points [][2]float64 `json:"points"`
			} `json:"elements"`
		} `json:"chart"`
		Data map[string][]int `json:"data"`
	} `json:"results"`
	Logs struct {
		Stdout []string `json:"stdout"`
		Stderr []string `json:"stderr"`
	} `json:"logs"`
	Error *struct {
		Name, Value, Traceback string
	} `json:"error"`
	ExecutionCount int `json:"execution_count"`
}

func (e execution) text() string {
	for _, r := range e.Results {
		if r.IsMainResult {
			return r.Text
		}
	}
	return ""
}

func (s *server) run(id string, body map[string]any) execution {
	s.T.Helper()
	var ex execution
	if code, raw := s.API("POST", "/v1/sandboxes/"+id+"/execute", body, &ex); code != 200 {
		s.T.Fatalf("execute %v: %d %s", body, code, raw)
	}
	return ex
}

// TestCodeInterpreterV1 runs the code-interpreter scenarios through /v1 with plain HTTP.
func TestCodeInterpreterV1(t *testing.T) {
	s := startServer(t, serverOpts{ExtraEnv: []string{"WARREN_TEMPLATE_SNAPSHOTS=1"}})
	s.WaitTemplate("code-interpreter", 20*time.Minute)
	// The scenarios run in a sandbox restored from the template's snapshot.
	waitLog(t, s, `msg="template snapshot ready" subsystem=sandbox template=code-interpreter`, 5*time.Minute)
	sb := s.Create(map[string]any{"template": "code-interpreter", "timeout": 300})
	defer s.Kill(sb.ID)

	t.Run("state persists", func(t *testing.T) {
		// The first cell of a sandbox restored from the snapshot is the first the
		// kernel counts: the snapshot's warm-up left no cell in In.
		if got := s.run(sb.ID, map[string]any{"code": "x = 20; len(In)"}); got.text() != "2" || got.ExecutionCount != 1 {
			t.Errorf("first cell: %+v, want execution_count 1 and In == ['', this cell]", got)
		}
		if got := s.run(sb.ID, map[string]any{"code": "x + 22"}); got.text() != "42" || got.ExecutionCount != 2 {
			t.Errorf("x + 22: %+v", got)
		}
	})
	t.Run("chart is a PNG of the figure size", func(t *testing.T) {
		ex := s.run(sb.ID, map[string]any{"code": "import matplotlib.pyplot as plt\nplt.figure(figsize=(5, 2), dpi=100)\nplt.plot([1, 2])\nplt.show()"})
		var png []byte
		for _, r := range ex.Results {
			if r.PNG != "" {
				png, _ = base64.StdEncoding.DecodeString(r.PNG)
			}
		}
		if len(png) < 24 || string(png[1:4]) != "PNG" {
			t.Fatalf("no png result: %+v", ex)
		}
		if w, h := binary.BigEndian.Uint32(png[16:20]), binary.BigEndian.Uint32(png[20:24]); w != 500 || h != 200 {
			t.Errorf("png is %dx%d, want 500x200", w, h)
		}
		// Its data too, as E2B's code interpreter gives it (result.chart).
		var chart string
		for _, r := range ex.Results {
			if c := r.Chart; c != nil && c.Type == "line" && len(c.Elements) == 1 {
				chart = fmt.Sprint(c.Elements[0].Points)
			}
		}
		if chart != "[[0 1] [1 2]]" {
			t.Errorf("chart points %q, want [[0 1] [1 2]]; results %+v", chart, ex.Results)
		}
	})
	t.Run("DataFrame is HTML", func(t *testing.T) {
		ex := s.run(sb.ID, map[string]any{"code": "import pandas as pd\npd.DataFrame({'a': [1]})"})
		if len(ex.Results) == 0 || !strings.Contains(ex.Results[0].HTML, "<table") || fmt.Sprint(ex.Results[0].Data) != "map[a:[1]]" {
			t.Errorf("dataframe: %+v, want HTML and the columns as data", ex)
		}
	})
	t.Run("exception then recovery", func(t *testing.T) {
		ex := s.run(sb.ID, map[string]any{"code": "1/0"})
		if ex.Error == nil || ex.Error.Name != "ZeroDivisionError" || !strings.Contains(ex.Error.Traceback, "ZeroDivisionError") {
			t.Errorf("1/0: %+v", ex.Error)
		}
		if got := s.run(sb.ID, map[string]any{"code": "x"}); got.text() != "20" {
			t.Errorf("after the error: %+v", got)
		}
	})
	t.Run("contexts are isolated", func(t *testing.T) {
		var c struct{ ID string }
		if code, raw := s.API("POST", "/v1/sandboxes/"+sb.ID+"/contexts", map[string]any{"language": "python"}, &c); code != 201 || c.ID == "" {
			t.Fatalf("create context: %d %s", code, raw)
		}
		if got := s.run(sb.ID, map[string]any{"code": "x", "context_id": c.ID}); got.Error == nil || got.Error.Name != "NameError" {
			t.Errorf("x in a new context: %+v", got)
		}
		var l struct {
			Contexts []struct{ ID string } `json:"contexts"`
		}
		s.API("GET", "/v1/sandboxes/"+sb.ID+"/contexts", nil, &l)
		found := false
		for _, x := range l.Contexts {
			found = found || x.ID == c.ID
		}
		if !found {
			t.Errorf("context %s not listed: %+v", c.ID, l)
		}
		if code, _ := s.API("DELETE", "/v1/sandboxes/"+sb.ID+"/contexts/"+c.ID, nil, nil); code != 204 {
			t.Errorf("delete context: %d", code)
		}
	})
	t.Run("timeout interrupts the cell, not the kernel", func(t *testing.T) {
		s.run(sb.ID, map[string]any{"code": "kept = 7"})
		start := time.Now()
		ex := s.run(sb.ID, map[string]any{"code": "while True:\n    pass", "timeout": 2})
		if ex.Error == nil || time.Since(start) > 20*time.Second {
			t.Errorf("while True with a 2 s timeout: %+v after %s", ex.Error, time.Since(start))
		}
		if got := s.run(sb.ID, map[string]any{"code": "kept * 6"}); got.text() != "42" {
			t.Errorf("state after the interrupt: %+v", got)
		}
	})
	t.Run("javascript and bash keep state", func(t *testing.T) {
		s.run(sb.ID, map[string]any{"code": "let a = 2", "language": "javascript"})
		if got := s.run(sb.ID, map[string]any{"code": "a * 21", "language": "javascript"}); got.text() != "42" {
			t.Errorf("javascript: %+v", got)
		}
		s.run(sb.ID, map[string]any{"code": "X=7", "language": "bash"})
		if got := s.run(sb.ID, map[string]any{"code": "echo $((X * 6))", "language": "bash"}); strings.TrimSpace(strings.Join(got.Logs.Stdout, "")) != "42" {
			t.Errorf("bash: %+v", got)
		}
	})
	t.Run("stdout streams over SSE while the cell runs", func(t *testing.T) {
		body, _ := json.Marshal(map[string]any{"code": "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.5)", "stream": true})
		req, _ := http.NewRequest("POST", s.URL+"/v1/sandboxes/"+sb.ID+"/execute", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.Key)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var at []time.Duration
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == "event: stdout" {
				at = append(at, time.Since(start))
			}
		}
		if len(at) != 3 || at[2]-at[0] < 700*time.Millisecond {
			t.Errorf("stdout events at %v", at)
		}
	})
	t.Run("a plain sandbox has no interpreter", func(t *testing.T) {
		plain := s.Create(map[string]any{})
		defer s.Kill(plain.ID)
		code, raw := s.API("POST", "/v1/sandboxes/"+plain.ID+"/execute", map[string]any{"code": "1"}, nil)
		if code != 409 || !strings.Contains(string(raw), "code-interpreter") {
			t.Errorf("execute in base: %d %s", code, raw)
		}
	})
	t.Run("warren run-code saves images", func(t *testing.T) {
		dir := t.TempDir()
		code := filepath.Join(dir, "cell.py")
		os.WriteFile(code, []byte("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()\nprint('drawn')\n6*7\n"), 0o644)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, errOut, rc := s.CLI(ctx, nil, "run-code", "--save-dir", dir, sb.ID, code)
		if rc != 0 || !strings.Contains(out, "drawn") || !strings.Contains(out, "42") {
			t.Fatalf("run-code: %d %q %q", rc, out, errOut)
		}
		pngs, _ := filepath.Glob(filepath.Join(dir, "*.png"))
		if len(pngs) != 1 {
			t.Fatalf("saved images: %v (output %q)", pngs, out)
		}
		_, _, rc = s.CLI(ctx, strings.NewReader("1/0"), "run-code", sb.ID, "-")
		if rc != 1 {
			t.Errorf("run-code of 1/0 exited %d, want 1", rc)
		}
	})
}

// waitLog waits until the server's log holds line.
func waitLog(t *testing.T, s *server, line string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !strings.Contains(s.Logs(), line); {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not log %q within %s", line, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
