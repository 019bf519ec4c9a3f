package node

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTrimConsoleLog(t *testing.T) {
	// On the test machines t.TempDir is on ext4, where the head is collapsed in place;
	// /dev/shm (tmpfs) cannot collapse, and the file starts over.
	for _, dir := range []string{t.TempDir(), shmDir(t)} {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, "console.log")
		line := bytes.Repeat([]byte("x"), 99)
		var b bytes.Buffer
		for i := 0; b.Len() < 3<<20; i++ {
			b.Write(line)
			b.WriteString("\n")
		}
		b.WriteString("newest line\n")
		if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		cut, err := trimConsoleLog(p, 1<<20)
		if err != nil || cut == 0 {
			t.Fatalf("%s: cut %d, %v", dir, cut, err)
		}
		got, _ := os.ReadFile(p)
		if len(got) > 1<<20 {
			t.Errorf("%s: %d bytes left, bound 1 MiB", dir, len(got))
		}
		if !strings.Contains(string(got), "oldest") {
			t.Errorf("%s: no note of the trim", dir)
		}
		if cut < int64(b.Len()) && !strings.Contains(string(got), "newest line") {
			t.Errorf("%s: the newest part was not kept", dir)
		}
		if again, _ := trimConsoleLog(p, 1<<20); again != 0 {
			t.Errorf("%s: a log under the bound was cut by %d", dir, again)
		}
	}
}

func TestTrimConsoleLogs(t *testing.T) {
	dir := t.TempDir()
	n := &Node{cfg: Config{Dir: dir}, log: slog.New(slog.DiscardHandler)}
	for _, id := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(dir, id), 0o700)
	}
	os.WriteFile(filepath.Join(dir, "a", "console.log"), bytes.Repeat([]byte("y\n"), 1<<20), 0o600)
	os.WriteFile(filepath.Join(dir, "b", "console.log"), []byte("small\n"), 0o600)
	if k := n.TrimConsoleLogs(256 << 10); k != 1 {
		t.Errorf("trimmed %d logs, want 1", k)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "b", "console.log")); string(b) != "small\n" {
		t.Errorf("a small log was changed: %q", b)
	}
}

func shmDir(t *testing.T) string {
	d, err := os.MkdirTemp("/dev/shm", "warren-test-")
	if err != nil {
		return ""
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
