package agentclient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/envdpb/filesystem"
	"github.com/warren-sh/warren/internal/envdpb/filesystem/filesystemconnect"
	"github.com/warren-sh/warren/internal/envdpb/process"
	"github.com/warren-sh/warren/internal/envdpb/process/processconnect"
)

// floodAgent is a fake agent whose every command prints total bytes of stdout in
// chunks of chunk bytes (what a hijacked PID 1 may send), then a line of stderr.
type floodAgent struct {
	processconnect.UnimplementedProcessHandler
	total, chunk int
}

func (f floodAgent) Start(ctx context.Context, _ *connect.Request[process.StartRequest], s *connect.ServerStream[process.StartResponse]) error {
	send := func(ev *process.ProcessEvent) error {
		return s.Send(&process.StartResponse{Event: ev})
	}
	if err := send(&process.ProcessEvent{Event: &process.ProcessEvent_Start{Start: &process.ProcessEvent_StartEvent{Pid: 7}}}); err != nil {
		return err
	}
	buf := bytes.Repeat([]byte("x"), f.chunk)
	for sent := 0; sent < f.total; sent += f.chunk {
		if err := send(&process.ProcessEvent{Event: &process.ProcessEvent_Data{Data: &process.ProcessEvent_DataEvent{
			Output: &process.ProcessEvent_DataEvent_Stdout{Stdout: buf}}}}); err != nil {
			return err
		}
	}
	if err := send(&process.ProcessEvent{Event: &process.ProcessEvent_Data{Data: &process.ProcessEvent_DataEvent{
		Output: &process.ProcessEvent_DataEvent_Stderr{Stderr: []byte("done\n")}}}}); err != nil {
		return err
	}
	return send(&process.ProcessEvent{Event: &process.ProcessEvent_End{End: &process.ProcessEvent_EndEvent{Exited: true}}})
}

