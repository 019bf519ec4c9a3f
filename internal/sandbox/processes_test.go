package sandbox

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// TestSignalValidation: TERM and KILL in any spelling pass validation (and then fail
// on the unknown sandbox); other signals are refused naming the supported ones.
func TestSignalValidation(t *testing.T) {
	ps := NewProcesses(testService())
	// A principal without scopes: a signal that passes validation fails on the scope
	// check, before the store is needed.
	p := domain.Principal{TeamID: "t", Scopes: []domain.Scope{}}
	cases := []struct {
		signal    string
		wantField string // "" = passes validation
		wantMsg   string
	}{
		{"KILL", "", ""},
		{"term", "", ""},
		{"SIGTERM", "", ""},
		{" sigkill ", "", ""},
		{"INT", "signal", "TERM or KILL"},
		{"HUP", "signal", "TERM or KILL"},
		{"SIGSTOP", "signal", "not supported"},
		{"", "signal", "required"},
	}
	for _, c := range cases {
		err := ps.SignalProcess(context.Background(), p, "abcdefghij0123456789", 7, c.signal)
		if c.wantField == "" {
			if !domain.IsKind(err, domain.KindForbidden) {
				t.Errorf("%q: %v, want it past validation (forbidden)", c.signal, err)
			}
			continue
		}
		if !domain.IsKind(err, domain.KindInvalid) || domain.FieldOf(err) != c.wantField || !strings.Contains(err.Error(), c.wantMsg) {
			t.Errorf("%q: %v, want invalid %s mentioning %q", c.signal, err, c.wantField, c.wantMsg)
		}
	}
}

// TestWhileLive: a command's context ends with the request's or with the sandbox's,
// and an error after the sandbox ended is replaced by why it ended.
func TestWhileLive(t *testing.T) {
	stoppedErr := domain.Errorf(domain.KindConflict, "sandbox x was stopped (killed) while the command ran")
	newLive := func() *liveSandbox {
		ls := &liveSandbox{}
		ls.ctx, ls.cancel = context.WithCancelCause(context.Background())
		return ls
	}

	t.Run("sandbox ends", func(t *testing.T) {
		ls := newLive()
		ctx, done := whileLive(context.Background(), ls)
		defer done()
		ls.cancel(stoppedErr)
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the command's context did not end with the sandbox")
		}
		if !errors.Is(context.Cause(ctx), stoppedErr) {
			t.Errorf("cause %v", context.Cause(ctx))
		}
		broken := domain.Errorf(domain.KindUnavailable, "sandbox agent: context canceled")
		if err := ls.stopped(broken); err != stoppedErr {
			t.Errorf("stopped(%v) = %v, want the reason the sandbox ended", broken, err)
		}
		if err := ls.stopped(nil); err != nil {
			t.Errorf("stopped(nil) = %v", err)
		}
	})

	t.Run("request ends", func(t *testing.T) {
		ls := newLive()
		parent, cancel := context.WithCancel(context.Background())
		ctx, done := whileLive(parent, ls)
		defer done()
		cancel()
		<-ctx.Done()
		if ls.ctx.Err() != nil {
			t.Error("the request's end ended the sandbox's context")
		}
		other := errors.New("boom")
		if err := ls.stopped(other); err != other {
			t.Errorf("stopped = %v, want the error unchanged while the sandbox runs", err)
		}
	})

	t.Run("done releases", func(t *testing.T) {
		ls := newLive()
		ctx, done := whileLive(context.Background(), ls)
		done()
		if ctx.Err() == nil {
			t.Error("done did not end the command's context")
		}
		ls.cancel(stoppedErr) // must not panic or block after done
	})
}

// TestCloseEndsStreams: Close leaves sandboxes running but ends what streams from them.
func TestCloseEndsStreams(t *testing.T) {
	s := testService()
	s.track(&domain.Sandbox{ID: "abcdefghij0123456789", EndsAt: time.Now().Add(time.Hour)}, nil, nil)
	ls, _, _ := s.reg.get("abcdefghij0123456789")
	if ls.ctx.Err() != nil {
		t.Fatal("a tracked sandbox's context is already done")
	}
	s.Close()
	if !domain.IsKind(context.Cause(ls.ctx), domain.KindUnavailable) {
		t.Errorf("after Close: cause %v, want unavailable", context.Cause(ls.ctx))
	}
}
