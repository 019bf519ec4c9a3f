package template

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/testenv"
)

// pythonWith returns a host python3 that can import the given modules (Debian's, from
// scripts/install-deps.sh with WARREN_TEST_DEPS=1), trying /usr/bin/python3 first.
func pythonWith(t *testing.T, modules string) string {
	t.Helper()
	cands := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	}
	for _, py := range cands {
		if exec.Command(py, "-c", "import "+modules).Run() == nil {
			return py
		}
	}
	testenv.Missing(t, "no python3 that imports "+modules+" (apt-get install python3 python3-matplotlib; scripts/install-deps.sh with WARREN_TEST_DEPS=1)")
	return ""
}

// runCodeInterpPython runs script with the code interpreter's modules importable and
// returns its standard output.
func runCodeInterpPython(t *testing.T, py, script string) []byte {
	t.Helper()
	dir := t.TempDir()
	for p, content := range CodeInterpreter().Files {
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(py, "-c", "import sys\nsys.path.insert(0, sys.argv[1])\n"+script, dir)
	cmd.Env = append(os.Environ(), "MPLBACKEND=Agg", "MPLCONFIGDIR="+filepath.Join(dir, "mpl"))
	cmd.Stderr = nil
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("python: %v\n%s", err, stderr)
	}
	return out
}

// The text/plain of a result loses its surrounding quotes exactly as in E2B's reference
// server (template/server/api/models/result.py): single or double, first and last
// character, whenever the text starts and ends with the same quote.
func TestCodeInterpStripQuotes(t *testing.T) {
	py := pythonWith(t, "json")
	cases := []struct{ in, want string }{
		{`'abc'`, `abc`},
		{`"it's"`, `it's`}, // Python's repr of it's
		{`'say "hi"'`, `say "hi"`},
		{`''`, ``},
		{`'`, ``}, // the reference strips a lone quote too
		{`"`, ``},
		{`'abc"`, `'abc"`},
		{`"abc'`, `"abc'`},
		{`abc`, `abc`},
		{``, ``},
		{`42`, `42`},
		{`['a', 'b']`, `['a', 'b']`},
		{`'a'b'`, `a'b`},
	}
	var ins []string
	for _, c := range cases {
		ins = append(ins, c.in)
	}
	arg, _ := json.Marshal(ins)
	out := runCodeInterpPython(t, py, `import json, ci_contexts
ins = json.loads(`+strconvQuote(string(arg))+`)
print(json.dumps([ci_contexts.map_bundle({"text/plain": s, "image/png": "aGk=\n"}) for s in ins]))`)
	var got []map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for i, c := range cases {
		if got[i]["text"] != c.want {
			t.Errorf("text/plain %q gives text %q, want %q", c.in, got[i]["text"], c.want)
		}
		if got[i]["png"] != "aGk=" {
			t.Errorf("png = %v, want the base64 without line breaks", got[i]["png"])
		}
	}
}

