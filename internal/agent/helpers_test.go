package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/envdpb/filesystem/filesystemconnect"
	"github.com/warren-sh/warren/internal/envdpb/process"
	"github.com/warren-sh/warren/internal/envdpb/process/processconnect"
	"github.com/warren-sh/warren/internal/testenv"
)

// markerEnv is set in the sandbox-wide env of every test agent, so every process a
// test starts (and everything those start) carries it: checkNoLeaks finds leftovers
// by scanning /proc/*/environ for it.
const markerEnv = "WARREN_AGENT_TEST_MARKER"

// testEnv is one agent behind an httptest server, with clients for both codecs.
type testEnv struct {
	t      *testing.T
	a      *Agent
	url    string
	dir    string // a temporary directory, removed after the test
	marker string

	proc     processconnect.ProcessClient // binary protobuf
	procJSON processconnect.ProcessClient // Connect+JSON, like the JS SDK
	fs       filesystemconnect.FilesystemClient
	fsJSON   filesystemconnect.FilesystemClient
}

func requireRoot(t *testing.T) {
	t.Helper()
	testenv.NeedsRoot(t, "the agent switches users and chowns files")
}

// newTestEnv starts an agent for cfg. The cleanup shuts it down, checks that no
// process it started survives, and removes the temp dir.
func newTestEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	var b [8]byte
	_, _ = rand.Read(b[:])
	marker := hex.EncodeToString(b[:])
	if cfg.Env == nil {
		cfg.Env = map[string]string{}
	}
	cfg.Env[markerEnv] = marker
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(a)
	e := &testEnv{t: t, a: a, url: srv.URL, dir: dir, marker: marker}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.CloseClientConnections()
		srv.Close()
		checkNoLeaks(t, marker)
	})
	hc := srv.Client()
	e.proc = processconnect.NewProcessClient(hc, srv.URL)
	e.procJSON = processconnect.NewProcessClient(hc, srv.URL, connect.WithProtoJSON())
	e.fs = filesystemconnect.NewFilesystemClient(hc, srv.URL)
	e.fsJSON = filesystemconnect.NewFilesystemClient(hc, srv.URL, connect.WithProtoJSON())
	return e
}