// fakeAgent serves h (and whatever extra routes are given) and returns a client for it.
func fakeAgent(t *testing.T, routes map[string]http.Handler) *Client {
	t.Helper()
	mux := http.NewServeMux()
	for p, h := range routes {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	c := New(strings.TrimPrefix(srv.URL, "http://"), "tok")
	t.Cleanup(func() {
		c.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	return c
}

// heapPeak samples the live heap while run runs and returns its peak above the
// heap before. The garbage collector runs more often than usual, so that the peak
// measures what is held rather than what waits to be collected.
func heapPeak(t *testing.T, run func()) uint64 {
	t.Helper()
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > base && m.HeapAlloc-base > peak {
				peak = m.HeapAlloc - base
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	run()
	close(stop)
	wg.Wait()
	return peak
}

func TestExecKeepsAtMostMaxBufferedOutput(t *testing.T) {
	const total = 16 * MaxBufferedOutput // 256 MiB
	path, h := processconnect.NewProcessHandler(floodAgent{total: total, chunk: 1 << 20})
	c := fakeAgent(t, map[string]http.Handler{path: h})

	var res *domain.ExecResult
	var err error
	peak := heapPeak(t, func() {
		res, err = c.Processes().Exec(context.Background(), domain.ExecRequest{Cmd: "head -c 256M /dev/zero"}, nil)
	})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if len(res.Stdout) != MaxBufferedOutput || !res.Truncated || string(res.Stderr) != "done\n" || res.ExitCode != 0 {
		t.Errorf("result: %d bytes of stdout, stderr %q, truncated %v, exit %d; want %d bytes, \"done\\n\", truncated, exit 0",
			len(res.Stdout), res.Stderr, res.Truncated, res.ExitCode, MaxBufferedOutput)
	}
	// The kept output is 16 MiB; the fake agent, the transport and the garbage of the
	// 256 MiB that went through add some. Keeping it all would need 256 MiB.
	t.Logf("heap peak %d MiB above the start", peak>>20)
	if limit := uint64(5 * MaxBufferedOutput); peak > limit {
		t.Errorf("the heap grew by %d MiB during the command, want at most %d MiB", peak>>20, limit>>20)
	}
}

func TestExecStreamedKeepsNothing(t *testing.T) {
	const total = 16 * MaxBufferedOutput
	path, h := processconnect.NewProcessHandler(floodAgent{total: total, chunk: 1 << 20})
	c := fakeAgent(t, map[string]http.Handler{path: h})

	var res *domain.ExecResult
	var err error
	seen := 0
	peak := heapPeak(t, func() {
		res, err = c.Processes().Exec(context.Background(), domain.ExecRequest{Cmd: "flood"}, func(ev domain.ExecEvent) error {
			seen += len(ev.Stdout)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if seen != total || len(res.Stdout) != 0 || len(res.Stderr) != 0 || res.Truncated {
		t.Errorf("streamed %d bytes (want %d); result holds %d+%d bytes, truncated %v; want none kept",
			seen, total, len(res.Stdout), len(res.Stderr), res.Truncated)
	}
	t.Logf("heap peak %d MiB above the start", peak>>20)
	if limit := uint64(3 * MaxBufferedOutput); peak > limit {
		t.Errorf("the heap grew by %d MiB while streaming, want at most %d MiB", peak>>20, limit>>20)
	}
}

// bigListing is a fake agent whose directory listings are larger than maxMessage.
type bigListing struct {
	filesystemconnect.UnimplementedFilesystemHandler
}

func (bigListing) ListDir(context.Context, *connect.Request[filesystem.ListDirRequest]) (*connect.Response[filesystem.ListDirResponse], error) {
	name := strings.Repeat("n", 1000)
	entries := make([]*filesystem.EntryInfo, 0, maxMessage/1000+100)
	for i := 0; i < cap(entries); i++ {
		entries = append(entries, &filesystem.EntryInfo{Name: name, Path: "/" + name})
	}
	return connect.NewResponse(&filesystem.ListDirResponse{Entries: entries}), nil
}

// endless is an io.Reader of n bytes of 'x'.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), e.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	e.n -= k
	return int(k), nil
}

func TestAgentRepliesAreBounded(t *testing.T) {
	lpath, lh := filesystemconnect.NewFilesystemHandler(bigListing{})
	huge := func(status int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.Copy(w, io.MultiReader(strings.NewReader(`{"message":"`), &endless{n: 1 << 30}))
		})
	}
	c := fakeAgent(t, map[string]http.Handler{
		lpath:                         lh,
		"/filesystem.Filesystem/Stat": huge(http.StatusInternalServerError), // a unary error with an endless body
		"/metrics":                    huge(http.StatusOK),
		"/files":                      huge(http.StatusOK),
		"/process.Process/List":       huge(http.StatusOK),
	})
	ctx := context.Background()
	cases := []struct {
		name string
		call func() error
		want string // in the error
	}{
		{"listing over the message limit", func() error { _, err := c.Files().ListDir(ctx, "/", "", 1); return err }, "more than 16 MiB"},
		{"unary error with an endless body", func() error { _, err := c.Files().Stat(ctx, "/x", ""); return err }, ""},
		{"unary reply with an endless body", func() error { _, err := c.Processes().ListProcesses(ctx); return err }, ""},
		{"endless metrics", func() error { _, err := c.Metrics(ctx); return err }, "longer than"},
		{"endless upload answer", func() error {
			_, err := c.Files().WriteFile(ctx, "/f", "", strings.NewReader("data"))
			return err
		}, "longer than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			peak := heapPeak(t, func() { err = tc.call() })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want an error mentioning %q", err, tc.want)
			}
			// The reply is endless (1 GiB offered): holding it would need 1 GiB. A
			// bounded read keeps one message (16 MiB) plus the transport's buffers and
			// garbage awaiting collection, which reached 65 MiB once on a loaded machine.
			if limit := uint64(6 * maxMessage); peak > limit {
				t.Errorf("the heap grew by %d MiB reading the reply, want at most %d MiB", peak>>20, limit>>20)
			}
		})
	}
	if _, err := c.Files().ListDir(ctx, "/", "", 1); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("an oversized listing is %v (kind %v), want a conflict saying to ask for less", err, domain.KindOf(err))
	}
	var ce *connect.Error
	if _, err := c.Files().Stat(ctx, "/x", ""); errors.As(err, &ce) && len(ce.Message()) > maxErrorBody {
		t.Errorf("an error message of %d bytes got through", len(ce.Message()))
	}
}
