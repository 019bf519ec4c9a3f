package sandbox

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestLogTail: lines are delivered once each, in order, as they are completed; a file
// that appears late is picked up; a line without its newline waits for it.
func TestLogTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	tail := &logTail{open: func() (io.ReadCloser, error) { return os.Open(path) }}
	defer tail.close()
	var got []string
	emit := func(b []byte) error { got = append(got, string(b)); return nil }

	steps := []struct {
		appendText string
		want       []string // all lines seen so far
	}{
		{"", nil}, // no file yet
		{"one\ntw", []string{"one"}},
		{"o\n", []string{"one", "two"}},
		{"", []string{"one", "two"}},
		{"three\nfour\n\nfive", []string{"one", "two", "three", "four", ""}},
		{"\n", []string{"one", "two", "three", "four", "", "five"}},
	}
	for i, st := range steps {
		if i > 0 {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(st.appendText)
			f.Close()
		}
		if err := tail.readLines(emit); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, st.want) {
			t.Fatalf("step %d: lines %q, want %q", i, got, st.want)
		}
	}

	// The open file is still read after it is removed (the sandbox's directory goes
	// away when it ends).
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o600)
	f.WriteString("last\n")
	os.Remove(path)
	f.Close()
	if err := tail.readLines(emit); err != nil {
		t.Fatal(err)
	}
	if got[len(got)-1] != "last" {
		t.Errorf("after removal: lines %q, want last = \"last\"", got)
	}

	// emit's error stops reading and is returned.
	boom := errors.New("boom")
	path2 := filepath.Join(t.TempDir(), "b.log")
	t2 := &logTail{open: func() (io.ReadCloser, error) { return os.Open(path2) }}
	defer t2.close()
	os.WriteFile(path2, []byte(strings.Repeat("x\n", 3)), 0o600)
	calls := 0
	err := t2.readLines(func([]byte) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Errorf("readLines = %v after %d calls; want boom after 1", err, calls)
	}
}

// TestParseLogLineForFollow: the agent's JSON lines become entries with their fields;
// other console output becomes an info entry.
func TestParseLogLineForFollow(t *testing.T) {
	e, ok := parseLogLine([]byte(`{"time":"2025-01-02T03:04:05.5Z","level":"WARN","msg":"process started","pid":12,"cmd":"/bin/bash"}`))
	if !ok || e.Level != "warn" || e.Message != "process started" || e.Fields["pid"] != "12" || e.Fields["cmd"] != "/bin/bash" ||
		e.Timestamp.Format("15:04:05.0") != "03:04:05.5" {
		t.Errorf("JSON line = %+v, %v", e, ok)
	}
	e, ok = parseLogLine([]byte("runsc: booting"))
	if !ok || e.Level != "info" || e.Message != "runsc: booting" || e.Timestamp.IsZero() {
		t.Errorf("plain line = %+v, %v", e, ok)
	}
	if _, ok := parseLogLine([]byte("   ")); ok {
		t.Error("blank line parsed")
	}
}
