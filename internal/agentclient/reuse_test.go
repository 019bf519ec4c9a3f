package agentclient

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/envdpb/process"
	"github.com/warren-sh/warren/internal/envdpb/process/processconnect"
)

// endingAgent answers every command with a start and an end event, then, with stall,
// keeps the stream open until the client goes away (an agent that misbehaves).
type endingAgent struct {
	processconnect.UnimplementedProcessHandler
	stall bool
}

func (e endingAgent) Start(ctx context.Context, _ *connect.Request[process.StartRequest], s *connect.ServerStream[process.StartResponse]) error {
	for _, ev := range []*process.ProcessEvent{
		{Event: &process.ProcessEvent_Start{Start: &process.ProcessEvent_StartEvent{Pid: 7}}},
		{Event: &process.ProcessEvent_End{End: &process.ProcessEvent_EndEvent{Exited: true, Status: "exit status 0"}}},
	} {
		if err := s.Send(&process.StartResponse{Event: ev}); err != nil {
			return err
		}
	}
	if e.stall {
		select {
		case <-ctx.Done():
		case <-time.After(time.Minute):
		}
	}
	return nil
}

// countingAgent serves a as the agent, counting the connections it accepts.
func countingAgent(t *testing.T, a endingAgent) (*Client, *atomic.Int64) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(processconnect.NewProcessHandler(a))
	srv := httptest.NewUnstartedServer(mux)
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	c := New(strings.TrimPrefix(srv.URL, "http://"), "tok")
	t.Cleanup(func() {
		c.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	return c, &conns
}

// TestExecReusesConnection checks that commands run one after the other share one
// connection to the agent: Exec reads each stream to its end, so that its connection
// goes back to the pool instead of being dropped.
func TestExecReusesConnection(t *testing.T) {
	c, conns := countingAgent(t, endingAgent{})
	for i := 0; i < 10; i++ {
		res, err := c.Processes().Exec(context.Background(), domain.ExecRequest{Cmd: "true"}, nil)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("exec %d: %+v, %v", i, res, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("10 commands in a row opened %d connections to the agent, want 1", n)
	}
}

// TestExecAgentKeepsStreamOpen checks that an agent that keeps a command's stream open
// after its end event cannot hold the call: the result comes, and the stream is cut.
func TestExecAgentKeepsStreamOpen(t *testing.T) {
	c, conns := countingAgent(t, endingAgent{stall: true})
	for i := 0; i < 3; i++ {
		done := make(chan error, 1)
		go func() {
			res, err := c.Processes().Exec(context.Background(), domain.ExecRequest{Cmd: "true"}, nil)
			if err == nil && res.ExitCode != 0 {
				err = context.Canceled
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("exec %d against a stalling agent: %v, want its result", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("exec %d: an agent that keeps the stream open held the call", i)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("3 cut streams: %d connections, want 3 (a cut stream's connection is not reused)", n)
	}
}
