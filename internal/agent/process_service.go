package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/warren-sh/warren/internal/envdpb/process"
	"github.com/warren-sh/warren/internal/envdpb/process/processconnect"
)

// defaultKeepalive is the keepalive interval when the client sends no
// Keepalive-Ping-Interval header (envd's default).
const defaultKeepalive = 90 * time.Second

// processService implements process.Process.
type processService struct{ a *Agent }

var _ processconnect.ProcessHandler = (*processService)(nil)

// keepaliveInterval reads Keepalive-Ping-Interval (seconds).
func keepaliveInterval(h http.Header) time.Duration {
	if v, err := strconv.Atoi(h.Get("Keepalive-Ping-Interval")); err == nil && v > 0 {
		return time.Duration(v) * time.Second
	}
	return defaultKeepalive
}

// lifetime reads Connect-Timeout-Ms, which on Start is the process's lifetime.
func lifetime(h http.Header) time.Duration {
	if v, err := strconv.ParseInt(h.Get("Connect-Timeout-Ms"), 10, 64); err == nil && v > 0 {
		return time.Duration(v) * time.Millisecond
	}
	return 0
}

// procError maps manager/proc errors to Connect codes.
func procError(err error) error {
	switch {
	case errors.Is(err, errProcessNotFound), errors.Is(err, errExited):
		return connect.NewError(connect.CodeNotFound, err)
	case errors.Is(err, errStdinDisabled), errors.Is(err, errStdinClosed), errors.Is(err, errNotPTY):
		return connect.NewError(connect.CodeFailedPrecondition, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return err
	}
	return connect.NewError(connect.CodeInvalidArgument, err)
}

// spec resolves a StartRequest for u into a startSpec.
func (s *processService) spec(u *User, req *process.StartRequest, timeout time.Duration) (startSpec, error) {
	cfg := req.GetProcess()
	if cfg.GetCmd() == "" {
		return startSpec{}, connect.NewError(connect.CodeInvalidArgument, errors.New("process.cmd is required"))
	}
	_, workdir := s.a.settings.defaults()
	dir := resolvePath(cfg.GetCwd(), u, workdir)
	fi, err := os.Stat(dir)
	switch {
	case err != nil && cfg.GetCwd() == "" && workdir == "":
		// The user's home does not exist (e.g. nobody's /nonexistent): run in /.
		dir = "/"
	case err != nil && errors.Is(err, os.ErrNotExist):
		return startSpec{}, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("cwd '%s' does not exist", dir))
	case err != nil:
		return startSpec{}, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("cwd '%s': %w", dir, err))
	case !fi.IsDir():
		return startSpec{}, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("cwd '%s' is not a directory", dir))
	}
	for k := range cfg.GetEnvs() {
		if !validEnvKey(k) {
			return startSpec{}, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("env name %q is not valid", k))
		}
	}
	env := buildEnv(u, s.a.settings.envCopy(), cfg.GetEnvs())
	cmd := shellFor(cfg.GetCmd(), fileExists)
	path, err := lookPath(cmd, env, dir)
	if err != nil {
		return startSpec{}, connect.NewError(connect.CodeInvalidArgument, err)
	}
	stored := proto.CloneOf(cfg)
	stored.Cwd = &dir
	return startSpec{
		path:    path,
		argv:    append([]string{cmd}, cfg.GetArgs()...),
		env:     env,
		dir:     dir,
		user:    u,
		pty:     req.GetPty(),
		stdin:   req.Stdin == nil || req.GetStdin(),
		tag:     req.Tag,
		config:  stored,
		timeout: timeout,
	}, nil
}

// Start starts a process and streams its events. Closing the stream detaches; it
// never kills the process. Connect-Timeout-Ms is the process's lifetime.
func (s *processService) Start(ctx context.Context, req *connect.Request[process.StartRequest], stream *connect.ServerStream[process.StartResponse]) error {
	u, err := s.a.rpcUser(req.Header())
	if err != nil {
		return err
	}
	spec, err := s.spec(u, req.Msg, lifetime(req.Header()))
	if err != nil {
		return err
	}
	sub := newSubscriber()
	p, err := s.a.procs.start(spec, sub)
	if err != nil {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("starting %q: %w", spec.config.GetCmd(), err))
	}
	defer p.unsubscribe(sub)
	send := func(ev *process.ProcessEvent) error { return stream.Send(&process.StartResponse{Event: ev}) }
	if err := send(startEvent(p.pid)); err != nil {
		return err
	}
	return pump(ctx, sub, keepaliveInterval(req.Header()), send)
}

