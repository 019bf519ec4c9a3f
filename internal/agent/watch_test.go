package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/envdpb/filesystem"
	"github.com/warren-sh/warren/internal/envdpb/filesystem/filesystemconnect"
	"github.com/warren-sh/warren/internal/envdpb/process/processconnect"
)

// watchStream reads a WatchDir stream in the background.
type watchStream struct {
	msgs   chan *filesystem.WatchDirResponse
	errc   chan error
	cancel context.CancelFunc
}

func watch(t *testing.T, fc filesystemconnect.FilesystemClient, ctx context.Context, req *connect.Request[filesystem.WatchDirRequest]) (*watchStream, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	s, err := fc.WatchDir(ctx, req)
	if err != nil {
		cancel()
		return nil, err
	}
	ws := &watchStream{msgs: make(chan *filesystem.WatchDirResponse, 1024), errc: make(chan error, 1), cancel: cancel}
	go func() {
		defer close(ws.msgs)
		for s.Receive() {
			ws.msgs <- s.Msg()
		}
		ws.errc <- s.Err()
		_ = s.Close()
	}()
	select {
	case m, ok := <-ws.msgs:
		if !ok {
			cancel()
			return nil, <-ws.errc
		}
		if m.GetStart() == nil {
			cancel()
			return nil, fmt.Errorf("first message %v, want start", m)
		}
	case <-time.After(5 * time.Second):
		cancel()
		return nil, fmt.Errorf("no start message")
	}
	return ws, nil
}

type fsEvent struct {
	name string
	typ  filesystem.EventType
}

// expect reads until every wanted event was seen, returning all events read.
func (ws *watchStream) expect(t *testing.T, want ...fsEvent) []*filesystem.FilesystemEvent {
	t.Helper()
	var got []*filesystem.FilesystemEvent
	missing := slices.Clone(want)
	deadline := time.After(5 * time.Second)
	for len(missing) > 0 {
		select {
		case m, ok := <-ws.msgs:
			if !ok {
				t.Fatalf("stream ended (%v) still missing %v", <-ws.errc, missing)
			}
			if fe := m.GetFilesystem(); fe != nil {
				got = append(got, fe)
				missing = slices.DeleteFunc(missing, func(w fsEvent) bool { return w.name == fe.GetName() && w.typ == fe.GetType() })
			}
		case <-deadline:
			t.Fatalf("missing events %v; got %v", missing, got)
		}
	}
	return got
}

