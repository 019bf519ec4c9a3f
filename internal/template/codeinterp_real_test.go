package template

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCodeInterpreterReal builds the code-interpreter template into the shared cache (slow
// the first time, cached afterwards), runs its StartCmd in the root filesystem without a
// sandbox (private mount and PID namespaces, an overlay over the cached rootfs, chroot,
// the host's loopback) and drives the server over HTTP like the E2B SDK does.
func TestCodeInterpreterReal(t *testing.T) {
	r := CodeInterpreter()
	rootfs, m := buildReal(t, r, " and runs it with unshare, mount and chroot")
	if m.StartCmd != r.StartCmd {
		t.Errorf("marker StartCmd = %q, want %q", m.StartCmd, r.StartCmd)
	}

	s := startCodeInterpreter(t, rootfs, strings.Fields(m.StartCmd))
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *ciServer)
	}{
		{"health", testCIHealth},
		{"python expression and state", testCIPythonState},
		{"contexts are isolated", testCIIsolation},
		{"stdout streams while the cell runs", testCIStreaming},
		{"display outputs in order", testCIDisplayOrder},
		{"matplotlib png", testCIMatplotlib},
		{"pandas dataframe", testCIDataFrame},
		{"python error", testCIPythonError},
		{"descriptor output arrives before the end", testCIDescriptorOutput},
		{"output and displays keep their order", testCIOutputOrder},
		{"many prints arrive whole", testCIManyPrints},
		{"input has no stdin", testCIInput},
		{"timeout interrupts", testCITimeout},
		{"client disconnect interrupts", testCIDisconnect},
		{"kernel death", testCIKernelDeath},
		{"env vars", testCIEnvVars},
		{"javascript", testCIJavaScript},
		{"bash", testCIBash},
		{"context api", testCIContextAPI},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, s) })
	}
}

func testCIHealth(t *testing.T, s *ciServer) {
	status, body := s.do(t, "GET", "/health", "")
	if status != 200 || body != "OK" {
		t.Errorf("GET /health = %d %q", status, body)
	}
}

func testCIPythonState(t *testing.T, s *ciServer) {
	ex := s.execute(t, "/execute?source=test", map[string]any{"code": "1+1"})
	if got := ex.mainText(); got != "2" {
		t.Errorf("1+1 = %q; lines %v", got, ex.lines)
	}
	if ex.lines[0]["type"] != "number_of_executions" {
		t.Errorf("first line %v, want number_of_executions", ex.lines[0])
	}
	s.execute(t, "", map[string]any{"code": "x = 5"})
	if got := s.execute(t, "", map[string]any{"code": "x * 2"}).mainText(); got != "10" {
		t.Errorf("x * 2 = %q", got)
	}
	if got := s.execute(t, "", map[string]any{"code": "'a str'"}).mainText(); got != "a str" {
		t.Errorf("a str result = %q, want the quotes stripped", got)
	}
	if got := s.execute(t, "", map[string]any{"code": `"it's"`}).mainText(); got != "it's" {
		t.Errorf(`"it's" result = %q, want the double quotes stripped (as E2B's reference does)`, got)
	}
	who := s.execute(t, "", map[string]any{"code": "import os; (os.getuid(), os.getcwd(), os.environ['HOME'])"}).mainText()
	if who != "(1000, '/home/user', '/home/user')" {
		t.Errorf("kernel identity = %s, want uid 1000 in /home/user", who)
	}
}

