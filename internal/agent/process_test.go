package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/envdpb/filesystem/filesystemconnect"
	"github.com/warren-sh/warren/internal/envdpb/process"
	"github.com/warren-sh/warren/internal/envdpb/process/processconnect"
)

func TestStartStreamsOutputAndEnd(t *testing.T) {
	e := newTestEnv(t, Config{})
	e.codecs(t, func(t *testing.T, pc processconnect.ProcessClient, _ filesystemconnect.FilesystemClient) {
		tests := []struct {
			name       string
			req        *connect.Request[process.StartRequest]
			order      []string // expected data events, in order (nil: don't check)
			stdout     string
			code       int32
			exited     bool
			status     string
			wantErrMsg string // end.error; "" means unset
		}{
			{
				name:   "stdout and stderr in order",
				req:    shReq("echo a; sleep 0.2; echo b >&2; sleep 0.2; echo c"),
				order:  []string{"stdout:a\n", "stderr:b\n", "stdout:c\n"},
				stdout: "a\nc\n", exited: true, status: "exit status 0",
			},
			{
				name:   "login shell like the SDK",
				req:    startReq("/bin/bash", "-l", "-c", "echo hello"),
				stdout: "hello\n", exited: true, status: "exit status 0",
			},
			{
				name: "exit code", req: shReq("exit 3"),
				code: 3, exited: true, status: "exit status 3", wantErrMsg: "exit status 3",
			},
			{
				name: "killed by a signal", req: shReq("kill -9 $$"),
				code: -1, status: "signal: killed", wantErrMsg: "signal: killed",
			},
			{
				name:   "cmd looked up in PATH",
				req:    startReq("echo", "via", "path"),
				stdout: "via path\n", exited: true, status: "exit status 0",
			},
			{
				name:   "large output arrives whole",
				req:    shReq("head -c 300000 /dev/zero | tr '\\0' x"),
				stdout: strings.Repeat("x", 300000), exited: true, status: "exit status 0",
			},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ps := start(t, pc, tc.req)
				if ps.pid == 0 {
					t.Fatal("start event without pid")
				}
				end := ps.wait(20 * time.Second)
				if got := ps.stdout.String(); got != tc.stdout {
					t.Errorf("stdout %q, want %q", got, tc.stdout)
				}
				if tc.order != nil && !slices.Equal(ps.order, tc.order) {
					t.Errorf("data events %q, want %q", ps.order, tc.order)
				}
				if end.GetExitCode() != tc.code || end.GetExited() != tc.exited || end.GetStatus() != tc.status {
					t.Errorf("end %v, want code %d exited %v status %q", end, tc.code, tc.exited, tc.status)
				}
				if (end.Error == nil) != (tc.wantErrMsg == "") || end.GetError() != tc.wantErrMsg {
					t.Errorf("end.error %v, want %q", end.Error, tc.wantErrMsg)
				}
			})
		}
	})
}

func TestStartErrors(t *testing.T) {
	e := newTestEnv(t, Config{})
	missing := filepath.Join(e.dir, "missing")
	file := filepath.Join(e.dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	withCwd := func(cwd string) *connect.Request[process.StartRequest] {
		r := startReq("/bin/true")
		r.Msg.Process.Cwd = &cwd
		return r
	}
	tests := []struct {
		name string
		req  *connect.Request[process.StartRequest]
		code connect.Code
	}{
		{"empty cmd", startReq(""), connect.CodeInvalidArgument},
		{"unknown command", startReq("no-such-command-xyz"), connect.CodeInvalidArgument},
		{"missing executable path", startReq("/no/such/binary"), connect.CodeInvalidArgument},
		{"cwd does not exist", withCwd(missing), connect.CodeInvalidArgument},
		{"cwd is a file", withCwd(file), connect.CodeInvalidArgument},
	}
	e.codecs(t, func(t *testing.T, pc processconnect.ProcessClient, _ filesystemconnect.FilesystemClient) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := tryStart(t, pc, tc.req)
				wantCode(t, err, tc.code)
			})
		}
	})
}