// strconvQuote quotes s as a Python string literal (JSON strings are valid Python ones).
func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Chart extraction runs on real matplotlib figures (Debian's python3-matplotlib, the
// package the template installs) and gives E2B's chart shape.
func TestCodeInterpCharts(t *testing.T) {
	py := pythonWith(t, "matplotlib, numpy")
	cases := map[string]string{
		"line": `fig, ax = plt.subplots()
ax.plot([1, 2, 3], [1, 4, 9], label="squares")
ax.plot([1, 2, 3], [2, 3, 4])
ax.axhline(5)
ax.set_title("Growth"); ax.set_xlabel("Time (s)"); ax.set_ylabel("Size [MB]")`,
		"scatter": `fig, ax = plt.subplots()
ax.scatter([1, 2], [3, 4], label="pts")
ax.scatter([5], [6])`,
		"bar": `fig, ax = plt.subplots()
ax.bar(["a", "b", "c"], [3, 1, 2], label="sales")
ax.set_xlabel("Shop")`,
		"barh": `fig, ax = plt.subplots()
ax.barh(["x", "y"], [5, 7])
ax.set_xlabel("Count"); ax.set_ylabel("Item")`,
		"pie": `fig, ax = plt.subplots()
ax.pie([1, 1, 2], labels=["A", "B", "C"])
ax.set_title("Shares")`,
		"super": `fig, (a, b) = plt.subplots(1, 2)
fig.suptitle("Both")
a.plot([0, 1], [1, 0]); b.pie([1, 3])`,
		"blank": `fig = plt.figure()`,
		"image": `fig, ax = plt.subplots(); ax.imshow(np.zeros((2, 2)))`,
		"dates": `import datetime
fig, ax = plt.subplots()
ax.plot([datetime.date(2024, 1, 1), datetime.date(2024, 1, 3)], [1, 2])`,
		"log":        `fig, ax = plt.subplots(); ax.plot([1, 10, 100], [1, 2, 3]); ax.set_xscale("log")`,
		"categories": `fig, ax = plt.subplots(); ax.plot(["mon", "tue"], [1, 2])`,
	}
	script := `import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import ci_display
cases = json.loads(CASES)
out = {}
for name, code in cases.items():
    ns = {"plt": plt, "np": np}
    exec(code, ns)
    out[name] = ci_display.figure_to_chart(ns["fig"])
    plt.close("all")
print(json.dumps(out))`
	arg, _ := json.Marshal(cases)
	raw := runCodeInterpPython(t, py, "CASES = "+strconvQuote(string(arg))+"\n"+script)
	var got map[string]map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	check := func(name, field, want string) {
		t.Helper()
		if g := js(got[name][field]); g != want {
			t.Errorf("%s: %s = %s, want %s", name, field, g, want)
		}
	}
	check("line", "type", `"line"`)
	check("line", "title", `"Growth"`)
	check("line", "x_label", `"Time (s)"`)
	check("line", "x_unit", `"s"`)
	check("line", "y_unit", `"MB"`)
	check("line", "x_scale", `"linear"`)
	check("line", "elements", `[{"label":"squares","points":[[1,1],[2,4],[3,9]]},{"label":"Line 1","points":[[1,2],[2,3],[3,4]]}]`)
	if ticks, _ := got["line"]["x_ticks"].([]any); len(ticks) == 0 || len(ticks) != len(got["line"]["x_tick_labels"].([]any)) {
		t.Errorf("line: x_ticks %v, x_tick_labels %v: want as many labels as ticks", got["line"]["x_ticks"], got["line"]["x_tick_labels"])
	}
	check("scatter", "type", `"scatter"`)
	check("scatter", "elements", `[{"label":"pts","points":[[1,3],[2,4]]},{"label":"_child1","points":[[5,6]]}]`)
	check("bar", "type", `"bar"`)
	check("bar", "x_label", `"Shop"`)
	check("bar", "elements", `[{"group":"sales","label":"a","value":3},{"group":"sales","label":"b","value":1},{"group":"sales","label":"c","value":2}]`)
	check("barh", "x_label", `"Item"`) // swapped: the categories are on the y axis
	check("barh", "y_label", `"Count"`)
	check("barh", "elements", `[{"group":"Group 0","label":"x","value":5},{"group":"Group 0","label":"y","value":7}]`)
	check("pie", "type", `"pie"`)
	check("pie", "title", `"Shares"`)
	check("pie", "elements", `[{"angle":90,"label":"A","radius":1},{"angle":90,"label":"B","radius":1},{"angle":180,"label":"C","radius":1}]`)
	check("super", "type", `"superchart"`)
	check("super", "title", `"Both"`)
	if els, _ := got["super"]["elements"].([]any); len(els) != 2 || js(els[0].(map[string]any)["type"]) != `"line"` || js(els[1].(map[string]any)["type"]) != `"pie"` {
		t.Errorf("super: elements %s, want a line chart and a pie chart", js(got["super"]["elements"]))
	}
	if len(got["blank"]) != 0 {
		t.Errorf("blank figure gives %s, want {}", js(got["blank"]))
	}
	check("image", "type", `"unknown"`)
	check("image", "elements", `[]`)
	check("dates", "x_scale", `"datetime"`)
	check("dates", "elements", `[{"label":"Line 0","points":[["2024-01-01",1],["2024-01-03",2]]}]`)
	check("log", "x_scale", `"log"`)
	check("categories", "x_scale", `"categorical"`)
	check("categories", "elements", `[{"label":"Line 0","points":[["mon",1],["tue",2]]}]`)
	if strings.Contains(string(raw), "NaN") {
		t.Errorf("output has NaN (not JSON): %s", raw)
	}
}

// Dicts and lists become result.json as the reference's orjson call makes them (numpy
// values, non-str keys, NaN as null), and what orjson refuses gives no JSON at all.
func TestCodeInterpJSONable(t *testing.T) {
	py := pythonWith(t, "numpy")
	out := runCodeInterpPython(t, py, `import datetime, enum, json, uuid
import numpy as np
import ci_display
class Color(enum.Enum):
    RED = 1
cases = {
    "plain": {"a": [1, 2.5, "x", None, True]},
    "keys": {1: "int", 2.5: "float", None: "none", datetime.date(2024, 1, 2): "date"},
    "boolkey": {False: "bool"},
    "enumkey": {Color.RED: "enum"},
    "numpy": {"arr": np.arange(3), "m": np.array([[1.5, 2], [3, 4]]), "i": np.int64(7), "f": np.float32(0.5), "b": np.bool_(True)},
    "nonfinite": [float("nan"), float("inf"), np.nan],
    "values": [datetime.datetime(2024, 1, 2, 3, 4, 5), uuid.UUID(int=1), Color.RED, (1, 2)],
}
out = {}
for name, v in cases.items():
    out[name] = ci_display.jsonable(v)
for name, v in {"object": [object()], "bigint": [1 << 70], "tuplekey": {(1, 2): 3}}.items():
    try:
        ci_display.jsonable(v)
        out[name] = "accepted"
    except TypeError:
        out[name] = "TypeError"
print(json.dumps(out, allow_nan=False))`)
	want := map[string]string{
		"plain":     `{"a":[1,2.5,"x",null,true]}`,
		"keys":      `{"1":"int","2.5":"float","2024-01-02":"date","null":"none"}`,
		"boolkey":   `{"false":"bool"}`,
		"enumkey":   `{"1":"enum"}`,
		"numpy":     `{"arr":[0,1,2],"b":true,"f":0.5,"i":7,"m":[[1.5,2],[3,4]]}`,
		"nonfinite": `[null,null,null]`,
		"values":    `["2024-01-02T03:04:05","00000000-0000-0000-0000-000000000001",1,[1,2]]`,
		"object":    `"TypeError"`,
		"bigint":    `"TypeError"`,
		"tuplekey":  `"TypeError"`,
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for name, w := range want {
		var v any
		_ = json.Unmarshal(got[name], &v)
		g, _ := json.Marshal(v) // sorted keys
		if string(g) != w {
			t.Errorf("%s: %s, want %s", name, g, w)
		}
	}
}

// What a context's process writes is held in bounded pieces: an events line longer than
// MAX_EVENT_BYTES is dropped (the next one is read, output written before it comes
// first, and a JSON line that is no event is skipped), and a bash cell's output with no
// newline goes out as it comes, whole characters only, while its sentinel is still found.
func TestCodeInterpBoundedLines(t *testing.T) {
	py := pythonWith(t, "json")
	script := `import json, os, queue, threading, tracemalloc
import ci_procs
ci_procs.MAX_EVENT_BYTES = 1000
ci_procs.MAX_PARTIAL_LINE = 100
out = {}

ctx = ci_procs.NodeContext.__new__(ci_procs.NodeContext)
ctx.events, ctx.id = queue.Queue(), "bounded0"
r, w = os.pipe()
outr, outw = os.pipe()
errr, errw = os.pipe()
files = [os.fdopen(r, "rb", buffering=0), os.fdopen(outr, "rb"), os.fdopen(errr, "rb")]  # kept open
ctx._merged_reader(*files, lambda m: True)
def write():
    with os.fdopen(w, "wb") as f:
        for _ in range(64):  # 8 MiB without a newline
            f.write(b"x" * (128 << 10))
        f.write(b"\n")
        os.write(outw, b"written before ok\n")
        f.write(json.dumps({"type": "ok", "pad": "y" * 900}).encode() + b"\n")
        f.flush()
        f.write(b"z" * 1000 + b"\n")  # exactly at the cap (with its newline: one over)
        f.write(b"[1, 2]\n")  # JSON, but not an event
        f.write(json.dumps({"type": "last"}).encode() + b"\n")
    os.close(outw)
    os.close(errw)
tracemalloc.start()
threading.Thread(target=write).start()
evs = []
while True:
    ev = ctx.events.get(timeout=10)
    evs.append(ev[1]["type"] if ev[0] == "event" else ev[0])
    if ev == ("eof", "events"):
        break
out["events"] = evs
out["peak"] = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()

token = "__warren_done_0123__"
run = ci_procs._BashRun(None, token)
text, lines, held = "", [], 0
for i in range(40):
    piece = ("aé€😀" * 8)[: 5 + i % 11]
    text += piece
    run._feed("stdout", piece.encode(), lines)
    held = max(held, len(run.buf["stdout"]))
run._feed("stdout", (token[:7]).encode(), lines)
run._feed("stdout", (token[7:] + " 3\n").encode(), lines)
out["text_ok"] = "".join(l["text"] for l in lines) == text
out["replacement"] = any("\ufffd" in l["text"] for l in lines)
out["held"] = held
out["finished"] = run.finished["stdout"]
out["rc"] = run.rc
print(json.dumps(out))
`
	var got struct {
		Events      []string `json:"events"`
		Peak        int      `json:"peak"`
		TextOK      bool     `json:"text_ok"`
		Replacement bool     `json:"replacement"`
		Held        int      `json:"held"`
		Finished    bool     `json:"finished"`
		RC          int      `json:"rc"`
	}
	if err := json.Unmarshal(runCodeInterpPython(t, py, script), &got); err != nil {
		t.Fatal(err)
	}
	if want := []string{"stdout", "ok", "last", "eof"}; strings.Join(got.Events, ",") != strings.Join(want, ",") {
		t.Errorf("events (and output) read around over-long and odd lines: %v, want %v", got.Events, want)
	}
	if got.Peak > 1<<20 {
		t.Errorf("reading an 8 MiB events line with MAX_EVENT_BYTES 1000 took %d bytes at the peak, want under 1 MiB", got.Peak)
	}
	if !got.TextOK || got.Replacement {
		t.Errorf("bash output without newlines: whole %v, with replacement characters %v", got.TextOK, got.Replacement)
	}
	if got.Held > 100+64 {
		t.Errorf("bash output held back waiting for a newline: up to %d bytes, want at most MAX_PARTIAL_LINE (100) and one piece", got.Held)
	}
	if !got.Finished || got.RC != 3 {
		t.Errorf("the sentinel split over two pieces after a long line: finished %v rc %d, want true 3", got.Finished, got.RC)
	}
}

// A Python context's output comes in the order the kernel wrote it, whatever the reader
// finds waiting when it wakes: output behind a cell's execute_input and a display stays
// after the display (draining it at execute_input put it first: CI saw print('two') come
// before the display written before it), and output behind a display longer than one
// read of the events pipe stays after that display.
func TestCodeInterpReaderOrder(t *testing.T) {
	py := pythonWith(t, "json")
	script := `import array, fcntl, json, os, queue, termios, time
import ci_procs, ci_python

def ev(kind, **content):
    return json.dumps({"msg_type": kind, "content": content}).encode() + b"\n"

def unread(fd):
    n = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, n, True)
    return n[0]

def run(name, events, output, after):
    """Fills the pipes before the reader starts, then writes after once it has read the
    output (as the kernel's settle does); returns what the reader queued."""
    ctx = ci_python.PythonContext.__new__(ci_python.PythonContext)
    ctx.events, ctx.id = queue.Queue(), name
    r, w = os.pipe()
    fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ: room for the whole display unread
    outr, outw = os.pipe()
    errr, errw = os.pipe()
    os.write(w, events)
    os.write(outw, output)
    files = [os.fdopen(r, "rb", buffering=0), os.fdopen(outr, "rb"), os.fdopen(errr, "rb")]
    ctx._merged_reader(*files, ci_python.drains_first)
    deadline = time.monotonic() + 10
    while unread(outr) and time.monotonic() < deadline:
        time.sleep(0.001)
    os.write(w, after)
    got = []
    while True:
        kind, payload = ctx.events.get(timeout=10)
        got.append(payload["msg_type"] if kind == "event" else kind + ":" + payload.strip())
        if got[-1] == "status":
            break
    for fd in (w, outw, errw):
        os.close(fd)
    ctx.thread.join(5)
    for f in files:
        f.close()
    return got

out = {
    "display": run("order0", ev("execute_input") + ev("display_data", data={"text/plain": "one"}),
                   b"two\n", ev("execute_result", data={"text/plain": "3"}) + ev("status", execution_state="idle")),
    "big": run("order1", ev("execute_input") + ev("display_data", data={"image/png": "x" * (512 << 10)}),
               b"after\n", ev("status", execution_state="idle")),
}
print(json.dumps(out))
`
	var got map[string][]string
	if err := json.Unmarshal(runCodeInterpPython(t, py, script), &got); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{
		"display": {"execute_input", "display_data", "stdout:two", "execute_result", "status"},
		"big":     {"execute_input", "display_data", "stdout:after", "status"},
	} {
		if strings.Join(got[name], ",") != strings.Join(want, ",") {
			t.Errorf("%s: reader queued %v, want %v", name, got[name], want)
		}
	}
}