func testCIIsolation(t *testing.T, s *ciServer) {
	a, b := s.createContext(t, "python", ""), s.createContext(t, "", "")
	if b["language"] != "python" || b["cwd"] != "/home/user" {
		t.Errorf("default context = %v", b)
	}
	s.execute(t, "", map[string]any{"code": "y = 'only in a'", "context_id": a["id"]})
	if got := s.execute(t, "", map[string]any{"code": "y", "context_id": a["id"]}).mainText(); got != "only in a" {
		t.Errorf("y in a = %q", got)
	}
	if e := s.execute(t, "", map[string]any{"code": "y", "context_id": b["id"]}).errorLine(); e == nil || e["name"] != "NameError" {
		t.Errorf("y in b: error %v, want NameError", e)
	}
	tmp := s.createContext(t, "python", "/tmp")
	if got := s.execute(t, "", map[string]any{"code": "import os; os.getcwd()", "context_id": tmp["id"]}).mainText(); got != "/tmp" {
		t.Errorf("cwd = %q, want /tmp", got)
	}
}

func testCIStreaming(t *testing.T, s *ciServer) {
	ex := s.execute(t, "", map[string]any{"code": "import time\nfor i in range(3):\n    print(i)\n    time.sleep(0.3)\n"})
	var texts []string
	var at []time.Duration
	for i, l := range ex.lines {
		if l["type"] == "stdout" {
			texts = append(texts, l["text"].(string))
			at = append(at, ex.at[i])
			if _, err := time.Parse(time.RFC3339Nano, l["timestamp"].(string)); err != nil {
				t.Errorf("timestamp: %v", err)
			}
		}
	}
	if strings.Join(texts, "") != "0\n1\n2\n" || len(texts) != 3 {
		t.Fatalf("stdout lines %q, want 0, 1, 2", texts)
	}
	if d := at[2] - at[0]; d < 400*time.Millisecond {
		t.Errorf("stdout lines arrived within %v of each other: not streamed", d)
	}
}

func testCIDisplayOrder(t *testing.T, s *ciServer) {
	ex := s.execute(t, "", map[string]any{"code": "from IPython.display import display, HTML\ndisplay(HTML('<b>one</b>'))\nprint('two')\n3"})
	var got []string
	for _, l := range ex.lines {
		switch l["type"] {
		case "result":
			got = append(got, fmt.Sprintf("result main=%v html=%v text=%v", l["is_main_result"], l["html"], l["text"]))
		case "stdout":
			got = append(got, "stdout "+l["text"].(string))
		}
	}
	want := []string{"result main=false html=<b>one</b> text=<IPython.core.display.HTML object>", "stdout two\n", "result main=true html=<nil> text=3"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("outputs\n%q\nwant\n%q", got, want)
	}
}

func testCIMatplotlib(t *testing.T, s *ciServer) {
	for _, tc := range []struct {
		code string
		w, h uint32
	}{
		{"import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()", 640, 480},
		{"import matplotlib.pyplot as plt\nplt.figure(figsize=(4, 3), dpi=50)\nplt.plot([1, 2])\nplt.show()", 200, 150},
	} {
		ex := s.execute(t, "", map[string]any{"code": tc.code})
		pngs := ex.field("png")
		if len(pngs) != 1 {
			t.Errorf("%d png results, want 1; lines %v", len(pngs), ex.lines)
			continue
		}
		data, err := base64.StdEncoding.DecodeString(pngs[0].(string))
		if err != nil {
			t.Fatalf("png is not base64: %v", err)
		}
		if len(data) < 24 || !bytes.Equal(data[:8], []byte("\x89PNG\r\n\x1a\n")) || string(data[12:16]) != "IHDR" {
			t.Fatalf("not a PNG: % x", data[:min(len(data), 24)])
		}
		if w, h := binary.BigEndian.Uint32(data[16:20]), binary.BigEndian.Uint32(data[20:24]); w != tc.w || h != tc.h {
			t.Errorf("png is %dx%d, want %dx%d", w, h, tc.w, tc.h)
		}
		// The same result carries the figure's data (e2b/chart, see ci_display.py).
		charts := ex.field("chart")
		var chart map[string]any
		if len(charts) == 1 {
			chart, _ = charts[0].(map[string]any)
		}
		if els, _ := chart["elements"].([]any); chart["type"] != "line" || len(els) != 1 {
			t.Errorf("chart results %v, want one line chart with one line", charts)
		}
	}
	ex := s.execute(t, "", map[string]any{"code": "import matplotlib.pyplot as plt\nplt.pie([1, 1])\nplt.show()"})
	if charts := ex.field("chart"); len(charts) != 1 || fmt.Sprint(charts[0].(map[string]any)["type"]) != "pie" {
		t.Errorf("pie: chart results %v", charts)
	}
}

