package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/envdpb/filesystem"
)

// maxPolledEvents bounds the events a polling watcher buffers between
// GetWatcherEvents calls; the oldest are dropped beyond it.
const maxPolledEvents = 10000

// dirWatcher turns fsnotify events below root into FilesystemEvents with names
// relative to root.
type dirWatcher struct {
	root         string
	recursive    bool
	includeEntry bool
	names        *idNames

	fw   *fsnotify.Watcher
	out  chan *filesystem.FilesystemEvent
	done chan struct{}
	once sync.Once
}

// checkWatchable validates a WatchDir/CreateWatcher request path.
func checkWatchable(path string, allowNetwork bool) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fsError(err, path)
	}
	if !fi.IsDir() {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("path '%s' is not a directory", path))
	}
	if !allowNetwork {
		var st unix.Statfs_t
		if err := unix.Statfs(path, &st); err == nil && isNetworkFS(st.Type) {
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("'%s' is on a network mount; watching it needs allowNetworkMounts", path))
		}
	}
	return nil
}

func isNetworkFS(magic int64) bool {
	switch uint32(magic) {
	case 0x6969, 0xFF534D42, 0x517B, 0xFE534D42, 0x65735546: // NFS, CIFS, SMB, SMB2, FUSE
		return true
	}
	return false
}

func newDirWatcher(root string, recursive, includeEntry bool, names *idNames) (*dirWatcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("creating watcher: %w", err)
	}
	w := &dirWatcher{
		root: root, recursive: recursive, includeEntry: includeEntry, names: names,
		fw: fw, out: make(chan *filesystem.FilesystemEvent, 256), done: make(chan struct{}),
	}
	if err := fw.Add(root); err != nil {
		_ = fw.Close()
		return nil, fsError(err, root)
	}
	if recursive {
		w.addTree(root, false)
	}
	go w.loop()
	return w, nil
}

// addTree watches every directory below dir (not following symlinks). With
// announce set it also reports what it finds as created: entries made in a new
// directory before its watch was added would otherwise go unnoticed.
func (w *dirWatcher) addTree(dir string, announce bool) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		if announce {
			w.emit(p, filesystem.EventType_EVENT_TYPE_CREATE)
		}
		if d.IsDir() {
			if err := w.fw.Add(p); err != nil {
				return fs.SkipDir
			}
		}
		return nil
	})
}

func (w *dirWatcher) loop() {
	defer close(w.out)
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			w.handle(ev)
		case _, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			// Overflow or a vanished directory: nothing to tell the client.
		}
	}
}

var opTypes = []struct {
	op  fsnotify.Op
	typ filesystem.EventType
}{
	{fsnotify.Create, filesystem.EventType_EVENT_TYPE_CREATE},
	{fsnotify.Write, filesystem.EventType_EVENT_TYPE_WRITE},
	{fsnotify.Remove, filesystem.EventType_EVENT_TYPE_REMOVE},
	{fsnotify.Rename, filesystem.EventType_EVENT_TYPE_RENAME},
	{fsnotify.Chmod, filesystem.EventType_EVENT_TYPE_CHMOD},
}

// handle emits one message per op of ev, and extends a recursive watch to new
// directories.
func (w *dirWatcher) handle(ev fsnotify.Event) {
	if filepath.Clean(ev.Name) == w.root {
		return // the watched directory itself
	}
	for _, ot := range opTypes {
		if ev.Has(ot.op) {
			w.emit(ev.Name, ot.typ)
		}
	}
	if w.recursive && ev.Has(fsnotify.Create) {
		if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
			if err := w.fw.Add(ev.Name); err == nil {
				w.addTree(ev.Name, true)
			}
		}
	}
}

func (w *dirWatcher) emit(path string, typ filesystem.EventType) {
	rel, err := filepath.Rel(w.root, path)
	if err != nil {
		return
	}
	fe := &filesystem.FilesystemEvent{Name: rel, Type: typ}
	if w.includeEntry && (typ == filesystem.EventType_EVENT_TYPE_CREATE ||
		typ == filesystem.EventType_EVENT_TYPE_WRITE || typ == filesystem.EventType_EVENT_TYPE_CHMOD) {
		if e, err := entryInfo(path, w.names); err == nil {
			fe.Entry = e
		}
	}
	select {
	case w.out <- fe:
	case <-w.done:
	}
}

func (w *dirWatcher) close() {
	w.once.Do(func() {
		close(w.done)
		_ = w.fw.Close()
	})
}

