package rest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// tricky is output that exercises the escaping: runes across piece boundaries,
// invalid UTF-8, control bytes and HTML characters.
func tricky() []byte {
	var b bytes.Buffer
	b.WriteString(strings.Repeat("a", jsonPiece-1) + "€") // a 3-byte rune across the first cut
	b.WriteString(strings.Repeat("ü", jsonPiece))
	b.Write([]byte{0xe2, 0x82, 'x', 0xff, 0x80, 0x80, 0x80, 0x80, 0, 1, '\n', '\t'})
	b.WriteString(`<script>&"\` + "\u2028")
	b.Write(bytes.Repeat([]byte{0x80}, jsonPiece+3)) // continuation bytes across a cut
	return b.Bytes()
}

func TestWriteExecResultMatchesMarshal(t *testing.T) {
	for _, res := range []*domain.ExecResult{
		{},
		{ExitCode: -1, Stdout: tricky(), Stderr: []byte("e\x00"), Error: "exit <3>", TimedOut: true, Truncated: true},
		{ExitCode: 2, Stdout: tricky()[1:], Stderr: tricky()[2:]},
	} {
		rec := httptest.NewRecorder()
		writeExecResult(rec, res)
		want, _ := json.Marshal(execResponse{ExitCode: res.ExitCode, Stdout: string(res.Stdout), Stderr: string(res.Stderr),
			Error: res.Error, TimedOut: res.TimedOut, Truncated: res.Truncated})
		if got := rec.Body.Bytes(); !bytes.Equal(got, append(want, '\n')) {
			t.Errorf("writeExecResult differs from json.Marshal (%d vs %d bytes)", len(got), len(want)+1)
		}
		if rec.Header().Get("Content-Type") != "application/json" || rec.Code != 200 {
			t.Errorf("headers %v, status %d", rec.Header(), rec.Code)
		}
	}
}

func TestWriteExecutionMatchesMarshal(t *testing.T) {
	var e execution
	e.init()
	e.Results = append(e.Results, codeResult{IsMainResult: true, Text: "2", JSON: json.RawMessage(`[1,2]`)})
	e.Logs.Stdout = append(e.Logs.Stdout, string(tricky()), "b\n")
	e.Logs.Stderr = append(e.Logs.Stderr, "<warn>\n")
	e.Error = &executionError{Name: "E", Value: "v", Traceback: "t"}
	e.ExecutionCount, e.Truncated = 3, true
	for _, ex := range []*execution{&e, {Results: []codeResult{}, Logs: executionLogs{Stdout: []string{}, Stderr: []string{}}}} {
		rec := httptest.NewRecorder()
		if err := writeExecution(rec, ex); err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(ex)
		if got := rec.Body.Bytes(); !bytes.Equal(got, append(want, '\n')) {
			t.Errorf("writeExecution differs from json.Marshal:\n got %.300s\nwant %.300s", got, want)
		}
	}
}

// discardWriter is a ResponseWriter that throws the body away.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// TestWriteExecResultHoldsLittle: 16 MiB of NULs is 96 MiB of JSON; written piece by
// piece it holds a few pieces at a time, not the whole answer (json.Marshal held about
// 200 MiB at once for it).
func TestWriteExecResultHoldsLittle(t *testing.T) {
	res := &domain.ExecResult{Stdout: make([]byte, 16<<20), Truncated: true}
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > base && m.HeapAlloc-base > peak.Load() {
				peak.Store(m.HeapAlloc - base)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	writeExecResult(&discardWriter{h: http.Header{}}, res)
	close(stop)
	<-done
	t.Logf("heap peak %d MiB above the start", peak.Load()>>20)
	if p := peak.Load(); p > 32<<20 {
		t.Errorf("writing a 16 MiB result held %d MiB more heap, want at most 32 MiB", p>>20)
	}
}