func testCIDataFrame(t *testing.T, s *ciServer) {
	ex := s.execute(t, "", map[string]any{"code": "import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})"})
	main := ex.main()
	if main == nil {
		t.Fatalf("no main result: %v", ex.lines)
	}
	if html, _ := main["html"].(string); !strings.Contains(html, "<table") {
		t.Errorf("html = %q, want a <table", html)
	}
	if text, _ := main["text"].(string); !strings.Contains(text, "a  b") {
		t.Errorf("text = %q", text)
	}
	// The columns as data (e2b/data), and a dict's value as JSON, as E2B's reference does.
	if data, _ := json.Marshal(main["data"]); string(data) != `{"a":[1,2],"b":[3,4]}` {
		t.Errorf("data = %s, want the columns", data)
	}
	ex = s.execute(t, "", map[string]any{"code": "import numpy as np\n{'n': np.int64(3), 'xs': [1.5, float('nan')]}"})
	if j, _ := json.Marshal(ex.main()["json"]); string(j) != `{"n":3,"xs":[1.5,null]}` {
		t.Errorf("json = %s; lines %v", j, ex.lines)
	}
}

func testCIPythonError(t *testing.T, s *ciServer) {
	e := s.execute(t, "", map[string]any{"code": "1/0"}).errorLine()
	if e == nil || e["name"] != "ZeroDivisionError" || e["value"] != "division by zero" {
		t.Fatalf("error = %v", e)
	}
	if tb, _ := e["traceback"].(string); !strings.Contains(tb, "ZeroDivisionError") {
		t.Errorf("traceback %q", tb)
	}
	if got := s.execute(t, "", map[string]any{"code": "1+2"}).mainText(); got != "3" {
		t.Errorf("after an error: %q", got)
	}
}

// Output written to the file descriptors goes through the kernel's output pipes, as
// sys.stdout's does; a cell that ends right after writing must still carry it, on the
// stream it was written to, before end_of_execution (ci_python drains the pipes before
// it takes the idle status).
func testCIDescriptorOutput(t *testing.T, s *ciServer) {
	for _, tc := range []struct{ code, stream, want string }{
		{"import os; os.write(1, b'fd-out\\n')\nNone", "stdout", "fd-out\n"},
		{"import os; os.write(2, b'fd-err\\n')\nNone", "stderr", "fd-err\n"},
		{"import os; os.system('echo from-child')\nNone", "stdout", "from-child\n"},
		{"print('printed')", "stdout", "printed\n"},
	} {
		missing := 0
		for i := 0; i < 15; i++ {
			ex := s.execute(t, "", map[string]any{"code": tc.code})
			var got strings.Builder
			for _, l := range ex.lines {
				if l["type"] == tc.stream {
					got.WriteString(l["text"].(string))
				}
			}
			if got.String() != tc.want {
				missing++
				if missing == 1 {
					t.Errorf("%q: %s %q, want %q; lines %v", tc.code, tc.stream, got.String(), tc.want, ex.lines)
				}
			}
			if last := ex.lines[len(ex.lines)-1]; last["type"] != "end_of_execution" {
				t.Fatalf("%q: last line %v, want end_of_execution", tc.code, last)
			}
		}
		if missing > 0 {
			t.Errorf("%q: output missing or wrong in %d of 15 runs", tc.code, missing)
		}
	}
}