// Connect re-attaches to a running process: start event with its pid, then only
// new output, then the end event. A process that ended less than the retention time
// ago yields start and end at once.
func (s *processService) Connect(ctx context.Context, req *connect.Request[process.ConnectRequest], stream *connect.ServerStream[process.ConnectResponse]) error {
	if _, err := s.a.rpcUser(req.Header()); err != nil {
		return err
	}
	p, err := s.a.procs.get(req.Msg.GetProcess(), true)
	if err != nil {
		return procError(err)
	}
	sub, end := p.subscribe()
	defer p.unsubscribe(sub)
	send := func(ev *process.ProcessEvent) error { return stream.Send(&process.ConnectResponse{Event: ev}) }
	if err := send(startEvent(p.pid)); err != nil {
		return err
	}
	if end != nil {
		return send(&process.ProcessEvent{Event: &process.ProcessEvent_End{End: end}})
	}
	return pump(ctx, sub, keepaliveInterval(req.Header()), send)
}

func startEvent(pid uint32) *process.ProcessEvent {
	return &process.ProcessEvent{Event: &process.ProcessEvent_Start{Start: &process.ProcessEvent_StartEvent{Pid: pid}}}
}

// pump forwards a subscriber's events to a stream until the end event, sending a
// keepalive after every interval of silence. It returns when the process ended
// (nil), the client went away, or the stream's deadline passed.
func pump(ctx context.Context, sub *subscriber, interval time.Duration, send func(*process.ProcessEvent) error) error {
	timer := time.NewTimer(interval)
	defer timer.Stop()
	keepalive := &process.ProcessEvent{Event: &process.ProcessEvent_Keepalive{Keepalive: &process.ProcessEvent_KeepAlive{}}}
	for {
		select {
		case ev := <-sub.ch:
			if err := send(ev); err != nil {
				return err
			}
			if ev.GetEnd() != nil {
				return nil
			}
		case <-timer.C:
			if err := send(keepalive); err != nil {
				return err
			}
		case <-ctx.Done():
			return procError(ctx.Err())
		}
		timer.Reset(interval)
	}
}

// List returns the running processes.
func (s *processService) List(ctx context.Context, req *connect.Request[process.ListRequest]) (*connect.Response[process.ListResponse], error) {
	if _, err := s.a.rpcUser(req.Header()); err != nil {
		return nil, err
	}
	resp := &process.ListResponse{}
	for _, p := range s.a.procs.running() {
		resp.Processes = append(resp.Processes, &process.ProcessInfo{Config: p.config, Pid: p.pid, Tag: p.tag})
	}
	return connect.NewResponse(resp), nil
}

// input writes one ProcessInput. stdin and pty input are both accepted for either
// kind of process: they go to the pty for pty processes and to stdin otherwise.
func (s *processService) input(ctx context.Context, sel *process.ProcessSelector, in *process.ProcessInput) error {
	p, err := s.a.procs.get(sel, false)
	if err != nil {
		return procError(err)
	}
	var data []byte
	switch v := in.GetInput().(type) {
	case *process.ProcessInput_Stdin:
		data = v.Stdin
	case *process.ProcessInput_Pty:
		data = v.Pty
	default:
		return connect.NewError(connect.CodeInvalidArgument, errors.New("input needs stdin or pty bytes"))
	}
	if err := p.writeInput(ctx, data); err != nil {
		return procError(fmt.Errorf("writing input to process %d: %w", p.pid, err))
	}
	return nil
}

