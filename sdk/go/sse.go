package warren

import (
	"bufio"
	"bytes"
	"io"
)

// sseEvent is one Server-Sent Event: its name ("message" when unnamed) and data.
type sseEvent struct {
	name string
	data []byte
}

// sseReader parses a text/event-stream. Comments (keep-alives) and fields other than
// event and data are skipped; an event without data is not dispatched.
type sseReader struct {
	r *bufio.Reader
}

// maxSSELine bounds one line; a code result's image arrives as one data line.
const maxSSELine = 64 << 20

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// readLine returns the next line without its end (\n, \r\n or \r... the server sends
// \n), or io.EOF.
func (s *sseReader) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxSSELine {
			return nil, bufio.ErrTooLong
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				return bytes.TrimRight(line, "\r\n"), nil
			}
			return nil, err
		}
		return bytes.TrimRight(line, "\r\n"), nil
	}
}

// next returns the next event, or io.EOF at the end of the stream. A stream that ends
// inside an event drops that event (it was not terminated by a blank line).
func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if hasData {
				if ev.name == "" {
					ev.name = "message"
				}
				return ev, nil
			}
			ev = sseEvent{}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.name = string(value)
		case "data":
			if hasData {
				ev.data = append(ev.data, '\n')
			}
			ev.data = append(ev.data, value...)
			hasData = true
		}
	}
}