// Output is buffered in the kernel and read from pipes while displays travel as events:
// a display or result still lands between the output written before it and after it.
func testCIOutputOrder(t *testing.T, s *ciServer) {
	code := "import sys\nprint('a')\ndisplay('b')\nsys.stderr.write('c\\n')\nprint('d')\n'e'"
	want := "stdout a\n|result b|stderr c\n|stdout d\n|main e"
	for i := 0; i < 10; i++ {
		var got []string
		for _, l := range s.execute(t, "", map[string]any{"code": code}).lines {
			switch l["type"] {
			case "stdout", "stderr":
				got = append(got, fmt.Sprint(l["type"], " ", l["text"]))
			case "result":
				if l["is_main_result"] == true {
					got = append(got, fmt.Sprint("main ", l["text"]))
				} else {
					got = append(got, fmt.Sprint("result ", l["text"]))
				}
			}
		}
		if strings.Join(got, "|") != want {
			t.Fatalf("run %d: outputs %q, want %q", i, strings.Join(got, "|"), want)
		}
	}
}

// Prints are buffered in the kernel (a write per print would cost a system call each):
// a cell printing 20000 lines delivers all of them, once and in order.
func testCIManyPrints(t *testing.T, s *ciServer) {
	ex := s.execute(t, "", map[string]any{"code": "for i in range(20000): print(i)"})
	var got, want strings.Builder
	for _, l := range ex.lines {
		if l["type"] == "stdout" {
			got.WriteString(l["text"].(string))
		}
	}
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	if got.String() != want.String() {
		t.Errorf("stdout of 20000 prints: %d bytes, want %d (in order, each once)", got.Len(), want.Len())
	}
}

// The kernel has no stdin: input() fails at once with a clear error instead of hanging.
func testCIInput(t *testing.T, s *ciServer) {
	e := s.execute(t, "", map[string]any{"code": "input('name? ')", "timeout": 10}).errorLine()
	if e == nil || e["name"] != "StdinNotImplementedError" || !strings.Contains(fmt.Sprint(e["value"]), "no stdin") {
		t.Errorf("input() gave %v, want StdinNotImplementedError saying there is no stdin", e)
	}
}

func testCITimeout(t *testing.T, s *ciServer) {
	start := time.Now()
	ex := s.execute(t, "", map[string]any{"code": "x = 41\nwhile True: pass", "timeout": 2})
	if d := time.Since(start); d < 2*time.Second || d > 15*time.Second {
		t.Errorf("timed-out run took %v, want about 2s", d)
	}
	if e := ex.errorLine(); e == nil || e["name"] != "KeyboardInterrupt" {
		t.Errorf("error = %v, want KeyboardInterrupt", e)
	}
	if got := s.execute(t, "", map[string]any{"code": "x + 1"}).mainText(); got != "42" {
		t.Errorf("x + 1 after the interrupt = %q, want 42 (state kept)", got)
	}
}

func testCIDisconnect(t *testing.T, s *ciServer) {
	c := s.createContext(t, "python", "")
	s.execute(t, "", map[string]any{"code": "v = 'kept'", "context_id": c["id"]})
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	body, _ := json.Marshal(map[string]any{"code": "while True: pass", "context_id": c["id"]})
	req, _ := http.NewRequestWithContext(ctx, "POST", s.url+"/execute", bytes.NewReader(body))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		io.Copy(io.Discard, resp.Body) // until the deadline cuts it
		resp.Body.Close()
	}
	start := time.Now()
	if got := s.execute(t, "", map[string]any{"code": "v", "context_id": c["id"]}).mainText(); got != "kept" {
		t.Errorf("v after the disconnect = %q", got)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the abandoned run held the context for %v", d)
	}
}

func testCIKernelDeath(t *testing.T, s *ciServer) {
	c := s.createContext(t, "python", "")
	e := s.execute(t, "", map[string]any{"code": "import os; os._exit(1)", "context_id": c["id"]}).errorLine()
	if e == nil || e["name"] != "UnexpectedEndOfExecution" {
		t.Errorf("error = %v, want UnexpectedEndOfExecution", e)
	}
	if got := s.execute(t, "", map[string]any{"code": "6 * 7", "context_id": c["id"]}).mainText(); got != "42" {
		t.Errorf("after the kernel died: %q", got)
	}
}

