package sandbox

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"github.com/warren-sh/warren/internal/agentclient"
)

// Waiting for a started agent. Knocking on its port every 2 ms while the sandbox boots
// (agentclient.Client.WaitReady) is not free: each refused connection is work for the
// sandbox's network stack while it is busiest. Measured through the server on the
// 2-core machine (11 creates per run, three alternating pairs of runs), the agent's
// "serving" line came 85-93 ms after runsc returned when the node waited for it in the
// console log, against 109-135 ms when it polled. With two servers side by side and
// creates alternating between them (2 x 30), the node's wait after runsc was 56 ms
// against 76 (p50, n=62). So a fresh sandbox's node watches the console log for
// agentclient.ServingMark (a file on the host: reading it costs the sandbox nothing),
// and knocks only every hintlessPoll until the mark shows, then as WaitReady does.
const (
	// hintEvery is how often the console log is read for the mark.
	hintEvery = time.Millisecond
	// hintlessPoll is how often the agent is asked while its log shows no mark: a
	// missing or lost line costs at most this much.
	hintlessPoll = 100 * time.Millisecond
	// maxHintBytes bounds the console log read for the mark: the agent prints a few
	// lines before it; a template's start command may print more.
	maxHintBytes = 64 << 10
)

// servingHint returns a channel closed once the console log of sandbox id shows
// agentclient.ServingMark. It is nil when the log cannot be opened, and never closed
// when the mark is not within the log's first maxHintBytes. The watch ends with ctx.
func (s *launching) servingHint(ctx context.Context, id string) <-chan struct{} {
	r, err := s.cfg.Node.OpenLog(id)
	if err != nil {
		return nil
	}
	ch := make(chan struct{})
	go func() {
		defer r.Close()
		if watchFor(ctx, r, agentclient.ServingMark, maxHintBytes, hintEvery) {
			close(ch)
		}
	}()
	return ch
}

// watchFor reads r as it grows (io.EOF: nothing new yet, look again after every),
// line by line as FollowLogs does (logTail), and reports whether a line holding mark
// showed within r's first limit bytes, before ctx ended.
func watchFor(ctx context.Context, r io.Reader, mark []byte, limit int, every time.Duration) bool {
	lr := &io.LimitedReader{R: r, N: int64(limit)}
	t := &logTail{open: func() (io.ReadCloser, error) { return io.NopCloser(lr), nil }}
	for {
		found := false
		err := t.readLines(func(line []byte) error {
			if bytes.Contains(line, mark) {
				found = true
				return errFound
			}
			return nil
		})
		switch {
		case found:
			return true
		case err != nil, lr.N <= 0:
			return false
		}
		timer := time.NewTimer(every)
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C:
		}
	}
}

// errFound ends a watchFor's read at the line it looked for.
var errFound = errors.New("found")

// waitServing waits until the fresh agent conn answers: every hintlessPoll until hint
// closes, then as conn.WaitReady. Without a hint (nil) it is conn.WaitReady.
func waitServing(ctx context.Context, conn lifecycleAgent, hint <-chan struct{}) error {
	if hint == nil {
		return conn.WaitReady(ctx)
	}
	t := time.NewTicker(hintlessPoll)
	defer t.Stop()
	for {
		select {
		case <-hint:
			return conn.WaitReady(ctx)
		case <-ctx.Done():
			return conn.WaitReady(ctx) // says why, in WaitReady's words
		case <-t.C:
			attempt, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			err := conn.Health(attempt)
			cancel()
			if err == nil {
				return nil
			}
		}
	}
}
