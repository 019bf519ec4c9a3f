package rest

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/warren-sh/warren/internal/domain"
)

// The answers holding a sandbox's output are written piece by piece: the output may
// be tens of MiB, and JSON-escaped (a NUL byte is six bytes of JSON) and copied by
// json.Marshal it would cost the server many times that for each such request.

// jsonPiece is how much of a string is escaped at a time.
const jsonPiece = 32 << 10

// writeJSONString writes b as a JSON string, as encoding/json writes string(b) (invalid
// UTF-8 as U+FFFD), escaping it a piece at a time and never splitting a rune.
func writeJSONString[T string | []byte](w *bufio.Writer, b T) {
	w.WriteByte('"')
	for len(b) > 0 {
		n := min(len(b), jsonPiece)
		for k := 0; k < utf8.UTFMax && n < len(b) && n > 1 && !utf8.RuneStart(b[n]); k++ {
			n-- // back up to the start of the rune that crosses the cut
		}
		q, _ := json.Marshal(string(b[:n])) // a string always marshals
		w.Write(q[1 : len(q)-1])
		b = b[n:]
	}
	w.WriteByte('"')
}

// beginJSON sends the headers of a 200 JSON answer and returns a buffered writer for
// its body; the caller flushes it.
func beginJSON(w http.ResponseWriter) *bufio.Writer {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	return bufio.NewWriterSize(w, 64<<10)
}

// writeExecResult writes a command's result as execResponse does, piece by piece.
func writeExecResult(w http.ResponseWriter, res *domain.ExecResult) {
	bw := beginJSON(w)
	bw.WriteString(`{"exit_code":` + strconv.Itoa(res.ExitCode) + `,"stdout":`)
	writeJSONString(bw, res.Stdout)
	bw.WriteString(`,"stderr":`)
	writeJSONString(bw, res.Stderr)
	if res.Error != "" {
		bw.WriteString(`,"error":`)
		writeJSONString(bw, res.Error)
	}
	if res.TimedOut {
		bw.WriteString(`,"timed_out":true`)
	}
	if res.Truncated {
		bw.WriteString(`,"truncated":true`)
	}
	bw.WriteString("}\n")
	_ = bw.Flush() // a client that went away is not an error of the command
}

// writeExecution writes a non-streamed execution as json.Marshal would, the logs one
// entry at a time. Results and the error are encoded first, so that a failure is still
// an ordinary error answer.
func writeExecution(w http.ResponseWriter, e *execution) error {
	results, err := json.Marshal(e.Results)
	if err != nil {
		return err
	}
	excErr, err := json.Marshal(e.Error)
	if err != nil {
		return err
	}
	bw := beginJSON(w)
	logs := func(entries []string) {
		bw.WriteByte('[')
		for i, s := range entries {
			if i > 0 {
				bw.WriteByte(',')
			}
			writeJSONString(bw, s)
		}
		bw.WriteByte(']')
	}
	bw.WriteString(`{"results":`)
	bw.Write(results)
	bw.WriteString(`,"logs":{"stdout":`)
	logs(e.Logs.Stdout)
	bw.WriteString(`,"stderr":`)
	logs(e.Logs.Stderr)
	bw.WriteString(`},"error":`)
	bw.Write(excErr)
	bw.WriteString(`,"execution_count":` + strconv.Itoa(e.ExecutionCount))
	if e.Truncated {
		bw.WriteString(`,"truncated":true`)
	}
	bw.WriteString("}\n")
	_ = bw.Flush() // a client that went away is not an error of the execution
	return nil
}