func testCIEnvVars(t *testing.T, s *ciServer) {
	code := "import os; os.environ.get('WARREN_T', 'unset')"
	if got := s.execute(t, "", map[string]any{"code": code, "env_vars": map[string]string{"WARREN_T": "v1"}}).mainText(); got != "v1" {
		t.Errorf("with env_vars: %q", got)
	}
	if got := s.execute(t, "", map[string]any{"code": code}).mainText(); got != "unset" {
		t.Errorf("env var survived its execution: %q", got)
	}
	ex := s.execute(t, "", map[string]any{"code": "echo \"[$WARREN_T]\"", "language": "bash", "env_vars": map[string]string{"WARREN_T": "it's"}})
	if got := ex.stdout(); got != "[it's]\n" {
		t.Errorf("bash with env_vars: %q", got)
	}
	if got := s.execute(t, "", map[string]any{"code": "echo \"[$WARREN_T]\"", "language": "bash"}).stdout(); got != "[]\n" {
		t.Errorf("bash env var survived: %q", got)
	}
	js := "process.env.WARREN_T || 'unset'"
	if got := s.execute(t, "", map[string]any{"code": js, "language": "js", "env_vars": map[string]string{"WARREN_T": "v3"}}).mainText(); got != "v3" {
		t.Errorf("js with env_vars: %q", got)
	}
	if got := s.execute(t, "", map[string]any{"code": js, "language": "js"}).mainText(); got != "unset" {
		t.Errorf("js env var survived: %q", got)
	}
}

func testCIJavaScript(t *testing.T, s *ciServer) {
	c := s.createContext(t, "javascript", "")
	if c["language"] != "javascript" {
		t.Errorf("context = %v", c)
	}
	run := func(code string) ciExec {
		return s.execute(t, "", map[string]any{"code": code, "context_id": c["id"]})
	}
	if ex := run("let a = 2; console.log('hello', a)"); ex.stdout() != "hello 2\n" || ex.main() != nil {
		t.Errorf("let + console.log: %v", ex.lines)
	}
	if got := run("a * 21").mainText(); got != "42" {
		t.Errorf("a * 21 = %q", got)
	}
	if got := run("const r = await Promise.resolve(20)\nr + 1").mainText(); got != "21" {
		t.Errorf("top-level await = %q", got)
	}
	if got := run("({k: [1, 'two']})").mainText(); got != "{ k: [ 1, 'two' ] }" {
		t.Errorf("object inspect = %q", got)
	}
	e := run("null.x").errorLine()
	if e == nil || e["name"] != "TypeError" || !strings.Contains(e["traceback"].(string), "TypeError") {
		t.Errorf("error = %v", e)
	}
	if e := s.execute(t, "", map[string]any{"code": "while (true) {}", "context_id": c["id"], "timeout": 1}).errorLine(); e == nil {
		t.Error("an interrupted loop reports no error")
	}
	if got := run("a").mainText(); got != "2" {
		t.Errorf("a after the interrupt = %q", got)
	}
	// console output (an event) and what a child process or fs.writeSync(1) writes (the
	// process's stdout and stderr pipes) all come before the result and the end; within
	// each of the two channels in order (between them, as the reader sees them).
	order := "console.log('a'); require('child_process').execSync('echo b', {stdio: 'inherit'}); console.log('c')\n" +
		"require('fs').writeSync(1, 'd\\n'); console.error('e'); require('child_process').execSync('echo f >&2', {stdio: 'inherit'}); 6 + 1"
	for i := 0; i < 5; i++ {
		var out, err []string
		ended := false
		for _, l := range run(order).lines {
			switch l["type"] {
			case "stdout", "stderr":
				if ended {
					t.Fatalf("run %d: %s %q after the result", i, l["type"], l["text"])
				}
				if l["type"] == "stdout" {
					out = append(out, fmt.Sprint(l["text"]))
				} else {
					err = append(err, fmt.Sprint(l["text"]))
				}
			case "result":
				if l["text"] != "7" {
					t.Errorf("run %d: result %v, want 7", i, l["text"])
				}
				ended = true
			}
		}
		o, e := strings.Join(out, ""), strings.Join(err, "")
		console, fd := strings.Index(o, "a\n") < strings.Index(o, "c\n"), strings.Index(o, "b\n") < strings.Index(o, "d\n")
		if len(o) != 8 || !console || !fd || !ended || (e != "e\nf\n" && e != "f\ne\n") {
			t.Fatalf("run %d: stdout %q, stderr %q, result seen %v; want a, b, c, d (a before c, b before d), e and f, then the result", i, o, e, ended)
		}
	}
}