// WatchDir streams changes below a directory: a start message first, then one
// message per change, keepalives when idle. It ends at the stream deadline, when
// the client goes away or when the agent shuts down.
func (s *filesystemService) WatchDir(ctx context.Context, req *connect.Request[filesystem.WatchDirRequest], stream *connect.ServerStream[filesystem.WatchDirResponse]) error {
	u, err := s.a.rpcUser(req.Header())
	if err != nil {
		return err
	}
	path := s.a.resolveFor(req.Msg.GetPath(), u)
	if err := checkWatchable(path, req.Msg.GetAllowNetworkMounts()); err != nil {
		return err
	}
	w, err := newDirWatcher(path, req.Msg.GetRecursive(), req.Msg.GetIncludeEntry(), newIDNames(s.a.users))
	if err != nil {
		return err
	}
	defer w.close()
	if err := stream.Send(&filesystem.WatchDirResponse{Event: &filesystem.WatchDirResponse_Start{Start: &filesystem.WatchDirResponse_StartEvent{}}}); err != nil {
		return err
	}
	interval := keepaliveInterval(req.Header())
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		var msg *filesystem.WatchDirResponse
		select {
		case fe, ok := <-w.out:
			if !ok {
				return connect.NewError(connect.CodeInternal, errors.New("watcher stopped"))
			}
			msg = &filesystem.WatchDirResponse{Event: &filesystem.WatchDirResponse_Filesystem{Filesystem: fe}}
		case <-timer.C:
			msg = &filesystem.WatchDirResponse{Event: &filesystem.WatchDirResponse_Keepalive{Keepalive: &filesystem.WatchDirResponse_KeepAlive{}}}
		case <-ctx.Done():
			return procError(ctx.Err())
		case <-s.a.ctx.Done():
			return connect.NewError(connect.CodeUnavailable, errors.New("the agent is shutting down"))
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
		timer.Reset(interval)
	}
}

// pollWatcher buffers a dirWatcher's events for GetWatcherEvents.
type pollWatcher struct {
	w      *dirWatcher
	mu     sync.Mutex
	events []*filesystem.FilesystemEvent
}

func (p *pollWatcher) collect() {
	for fe := range p.w.out {
		p.mu.Lock()
		if len(p.events) >= maxPolledEvents {
			p.events = p.events[1:]
		}
		p.events = append(p.events, fe)
		p.mu.Unlock()
	}
}

func (p *pollWatcher) take() []*filesystem.FilesystemEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	ev := p.events
	p.events = nil
	return ev
}

// watcherRegistry holds the polling watchers by id.
type watcherRegistry struct {
	mu sync.Mutex
	m  map[string]*pollWatcher
}

func newWatcherRegistry() *watcherRegistry { return &watcherRegistry{m: map[string]*pollWatcher{}} }

func (r *watcherRegistry) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, p := range r.m {
		p.w.close()
		delete(r.m, id)
	}
}

// CreateWatcher starts a polling watcher (for the synchronous Python SDK).
func (s *filesystemService) CreateWatcher(ctx context.Context, req *connect.Request[filesystem.CreateWatcherRequest]) (*connect.Response[filesystem.CreateWatcherResponse], error) {
	u, err := s.a.rpcUser(req.Header())
	if err != nil {
		return nil, err
	}
	path := s.a.resolveFor(req.Msg.GetPath(), u)
	if err := checkWatchable(path, req.Msg.GetAllowNetworkMounts()); err != nil {
		return nil, err
	}
	w, err := newDirWatcher(path, req.Msg.GetRecursive(), req.Msg.GetIncludeEntry(), newIDNames(s.a.users))
	if err != nil {
		return nil, err
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	p := &pollWatcher{w: w}
	go p.collect()
	r := s.a.watchers
	r.mu.Lock()
	r.m[id] = p
	r.mu.Unlock()
	return connect.NewResponse(&filesystem.CreateWatcherResponse{WatcherId: id}), nil
}

func (s *filesystemService) pollWatcher(id string) (*pollWatcher, error) {
	r := s.a.watchers
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.m[id]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("watcher '%s' not found", id))
	}
	return p, nil
}

// GetWatcherEvents returns and clears the events gathered since the last call.
func (s *filesystemService) GetWatcherEvents(ctx context.Context, req *connect.Request[filesystem.GetWatcherEventsRequest]) (*connect.Response[filesystem.GetWatcherEventsResponse], error) {
	if _, err := s.a.rpcUser(req.Header()); err != nil {
		return nil, err
	}
	p, err := s.pollWatcher(req.Msg.GetWatcherId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&filesystem.GetWatcherEventsResponse{Events: p.take()}), nil
}

// RemoveWatcher stops a polling watcher.
func (s *filesystemService) RemoveWatcher(ctx context.Context, req *connect.Request[filesystem.RemoveWatcherRequest]) (*connect.Response[filesystem.RemoveWatcherResponse], error) {
	if _, err := s.a.rpcUser(req.Header()); err != nil {
		return nil, err
	}
	r := s.a.watchers
	r.mu.Lock()
	p, ok := r.m[req.Msg.GetWatcherId()]
	delete(r.m, req.Msg.GetWatcherId())
	r.mu.Unlock()
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("watcher '%s' not found", req.Msg.GetWatcherId()))
	}
	p.w.close()
	return connect.NewResponse(&filesystem.RemoveWatcherResponse{}), nil
}
