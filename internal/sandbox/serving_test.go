package sandbox

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/agentclient"
)

// growing returns its parts one Read at a time, io.EOF between them (as a console log
// that the sandbox has not written more of yet), then err for ever.
type growing struct {
	parts [][]byte
	eofs  int // io.EOFs left before the next part
	err   error
}

func (g *growing) Read(p []byte) (int, error) {
	if g.eofs > 0 {
		g.eofs--
		return 0, io.EOF
	}
	if len(g.parts) == 0 {
		return 0, g.err
	}
	n := copy(p, g.parts[0])
	if n == len(g.parts[0]) {
		g.parts, g.eofs = g.parts[1:], 2
	} else {
		g.parts[0] = g.parts[0][n:]
	}
	return n, nil
}

func TestWatchFor(t *testing.T) {
	mark := []byte(`"msg":"serving"`)
	line := []byte(`{"time":"t","level":"INFO","msg":"serving","addr":"[::]:49983"}` + "\n")
	before := []byte(`{"time":"t","level":"INFO","msg":"processes get RLIMIT_NPROC"}` + "\n")
	split := func(b []byte, at int) [][]byte { return [][]byte{b[:at], b[at:]} }
	bytewise := func(b []byte) [][]byte {
		var out [][]byte
		for i := range b {
			out = append(out, b[i:i+1])
		}
		return out
	}
	cases := []struct {
		name  string
		parts [][]byte
		err   error
		limit int
		want  bool
	}{
		{"whole line", [][]byte{before, line}, io.EOF, 1 << 10, true},
		{"straddles two reads", split(append(append([]byte{}, before...), line...), len(before)+30), io.EOF, 1 << 10, true},
		{"a byte per read", bytewise(line), io.EOF, 1 << 10, true},
		{"never written", [][]byte{before}, io.EOF, 1 << 10, false},
		{"past the bound", [][]byte{bytes.Repeat([]byte("x"), 100), line}, io.EOF, 100, false},
		{"ends at the bound", [][]byte{bytes.Repeat([]byte("x"), 100-len(line)), line}, io.EOF, 100, true},
		{"read error", [][]byte{before}, errors.New("disk gone"), 1 << 10, false},
		{"a mark cut short", [][]byte{mark[:len(mark)-1], []byte("\n"), mark[1:]}, io.EOF, 1 << 10, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A watch that would go on for ever is ended by the context.
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			r := &growing{parts: c.parts, err: c.err}
			if got := watchFor(ctx, r, mark, c.limit, time.Millisecond); got != c.want {
				t.Errorf("watchFor = %v, want %v", got, c.want)
			}
		})
	}
}

// TestServingHint watches a real console log file that the "agent" writes its lines
// to after the watch began.
func TestServingHint(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "console.log")
	if err := os.WriteFile(path, []byte(`{"msg":"starting"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	node := &fakeNode{openLog: func(id string) (io.ReadCloser, error) {
		if id != "sb1" {
			return nil, os.ErrNotExist
		}
		return os.Open(path)
	}}
	s := &launching{&Service{cfg: Config{Node: node}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if h := s.servingHint(ctx, "other"); h != nil {
		t.Errorf("a log that cannot be opened gave a hint channel")
	}
	hint := s.servingHint(ctx, "sb1")
	select {
	case <-hint:
		t.Fatal("hint before the agent said it serves")
	case <-time.After(20 * time.Millisecond):
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append(append([]byte(`{"level":"INFO",`), agentclient.ServingMark...), "}\n"...)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hint:
	case <-time.After(10 * time.Second):
		t.Fatal("no hint 10 s after the serving line was written")
	}
}

func TestWaitServing(t *testing.T) {
	closed := make(chan struct{})
	close(closed)
	errWait := errors.New("agent did not become ready")
	cases := []struct {
		name       string
		hint       <-chan struct{}
		healthOKAt int // the Health call that answers (1-based); 0: none does
		waitErr    error
		want       error
		healths    int32
		waits      int32
	}{
		// No console log to watch: as before, WaitReady alone.
		{"no hint", nil, 0, nil, nil, 0, 1},
		{"no hint, not ready", nil, 0, errWait, errWait, 0, 1},
		// The mark is in the log: no slow knocking, WaitReady at once.
		{"hinted", closed, 0, nil, nil, 0, 1},
		// The mark never shows (a lost line): the slow knock finds the agent.
		{"hint lost", make(chan struct{}), 2, nil, nil, 2, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var healths, waits atomic.Int32
			a := &fakeAgent{
				health: func(ctx context.Context) error {
					if n := healths.Add(1); c.healthOKAt > 0 && int(n) >= c.healthOKAt {
						return nil
					}
					return errors.New("connection refused")
				},
				waitReady: func(ctx context.Context) error { waits.Add(1); return c.waitErr },
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := waitServing(ctx, a, c.hint); !errors.Is(err, c.want) {
				t.Errorf("waitServing = %v, want %v", err, c.want)
			}
			if healths.Load() != c.healths || waits.Load() != c.waits {
				t.Errorf("%d Health and %d WaitReady calls, want %d and %d", healths.Load(), waits.Load(), c.healths, c.waits)
			}
		})
	}
	// A context that ends while no hint came: WaitReady says why.
	t.Run("context ends", func(t *testing.T) {
		a := &fakeAgent{
			health:    func(ctx context.Context) error { return errors.New("connection refused") },
			waitReady: func(ctx context.Context) error { return ctx.Err() },
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := waitServing(ctx, a, make(chan struct{})); !errors.Is(err, context.Canceled) {
			t.Errorf("waitServing = %v, want context.Canceled", err)
		}
	})
}
