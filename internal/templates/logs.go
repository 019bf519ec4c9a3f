package templates

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// flushEvery is how often a running build's log lines are written to the store.
const flushEvery = 250 * time.Millisecond

// logWriter stores a build's log lines in batches, bounded: the first 80% of
// MaxLogLines as they come, then the latest lines in a ring, written with a line saying
// how many were left out when the build ends.
type logWriter struct {
	s     *Service
	id    string
	head  int // lines stored as they come
	ring  int // latest lines kept after them
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	next  int // number of the next line to store
	queue []domain.BuildLogLine
	tail  []domain.BuildLogLine
	lost  int
}

func newLogWriter(s *Service, id string) *logWriter {
	head := s.cfg.MaxLogLines * 8 / 10
	w := &logWriter{s: s, id: id, head: head, ring: max(1, s.cfg.MaxLogLines-head-1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *logWriter) loop() {
	defer close(w.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			w.flush()
		case <-w.stop:
			return
		}
	}
}

// add takes one line (the builder's logs callback): its level is info, warn or
// error, its message at most MaxLineBytes.
func (w *logWriter) add(l domain.BuildLogLine) {
	if l.Time.IsZero() {
		l.Time = w.s.cfg.Now()
	}
	l.Time = l.Time.UTC()
	switch l.Level {
	case "info", "warn", "error":
	case "warning":
		l.Level = "warn"
	default:
		l.Level = "info"
	}
	if max := w.s.cfg.MaxLineBytes; len(l.Message) > max {
		l.Message = strings.ToValidUTF8(l.Message[:max], "") + " …"
	} else {
		l.Message = strings.ToValidUTF8(l.Message, "\uFFFD")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.next+len(w.queue) < w.head {
		w.queue = append(w.queue, l)
		return
	}
	if len(w.tail) == w.ring {
		w.tail = w.tail[1:]
		w.lost++
	}
	w.tail = append(w.tail, l)
}

func (w *logWriter) info(format string, args ...any) {
	w.add(domain.BuildLogLine{Level: "info", Message: fmt.Sprintf(format, args...)})
}

// flush writes the queued lines.
func (w *logWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
}

// flushLocked writes the queue. Preconditions: mu held.
func (w *logWriter) flushLocked() {
	if len(w.queue) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.s.ctx), 10*time.Second)
	defer cancel()
	if err := w.s.cfg.Store.AppendBuildLogs(ctx, w.id, w.next, w.queue); err != nil {
		w.s.log.WarnContext(ctx, "storing build log lines", logkey.BuildID, w.id, logkey.Err, err)
		return // kept queued: the next flush tries again
	}
	w.next += len(w.queue)
	w.queue = w.queue[:0]
	w.s.bus.notify(w.id)
}

// close writes everything left, the latest lines after the line saying how many were
// left out. It may be called more than once.
func (w *logWriter) close() {
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.lost > 0 {
			w.queue = append(w.queue, domain.BuildLogLine{Time: w.s.cfg.Now().UTC(), Level: "warn",
				Message: fmt.Sprintf("… %d log lines left out (a build keeps %d lines: its first and its last) …", w.lost, w.s.cfg.MaxLogLines)})
		}
		w.queue = append(w.queue, w.tail...)
		w.tail = nil
		w.flushLocked()
	})
}

// bus wakes the followers of a build's log on this server.
type bus struct {
	mu      sync.Mutex
	waiters map[string]chan struct{} // build id → closed when lines arrive or the build ends
}

// wait returns a channel closed when the build's next lines or its end are stored.
func (b *bus) wait(id string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.waiters == nil {
		b.waiters = map[string]chan struct{}{}
	}
	ch, ok := b.waiters[id]
	if !ok {
		ch = make(chan struct{})
		b.waiters[id] = ch
	}
	return ch
}

func (b *bus) notify(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ch, ok := b.waiters[id]; ok {
		close(ch)
		delete(b.waiters, id)
	}
}

// logPage is how many lines one store read returns.
const logPage = 500

// pollEvery bounds how long a follower waits before it looks again: the build may run
// on another server sharing the database.
const pollEvery = time.Second

// BuildLogs implements domain.TemplateService.
func (s *Service) BuildLogs(ctx context.Context, p domain.Principal, templateID, buildID string, offset int, follow bool,
	each func(domain.BuildLogLine) error) error {
	if offset < 0 {
		return domain.Invalid("offset", "offset must not be negative")
	}
	if _, err := s.GetBuild(ctx, p, templateID, buildID); err != nil {
		return err
	}
	for {
		wait := s.bus.wait(buildID)
		b, err := s.cfg.Store.GetBuild(ctx, p.TeamID, templateID, buildID)
		if err != nil {
			return err
		}
		for {
			lines, err := s.cfg.Store.ListBuildLogs(ctx, buildID, offset, logPage)
			if err != nil {
				return err
			}
			for _, l := range lines {
				if err := each(l); err != nil {
					return err
				}
			}
			offset += len(lines)
			if len(lines) < logPage {
				break
			}
		}
		if !follow || b.State == domain.BuildReady || b.State == domain.BuildError {
			return nil
		}
		t := time.NewTimer(pollEvery)
		select {
		case <-wait:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}
