package warren

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func readAllEvents(r io.Reader) ([]string, error) {
	s := newSSEReader(r)
	var out []string
	for {
		ev, err := s.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, fmt.Sprintf("%s=%q", ev.name, ev.data))
	}
}

func TestSSEParsing(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string
	}{
		{"named events", "event: a\ndata: 1\n\nevent: b\ndata: 2\n\n", []string{`a="1"`, `b="2"`}},
		{"unnamed is message", "data: x\n\n", []string{`message="x"`}},
		{"comments and unknown fields", ": keep-alive\n\nid: 4\nretry: 10\nevent: a\n: mid\ndata: y\n\n", []string{`a="y"`}},
		{"multi-line data", "event: a\ndata: l1\ndata: l2\n\n", []string{`a="l1\nl2"`}},
		{"no space after colon", "event:a\ndata:{\"k\":1}\n\n", []string{`a="{\"k\":1}"`}},
		{"CRLF", "event: a\r\ndata: z\r\n\r\n", []string{`a="z"`}},
		{"event without data", "event: a\n\nevent: b\ndata: 1\n\n", []string{`b="1"`}},
		{"empty data", "event: a\ndata:\n\n", []string{`a=""`}},
		{"unterminated last event dropped", "event: a\ndata: 1\n\nevent: b\ndata: 2", []string{`a="1"`}},
		{"name does not leak", "event: a\n\ndata: 3\n\n", []string{`message="3"`}},
	}
	for _, c := range cases {
		got, err := readAllEvents(strings.NewReader(c.in))
		if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v (%v), want %v", c.name, got, err, c.want)
		}
	}
}

func TestSSELongLines(t *testing.T) {
	big := strings.Repeat("A", 3<<20) // bigger than the reader's buffer
	got, err := readAllEvents(strings.NewReader("event: result\ndata: " + big + "\n\n"))
	if err != nil || len(got) != 1 || len(got[0]) != len(big)+len(`result=""`) {
		t.Errorf("long line: %d events, err %v", len(got), err)
	}
	_, err = readAllEvents(io.MultiReader(strings.NewReader("data: "), strings.NewReader(strings.Repeat("B", maxSSELine+10))))
	if !errors.Is(err, bufio.ErrTooLong) {
		t.Errorf("over-long line: %v", err)
	}
}
