package sandbox

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// defaultReadyTimeout bounds a template's ready check that names no timeout.
const defaultReadyTimeout = 60 * time.Second

// readyAttempt bounds one run of a check command in the sandbox.
const readyAttempt = 10 * time.Second

// execFunc runs one command in the sandbox whose ready check is waited for.
type execFunc func(ctx context.Context, req domain.ExecRequest) (*domain.ExecResult, error)

// waitReadyCheck waits until the template's ready check holds for the sandbox at addr,
// within the check's timeout. A port must accept a TCP connection from the host; the
// other kinds run a command in the sandbox through exec until it exits 0, as E2B's
// waitFor helpers do: a URL must answer 2xx or 3xx (curl, or wget where curl is
// missing), a process of that name must run (pgrep), a file must exist, a command
// must succeed. Past the timeout it is a KindUnavailable error with the last attempt's
// exit code and output.
func waitReadyCheck(ctx context.Context, addr string, exec execFunc, rc domain.ReadyCheck) error {
	if rc.IsZero() {
		return nil
	}
	timeout := rc.Timeout
	if timeout <= 0 {
		timeout = defaultReadyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	what, attempt := readyProbe(addr, exec, rc)
	var last string
	for {
		ok, detail := attempt(ctx)
		if ok {
			return nil
		}
		if detail != "" {
			last = detail
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("the template's ready check (%s) did not pass within %s", what, timeout)
			if last != "" {
				msg += "; last attempt: " + last
			}
			return domain.Errorf(domain.KindUnavailable, "%s; look at the sandbox's logs (its start command's output), fix the start command or the check, or give the check a longer timeout", msg)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// readyProbe describes rc and returns one attempt at it.
func readyProbe(addr string, exec execFunc, rc domain.ReadyCheck) (string, func(context.Context) (bool, string)) {
	if rc.Port > 0 {
		target := net.JoinHostPort(addr, strconv.Itoa(rc.Port))
		return fmt.Sprintf("port %d accepts connections", rc.Port), func(ctx context.Context) (bool, string) {
			attempt, stop := context.WithTimeout(ctx, 2*time.Second)
			defer stop()
			c, err := (&net.Dialer{}).DialContext(attempt, "tcp", target)
			if err != nil {
				return false, err.Error()
			}
			c.Close()
			return true, ""
		}
	}
	what, script := readyScript(rc)
	return what, func(ctx context.Context) (bool, string) {
		res, err := exec(ctx, domain.ExecRequest{Cmd: script, User: "root", Timeout: readyAttempt})
		if err != nil {
			return false, err.Error()
		}
		if res.ExitCode == 0 && !res.TimedOut {
			return true, ""
		}
		out := strings.TrimSpace(string(res.Stderr) + " " + string(res.Stdout))
		if len(out) > 300 {
			out = out[:300] + "..."
		}
		detail := "exit code " + strconv.Itoa(res.ExitCode)
		if res.TimedOut {
			detail = "still running after " + readyAttempt.String()
		}
		if out != "" {
			detail += ": " + out
		}
		return false, detail
	}
}

// readyScript is the shell command that checks rc (any kind but a port), and what it
// checks, in words.
func readyScript(rc domain.ReadyCheck) (what, script string) {
	switch {
	case rc.URL != "":
		u := shQuote(rc.URL)
		return "GET " + rc.URL + " answers 2xx or 3xx",
			"if command -v curl >/dev/null 2>&1; then curl -fsS -o /dev/null --max-time 5 " + u +
				"; else wget -q -O /dev/null -T 5 " + u + "; fi"
	case rc.Process != "":
		return "a process " + rc.Process + " runs", "pgrep -- " + shQuote(rc.Process) + " >/dev/null"
	case rc.File != "":
		return "file " + rc.File + " exists", "[ -e " + shQuote(rc.File) + " ]"
	}
	return "command " + rc.Cmd + " exits 0", rc.Cmd
}

// shQuote quotes s as one word for a POSIX shell.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// readyCheckErr keeps a ready check's own error, and wraps others.
func readyCheckErr(err error) error {
	if err == nil || domain.KindOf(err) != domain.KindInternal {
		return err
	}
	return fmt.Errorf("waiting for the template's ready check: %w", err)
}