func testCIBash(t *testing.T, s *ciServer) {
	bash := func(code string) ciExec {
		return s.execute(t, "", map[string]any{"code": code, "language": "bash"})
	}
	bash("X=7; f() { echo \"f$1\"; }; cd /tmp")
	if got := bash("echo $X; f 1; pwd; id -un").stdout(); got != "7\nf1\n/tmp\nuser\n" {
		t.Errorf("bash state: %q", got)
	}
	ex := bash("echo out; echo err >&2; false")
	if e := ex.errorLine(); e == nil || !strings.Contains(e["value"].(string), "1") {
		t.Errorf("false: error %v", e)
	}
	if ex.stdout() != "out\n" || ex.stderr() != "err\n" {
		t.Errorf("stdout %q stderr %q", ex.stdout(), ex.stderr())
	}
	start := time.Now()
	bash("Y=8")
	s.execute(t, "", map[string]any{"code": "sleep 100", "language": "bash", "timeout": 1})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("interrupted sleep took %v", d)
	}
	if got := bash("echo $Y").stdout(); got != "8\n" {
		t.Errorf("after the interrupt: %q", got)
	}
}

func testCIContextAPI(t *testing.T, s *ciServer) {
	for _, path := range []string{"/execute"} {
		status, body := s.do(t, "POST", path, `{"code":"1","context_id":"nope"}`)
		if status != 404 || !strings.Contains(body, "nope") {
			t.Errorf("unknown context: %d %q", status, body)
		}
	}
	if status, _ := s.do(t, "POST", "/execute", `{"code":"1","context_id":"x","language":"python"}`); status != 400 {
		t.Errorf("context_id and language: %d, want 400", status)
	}
	if status, _ := s.do(t, "DELETE", "/contexts/nope", ""); status != 404 {
		t.Errorf("DELETE unknown: %d", status)
	}
	if status, _ := s.do(t, "POST", "/contexts/nope/restart", ""); status != 404 {
		t.Errorf("restart unknown: %d", status)
	}
	c := s.createContext(t, "python", "")
	id := c["id"].(string)
	s.execute(t, "", map[string]any{"code": "z = 1", "context_id": id})
	if status, body := s.do(t, "POST", "/contexts/"+id+"/restart", ""); status/100 != 2 {
		t.Fatalf("restart: %d %q", status, body)
	}
	if e := s.execute(t, "", map[string]any{"code": "z", "context_id": id}).errorLine(); e == nil || e["name"] != "NameError" {
		t.Errorf("z after restart: %v, want NameError", e)
	}
	if !s.listed(t, id) {
		t.Error("context not in GET /contexts")
	}
	if status, _ := s.do(t, "DELETE", "/contexts/"+id, ""); status/100 != 2 {
		t.Errorf("DELETE: %d", status)
	}
	if s.listed(t, id) {
		t.Error("deleted context still listed")
	}
	if status, _ := s.do(t, "POST", "/execute", `{"code":"1","context_id":"`+id+`"}`); status != 404 {
		t.Errorf("execute in a deleted context: %d", status)
	}
}