// SendInput writes to a process's stdin or pty.
func (s *processService) SendInput(ctx context.Context, req *connect.Request[process.SendInputRequest]) (*connect.Response[process.SendInputResponse], error) {
	if _, err := s.a.rpcUser(req.Header()); err != nil {
		return nil, err
	}
	if err := s.input(ctx, req.Msg.GetProcess(), req.Msg.GetInput()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&process.SendInputResponse{}), nil
}

// StreamInput takes a start message naming the process, then data messages.
func (s *processService) StreamInput(ctx context.Context, stream *connect.ClientStream[process.StreamInputRequest]) (*connect.Response[process.StreamInputResponse], error) {
	if _, err := s.a.rpcUser(stream.RequestHeader()); err != nil {
		return nil, err
	}
	var sel *process.ProcessSelector
	for stream.Receive() {
		switch ev := stream.Msg().GetEvent().(type) {
		case *process.StreamInputRequest_Start:
			sel = ev.Start.GetProcess()
			if _, err := s.a.procs.get(sel, false); err != nil {
				return nil, procError(err)
			}
		case *process.StreamInputRequest_Data:
			if sel == nil {
				return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("the first StreamInput message must be start, naming the process"))
			}
			if err := s.input(ctx, sel, ev.Data.GetInput()); err != nil {
				return nil, err
			}
		case *process.StreamInputRequest_Keepalive:
		}
	}
	if err := stream.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return connect.NewResponse(&process.StreamInputResponse{}), nil
}

// SendSignal sends SIGTERM or SIGKILL to the process (and its process group).
func (s *processService) SendSignal(ctx context.Context, req *connect.Request[process.SendSignalRequest]) (*connect.Response[process.SendSignalResponse], error) {
	if _, err := s.a.rpcUser(req.Header()); err != nil {
		return nil, err
	}
	var sig syscall.Signal
	switch req.Msg.GetSignal() {
	case process.Signal_SIGNAL_SIGTERM:
		sig = syscall.SIGTERM
	case process.Signal_SIGNAL_SIGKILL:
		sig = syscall.SIGKILL
	default:
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("unsupported signal %s: use SIGNAL_SIGTERM or SIGNAL_SIGKILL", req.Msg.GetSignal()))
	}
	p, err := s.a.procs.get(req.Msg.GetProcess(), false)
	if err != nil {
		return nil, procError(err)
	}
	if err := p.signal(sig); err != nil {
		if errors.Is(err, errExited) || errors.Is(err, syscall.ESRCH) {
			return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("process with pid %d not found: it already exited", p.pid))
		}
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("signalling process %d: %w", p.pid, err))
	}
	return connect.NewResponse(&process.SendSignalResponse{}), nil
}

// CloseStdin closes a pipe process's stdin.
func (s *processService) CloseStdin(ctx context.Context, req *connect.Request[process.CloseStdinRequest]) (*connect.Response[process.CloseStdinResponse], error) {
	if _, err := s.a.rpcUser(req.Header()); err != nil {
		return nil, err
	}
	p, err := s.a.procs.get(req.Msg.GetProcess(), false)
	if err != nil {
		return nil, procError(err)
	}
	if err := p.closeStdin(); err != nil {
		if errors.Is(err, errStdinDisabled) {
			return nil, procError(err)
		}
		return nil, connect.NewError(connect.CodeFailedPrecondition, err)
	}
	return connect.NewResponse(&process.CloseStdinResponse{}), nil
}

// Update resizes a pty process's terminal.
func (s *processService) Update(ctx context.Context, req *connect.Request[process.UpdateRequest]) (*connect.Response[process.UpdateResponse], error) {
	if _, err := s.a.rpcUser(req.Header()); err != nil {
		return nil, err
	}
	p, err := s.a.procs.get(req.Msg.GetProcess(), false)
	if err != nil {
		return nil, procError(err)
	}
	if size := req.Msg.GetPty().GetSize(); size != nil {
		if size.GetCols() == 0 || size.GetRows() == 0 {
			return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("pty size needs cols and rows > 0"))
		}
		if err := p.resize(size.GetCols(), size.GetRows()); err != nil {
			return nil, procError(fmt.Errorf("resizing pty of process %d: %w", p.pid, err))
		}
	}
	return connect.NewResponse(&process.UpdateResponse{}), nil
}