func TestWatchDir(t *testing.T) {
	e := newTestEnv(t, Config{})
	const (
		create = filesystem.EventType_EVENT_TYPE_CREATE
		write  = filesystem.EventType_EVENT_TYPE_WRITE
		remove = filesystem.EventType_EVENT_TYPE_REMOVE
		rename = filesystem.EventType_EVENT_TYPE_RENAME
		chmod  = filesystem.EventType_EVENT_TYPE_CHMOD
	)
	e.codecs(t, func(t *testing.T, _ processconnect.ProcessClient, fc filesystemconnect.FilesystemClient) {
		t.Run("flat", func(t *testing.T) {
			dir := filepath.Join(e.dir, "flat"+t.Name()[len("TestWatchDir/"):len("TestWatchDir/")+4])
			if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			ws, err := watch(t, fc, context.Background(), connect.NewRequest(&filesystem.WatchDirRequest{Path: dir}))
			if err != nil {
				t.Fatal(err)
			}
			defer ws.cancel()
			f := filepath.Join(dir, "a.txt")
			mustWrite(t, filepath.Join(dir, "sub", "ignored.txt"), "x") // not recursive: unseen
			mustWrite(t, f, "hello")
			_ = os.Chmod(f, 0o600)
			_ = os.Rename(f, filepath.Join(dir, "b.txt"))
			_ = os.Remove(filepath.Join(dir, "b.txt"))
			got := ws.expect(t, fsEvent{"a.txt", create}, fsEvent{"a.txt", write}, fsEvent{"a.txt", chmod},
				fsEvent{"a.txt", rename}, fsEvent{"b.txt", create}, fsEvent{"b.txt", remove})
			for _, fe := range got {
				if fe.GetName() == "sub/ignored.txt" {
					t.Errorf("non-recursive watch reported %v", fe)
				}
				if fe.Entry != nil {
					t.Errorf("entry sent without includeEntry: %v", fe)
				}
			}
		})
		t.Run("recursive with entries", func(t *testing.T) {
			dir := filepath.Join(e.dir, "rec"+t.Name()[len("TestWatchDir/"):len("TestWatchDir/")+4])
			if err := os.MkdirAll(filepath.Join(dir, "old"), 0o755); err != nil {
				t.Fatal(err)
			}
			ws, err := watch(t, fc, context.Background(), connect.NewRequest(&filesystem.WatchDirRequest{Path: dir, Recursive: true, IncludeEntry: true}))
			if err != nil {
				t.Fatal(err)
			}
			defer ws.cancel()
			mustWrite(t, filepath.Join(dir, "old", "x.txt"), "x")
			if err := os.MkdirAll(filepath.Join(dir, "new", "deeper"), 0o755); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			mustWrite(t, filepath.Join(dir, "new", "deeper", "y.txt"), "y")
			got := ws.expect(t, fsEvent{"old/x.txt", create}, fsEvent{"new", create},
				fsEvent{"new/deeper", create}, fsEvent{"new/deeper/y.txt", create}, fsEvent{"new/deeper/y.txt", write})
			for _, fe := range got {
				if fe.GetType() == create && fe.Entry != nil && fe.GetEntry().GetPath() != filepath.Join(dir, fe.GetName()) {
					t.Errorf("entry path %q for %q", fe.GetEntry().GetPath(), fe.GetName())
				}
				if fe.GetName() == "old/x.txt" && fe.GetType() == create && fe.GetEntry().GetType() != filesystem.FileType_FILE_TYPE_FILE {
					t.Errorf("create event without file entry: %v", fe)
				}
			}
		})
	})
	t.Run("keepalive and deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		defer cancel()
		req := connect.NewRequest(&filesystem.WatchDirRequest{Path: e.dir})
		req.Header().Set("Keepalive-Ping-Interval", "1")
		ws, err := watch(t, e.fsJSON, ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		keepalives := 0
		for m := range ws.msgs {
			if m.GetKeepalive() != nil {
				keepalives++
			}
		}
		if keepalives < 1 {
			t.Errorf("no keepalive in 2.5s with a 1s interval")
		}
		wantCode(t, <-ws.errc, connect.CodeDeadlineExceeded)
	})
	t.Run("errors", func(t *testing.T) {
		mustWrite(t, filepath.Join(e.dir, "file"), "")
		for path, code := range map[string]connect.Code{
			filepath.Join(e.dir, "missing"): connect.CodeNotFound,
			filepath.Join(e.dir, "file"):    connect.CodeInvalidArgument,
		} {
			_, err := watch(t, e.fsJSON, context.Background(), connect.NewRequest(&filesystem.WatchDirRequest{Path: path}))
			wantCode(t, err, code)
			_, err = e.fs.CreateWatcher(context.Background(), connect.NewRequest(&filesystem.CreateWatcherRequest{Path: path}))
			wantCode(t, err, code)
		}
	})
}

func TestPollingWatcher(t *testing.T) {
	e := newTestEnv(t, Config{})
	ctx := context.Background()
	e.codecs(t, func(t *testing.T, _ processconnect.ProcessClient, fc filesystemconnect.FilesystemClient) {
		dir := filepath.Join(e.dir, t.Name()[len("TestPollingWatcher/"):])
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cw, err := fc.CreateWatcher(ctx, connect.NewRequest(&filesystem.CreateWatcherRequest{Path: dir, Recursive: true}))
		if err != nil {
			t.Fatal(err)
		}
		id := cw.Msg.GetWatcherId()
		mustWrite(t, filepath.Join(dir, "p.txt"), "p")
		var names []string
		deadline := time.Now().Add(5 * time.Second)
		for !slices.Contains(names, "p.txt") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			ev, err := fc.GetWatcherEvents(ctx, connect.NewRequest(&filesystem.GetWatcherEventsRequest{WatcherId: id}))
			if err != nil {
				t.Fatal(err)
			}
			for _, fe := range ev.Msg.GetEvents() {
				names = append(names, fe.GetName())
			}
		}
		if !slices.Contains(names, "p.txt") {
			t.Fatalf("events %v, want p.txt", names)
		}
		// Events are handed out once.
		time.Sleep(100 * time.Millisecond)
		ev, _ := fc.GetWatcherEvents(ctx, connect.NewRequest(&filesystem.GetWatcherEventsRequest{WatcherId: id}))
		if len(ev.Msg.GetEvents()) != 0 {
			t.Fatalf("events repeated: %v", ev.Msg.GetEvents())
		}
		if _, err := fc.RemoveWatcher(ctx, connect.NewRequest(&filesystem.RemoveWatcherRequest{WatcherId: id})); err != nil {
			t.Fatal(err)
		}
		_, err = fc.GetWatcherEvents(ctx, connect.NewRequest(&filesystem.GetWatcherEventsRequest{WatcherId: id}))
		wantCode(t, err, connect.CodeNotFound)
		_, err = fc.RemoveWatcher(ctx, connect.NewRequest(&filesystem.RemoveWatcherRequest{WatcherId: id}))
		wantCode(t, err, connect.CodeNotFound)
	})
}