func TestStdin(t *testing.T) {
	e := newTestEnv(t, Config{})
	ctx := context.Background()
	stdinReq := func(args ...string) *connect.Request[process.StartRequest] {
		r := startReq(args[0], args[1:]...)
		r.Msg.Stdin = nil // absent means enabled
		return r
	}
	sendStdin := func(pc processconnect.ProcessClient, pid uint32, s string) error {
		_, err := pc.SendInput(ctx, connect.NewRequest(&process.SendInputRequest{
			Process: sel(pid), Input: &process.ProcessInput{Input: &process.ProcessInput_Stdin{Stdin: []byte(s)}},
		}))
		return err
	}
	closeStdin := func(pc processconnect.ProcessClient, pid uint32) error {
		_, err := pc.CloseStdin(ctx, connect.NewRequest(&process.CloseStdinRequest{Process: sel(pid)}))
		return err
	}
	e.codecs(t, func(t *testing.T, pc processconnect.ProcessClient, _ filesystemconnect.FilesystemClient) {
		t.Run("SendInput then CloseStdin", func(t *testing.T) {
			ps := start(t, pc, stdinReq("cat"))
			if err := sendStdin(pc, ps.pid, "hello "); err != nil {
				t.Fatal(err)
			}
			ps.until("echo of first input", 5*time.Second, func() bool { return ps.stdout.String() == "hello " })
			if err := sendStdin(pc, ps.pid, "world"); err != nil {
				t.Fatal(err)
			}
			if err := closeStdin(pc, ps.pid); err != nil {
				t.Fatal(err)
			}
			if end := ps.wait(5 * time.Second); end.GetExitCode() != 0 || ps.stdout.String() != "hello world" {
				t.Fatalf("end %v stdout %q", end, ps.stdout.String())
			}
			wantCode(t, sendStdin(pc, ps.pid, "late"), connect.CodeNotFound)
		})
		t.Run("input after CloseStdin fails", func(t *testing.T) {
			ps := start(t, pc, stdinReq("sh", "-c", "cat; sleep 30"))
			if err := closeStdin(pc, ps.pid); err != nil {
				t.Fatal(err)
			}
			wantCode(t, sendStdin(pc, ps.pid, "x"), connect.CodeFailedPrecondition)
			if _, err := pc.SendSignal(ctx, connect.NewRequest(&process.SendSignalRequest{Process: sel(ps.pid), Signal: process.Signal_SIGNAL_SIGKILL})); err != nil {
				t.Fatal(err)
			}
			ps.wait(5 * time.Second)
		})
		t.Run("stdin false reads EOF and refuses input", func(t *testing.T) {
			ps := start(t, pc, startReq("sh", "-c", "cat; echo done; sleep 0.5"))
			ps.until("cat to see EOF", 5*time.Second, func() bool { return ps.stdout.String() == "done\n" })
			wantCode(t, sendStdin(pc, ps.pid, "x"), connect.CodeFailedPrecondition)
			wantCode(t, closeStdin(pc, ps.pid), connect.CodeFailedPrecondition)
			ps.wait(5 * time.Second)
		})
		t.Run("StreamInput", func(t *testing.T) {
			ps := start(t, pc, stdinReq("cat"))
			st := pc.StreamInput(ctx)
			msgs := []*process.StreamInputRequest{
				{Event: &process.StreamInputRequest_Start{Start: &process.StreamInputRequest_StartEvent{Process: sel(ps.pid)}}},
				{Event: &process.StreamInputRequest_Data{Data: &process.StreamInputRequest_DataEvent{Input: &process.ProcessInput{Input: &process.ProcessInput_Stdin{Stdin: []byte("abc")}}}}},
				{Event: &process.StreamInputRequest_Keepalive{Keepalive: &process.StreamInputRequest_KeepAlive{}}},
				{Event: &process.StreamInputRequest_Data{Data: &process.StreamInputRequest_DataEvent{Input: &process.ProcessInput{Input: &process.ProcessInput_Stdin{Stdin: []byte("def")}}}}},
			}
			for _, m := range msgs {
				if err := st.Send(m); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := st.CloseAndReceive(); err != nil {
				t.Fatal(err)
			}
			ps.until("streamed input echoed", 5*time.Second, func() bool { return ps.stdout.String() == "abcdef" })
			if err := closeStdin(pc, ps.pid); err != nil {
				t.Fatal(err)
			}
			ps.wait(5 * time.Second)
		})
		t.Run("StreamInput without start", func(t *testing.T) {
			st := pc.StreamInput(ctx)
			_ = st.Send(&process.StreamInputRequest{Event: &process.StreamInputRequest_Data{Data: &process.StreamInputRequest_DataEvent{Input: &process.ProcessInput{Input: &process.ProcessInput_Stdin{Stdin: []byte("x")}}}}})
			_, err := st.CloseAndReceive()
			wantCode(t, err, connect.CodeInvalidArgument)
		})
	})
}

func TestSignals(t *testing.T) {
	e := newTestEnv(t, Config{})
	ctx := context.Background()
	signal := func(pc processconnect.ProcessClient, s *process.ProcessSelector, sig process.Signal) error {
		_, err := pc.SendSignal(ctx, connect.NewRequest(&process.SendSignalRequest{Process: s, Signal: sig}))
		return err
	}
	e.codecs(t, func(t *testing.T, pc processconnect.ProcessClient, _ filesystemconnect.FilesystemClient) {
		tests := []struct {
			name   string
			script string
			sig    process.Signal
			status string
		}{
			{"SIGTERM", "sleep 30", process.Signal_SIGNAL_SIGTERM, "signal: terminated"},
			{"SIGKILL", "sleep 30", process.Signal_SIGNAL_SIGKILL, "signal: killed"},
			// The shell waits for a background child: the whole group must die.
			{"SIGKILL kills the process group", "sleep 30 & sleep 31 & wait", process.Signal_SIGNAL_SIGKILL, "signal: killed"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ps := start(t, pc, shReq(tc.script))
				if err := signal(pc, sel(ps.pid), tc.sig); err != nil {
					t.Fatal(err)
				}
				end := ps.wait(5 * time.Second)
				if end.GetStatus() != tc.status || end.GetExitCode() != -1 || end.GetExited() || end.GetError() != tc.status {
					t.Fatalf("end %v, want status %q", end, tc.status)
				}
				wantCode(t, signal(pc, sel(ps.pid), tc.sig), connect.CodeNotFound)
			})
		}
		t.Run("unknown pid", func(t *testing.T) {
			wantCode(t, signal(pc, sel(999999), process.Signal_SIGNAL_SIGKILL), connect.CodeNotFound)
		})
		t.Run("unspecified signal", func(t *testing.T) {
			ps := start(t, pc, shReq("sleep 30"))
			wantCode(t, signal(pc, sel(ps.pid), process.Signal_SIGNAL_UNSPECIFIED), connect.CodeInvalidArgument)
			if err := signal(pc, sel(ps.pid), process.Signal_SIGNAL_SIGKILL); err != nil {
				t.Fatal(err)
			}
			ps.wait(5 * time.Second)
		})
	})
}

// TestManyShortProcesses checks that exit statuses reach the right process when
// many processes start and exit at once.
func TestManyShortProcesses(t *testing.T) {
	e := newTestEnv(t, Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps, err := tryStart(t, e.proc, shReq("exit "+strconv.Itoa(i)))
			if err != nil {
				errs <- err
				return
			}
			deadline := time.After(20 * time.Second)
			for ps.end == nil {
				select {
				case ev, ok := <-ps.ch:
					if !ok {
						errs <- errors.New("stream ended without end event")
						return
					}
					ps.record(ev)
				case <-deadline:
					errs <- errors.New("timeout")
					return
				}
			}
			ps.cancel()
			if ps.end.GetExitCode() != int32(i) {
				errs <- errors.New("process " + strconv.Itoa(i) + " got exit code " + strconv.Itoa(int(ps.end.GetExitCode())))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