// checkNoLeaks fails the test if a process carrying marker in its environment is
// still alive, or if the test binary has children left.
func checkNoLeaks(t *testing.T, marker string) {
	t.Helper()
	want := []byte(markerEnv + "=" + marker)
	var leaked []string
	deadline := time.Now().Add(3 * time.Second)
	for {
		leaked = leaked[:0]
		procs, _ := filepath.Glob("/proc/[0-9]*/environ")
		for _, p := range procs {
			env, err := os.ReadFile(p)
			if err == nil && bytes.Contains(env, want) {
				cmd, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
				leaked = append(leaked, fmt.Sprintf("%s (%q)", filepath.Base(filepath.Dir(p)), bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
			}
		}
		children := childrenOfSelf()
		if len(leaked) == 0 && len(children) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("leaked processes: %v; children of the test binary: %v", leaked, children)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func childrenOfSelf() []string {
	var out []string
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		out = append(out, strings.Fields(string(b))...)
	}
	return out
}

func basicAuth(user string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"))
}

// codecs runs fn once with the binary client and once with the JSON client.
func (e *testEnv) codecs(t *testing.T, fn func(t *testing.T, pc processconnect.ProcessClient, fc filesystemconnect.FilesystemClient)) {
	t.Run("proto", func(t *testing.T) { fn(t, e.proc, e.fs) })
	t.Run("json", func(t *testing.T) { fn(t, e.procJSON, e.fsJSON) })
}

// startReq builds a StartRequest for cmd args with stdin off (the SDK default).
func startReq(cmd string, args ...string) *connect.Request[process.StartRequest] {
	f := false
	return connect.NewRequest(&process.StartRequest{
		Process: &process.ProcessConfig{Cmd: cmd, Args: args},
		Stdin:   &f,
	})
}

func shReq(script string) *connect.Request[process.StartRequest] {
	return startReq("/bin/sh", "-c", script)
}

// procStream reads a Start or Connect stream in the background.
type procStream struct {
	t      *testing.T
	ch     chan *process.ProcessEvent
	errc   chan error
	cancel context.CancelFunc

	pid        uint32
	stdout     bytes.Buffer
	stderr     bytes.Buffer
	pty        bytes.Buffer
	order      []string // "stdout:<chunk>" / "stderr:<chunk>" in arrival order
	keepalives int
	end        *process.ProcessEvent_EndEvent
}

type eventStream[T any] interface {
	Receive() bool
	Msg() *T
	Err() error
	Close() error
}

func readStream[T any](t *testing.T, s eventStream[T], get func(*T) *process.ProcessEvent, cancel context.CancelFunc) *procStream {
	ps := &procStream{t: t, ch: make(chan *process.ProcessEvent, 1024), errc: make(chan error, 1), cancel: cancel}
	go func() {
		defer close(ps.ch)
		for s.Receive() {
			ps.ch <- get(s.Msg())
		}
		ps.errc <- s.Err()
		_ = s.Close()
	}()
	return ps
}

// start calls Start and waits for the start event.
func start(t *testing.T, pc processconnect.ProcessClient, req *connect.Request[process.StartRequest]) *procStream {
	t.Helper()
	ps, err := tryStart(t, pc, req)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return ps
}

// tryStart is start returning the stream error instead of failing.
func tryStart(t *testing.T, pc processconnect.ProcessClient, req *connect.Request[process.StartRequest]) (*procStream, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := pc.Start(ctx, req)
	if err != nil {
		cancel()
		return nil, err
	}
	ps := readStream(t, s, func(m *process.StartResponse) *process.ProcessEvent { return m.GetEvent() }, cancel)
	return ps, ps.expectStart()
}

// connectTo calls Connect and waits for the start event.
func connectTo(t *testing.T, pc processconnect.ProcessClient, sel *process.ProcessSelector) (*procStream, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := pc.Connect(ctx, connect.NewRequest(&process.ConnectRequest{Process: sel}))
	if err != nil {
		cancel()
		return nil, err
	}
	ps := readStream(t, s, func(m *process.ConnectResponse) *process.ProcessEvent { return m.GetEvent() }, cancel)
	return ps, ps.expectStart()
}

func (ps *procStream) expectStart() error {
	select {
	case ev, ok := <-ps.ch:
		if !ok {
			err := <-ps.errc
			ps.errc <- err
			ps.cancel()
			return err
		}
		if ev.GetStart() == nil {
			ps.cancel()
			return fmt.Errorf("first event is %v, want start", ev)
		}
		ps.pid = ev.GetStart().GetPid()
		return nil
	case <-time.After(10 * time.Second):
		ps.cancel()
		return fmt.Errorf("no start event within 10s")
	}
}

// record accounts for one event.
func (ps *procStream) record(ev *process.ProcessEvent) {
	switch e := ev.GetEvent().(type) {
	case *process.ProcessEvent_Data:
		switch o := e.Data.GetOutput().(type) {
		case *process.ProcessEvent_DataEvent_Stdout:
			ps.stdout.Write(o.Stdout)
			ps.order = append(ps.order, "stdout:"+string(o.Stdout))
		case *process.ProcessEvent_DataEvent_Stderr:
			ps.stderr.Write(o.Stderr)
			ps.order = append(ps.order, "stderr:"+string(o.Stderr))
		case *process.ProcessEvent_DataEvent_Pty:
			ps.pty.Write(o.Pty)
		}
	case *process.ProcessEvent_Keepalive:
		ps.keepalives++
	case *process.ProcessEvent_End:
		ps.end = e.End
	case *process.ProcessEvent_Start:
		ps.t.Errorf("second start event: %v", ev)
	}
}

// until reads events until cond holds; it fails the test on timeout or stream end.
func (ps *procStream) until(what string, timeout time.Duration, cond func() bool) {
	ps.t.Helper()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case ev, ok := <-ps.ch:
			if !ok {
				err := <-ps.errc
				ps.errc <- err
				ps.t.Fatalf("stream ended (err %v) before %s; stdout %q stderr %q pty %q", err, what, ps.stdout.String(), ps.stderr.String(), ps.pty.String())
			}
			ps.record(ev)
		case <-deadline:
			ps.t.Fatalf("timed out after %v waiting for %s; stdout %q stderr %q pty %q", timeout, what, ps.stdout.String(), ps.stderr.String(), ps.pty.String())
		}
	}
}

// wait reads until the end event and then the end of the stream.
func (ps *procStream) wait(timeout time.Duration) *process.ProcessEvent_EndEvent {
	ps.t.Helper()
	ps.until("the end event", timeout, func() bool { return ps.end != nil })
	select {
	case ev, ok := <-ps.ch:
		if ok {
			ps.t.Errorf("event after end: %v", ev)
		}
	case <-time.After(5 * time.Second):
		ps.t.Errorf("stream not closed after the end event")
	}
	if err := <-ps.errc; err != nil {
		ps.t.Errorf("stream error after end: %v", err)
	}
	ps.cancel()
	return ps.end
}

// streamErr waits for the stream to end and returns its error.
func (ps *procStream) streamErr(timeout time.Duration) error {
	ps.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-ps.ch:
			if !ok {
				return <-ps.errc
			}
			ps.record(ev)
		case <-deadline:
			ps.t.Fatalf("stream did not end within %v", timeout)
		}
	}
}

func sel(pid uint32) *process.ProcessSelector {
	return &process.ProcessSelector{Selector: &process.ProcessSelector_Pid{Pid: pid}}
}

func tagSel(tag string) *process.ProcessSelector {
	return &process.ProcessSelector{Selector: &process.ProcessSelector_Tag{Tag: tag}}
}

func wantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", code)
	}
	if got := connect.CodeOf(err); got != code {
		t.Fatalf("got error %v (code %v), want code %v", err, got, code)
	}
}

// httpDo sends a plain HTTP request to the agent.
func (e *testEnv) httpDo(t *testing.T, method, path string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp, buf.Bytes()
}
