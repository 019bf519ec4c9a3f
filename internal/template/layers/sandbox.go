package layers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/agentclient"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/node"
	"github.com/warren-sh/warren/internal/runtime"
)

// inSandbox starts a sandbox on the build's layers so far, runs fn in it through its
// agent, and saves what fn wrote as the layer diff. The sandbox, its network and its
// mounts are gone when inSandbox returns, whatever happened (ctx ending included).
func (bd *build) inSandbox(ctx context.Context, diff string, fn func(context.Context, *agentclient.Client) error) (err error) {
	b := bd.b
	slot, err := b.slots.take()
	if err != nil {
		return err
	}
	defer b.slots.give(slot)
	id := idPrefix + domain.NewID(14)
	token := domain.NewID(32)
	h, addr, err := b.cfg.Node.StartLayered(ctx, node.LayeredSpec{ID: id, Slot: slot, RootFS: bd.parent.RootFS, Lowers: bd.stack,
		Internet: true, Limits: b.cfg.Limits, Agent: node.AgentConfig{AccessToken: token, DefaultUser: "root", Hostname: "build"}})
	if err != nil {
		return fmt.Errorf("starting the build sandbox: %w", err)
	}
	defer func() {
		// Slot reuse waits for this: the network goes with the sandbox.
		if serr := b.cfg.Node.Stop(context.WithoutCancel(ctx), id, slot, &h); serr != nil {
			b.log.Error("removing a build sandbox", logkey.SandboxID, id, logkey.Err, serr)
			err = errors.Join(err, serr)
		}
	}()
	c := agentclient.New(net.JoinHostPort(addr, strconv.Itoa(runtime.AgentPort)), token)
	defer c.Close()
	ready, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = c.WaitReady(ready)
	cancel()
	if err != nil {
		return fmt.Errorf("the build sandbox's agent: %w", err)
	}
	if err := fn(ctx, c); err != nil {
		return err
	}
	// gVisor may hold written data in its own cache: flush it to the layer before the
	// sandbox is killed.
	if _, err := c.Processes().Exec(ctx, domain.ExecRequest{Args: []string{"sync"}, User: "root", Timeout: time.Minute}, nil); err != nil {
		return fmt.Errorf("syncing the build sandbox's files: %w", err)
	}
	if err := b.cfg.Node.Halt(ctx, id, slot, &h); err != nil {
		return fmt.Errorf("stopping the build sandbox: %w", err)
	}
	if err := b.cfg.Node.SaveLayer(ctx, id, diff); err != nil {
		return err
	}
	// /.warren is warren-agent's (its config, and the mount point runsc makes for the
	// agent's binary): nothing of it belongs to the template.
	return os.RemoveAll(filepath.Join(diff, ".warren"))
}

// Bounds on what a step's output becomes in the build log.
const (
	maxLineBytes = 8 << 10 // a longer line is cut
	maxStepLines = 100_000 // later lines of the step are dropped (one notice)
	tailLines    = 20      // lines a failed step's error quotes
	tailBytes    = 4 << 10 // ... at most this much of them
)

// runCommand runs a RUN step's command with /bin/sh -c and the build's metadata,
// streaming its output lines to the log, and saves its layer to diff. A command that
// exits non-zero is a KindInvalid error naming the step, the command, the exit code
// and the last lines of output.
func (bd *build) runCommand(ctx context.Context, i int, cmd, diff string) (int, error) {
	out := &lineLog{bd: bd}
	var res *domain.ExecResult
	err := bd.inSandbox(ctx, diff, func(ctx context.Context, c *agentclient.Client) error {
		user, err := bd.userName(ctx, c)
		if err != nil {
			return err
		}
		res, err = c.Processes().Exec(ctx, domain.ExecRequest{Args: []string{"/bin/sh", "-c", cmd}, Env: bd.meta.Env,
			Cwd: bd.meta.workdir(), User: user}, out.event)
		out.flush()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("step %d (RUN %s) was stopped: %w", i+1, quote(cmd), ctx.Err())
			}
			return fmt.Errorf("step %d (RUN %s): %w", i+1, quote(cmd), err)
		}
		if res.ExitCode != 0 {
			return domain.Errorf(domain.KindInvalid, "step %d (RUN %s) failed with exit code %d; its last output:\n%s",
				i+1, quote(cmd), res.ExitCode, out.tail())
		}
		return nil
	})
	if res != nil {
		return res.ExitCode, err
	}
	return -1, err
}

// makeWorkdir makes a WORKDIR step's directory if it is missing (owned by the build's
// user, as the directory it works in), and saves its layer to diff.
func (bd *build) makeWorkdir(ctx context.Context, i int, dir, diff string) error {
	return bd.inSandbox(ctx, diff, func(ctx context.Context, c *agentclient.Client) error {
		user, err := bd.userName(ctx, c)
		if err != nil {
			return err
		}
		script := `[ -d "$1" ] && exit 0; mkdir -p -- "$1" && chown -- "$2" "$1"`
		var stderr bytes.Buffer
		res, err := c.Processes().Exec(ctx, domain.ExecRequest{Args: []string{"/bin/sh", "-c", script, "sh", dir, user}, User: "root",
			Timeout: time.Minute}, func(ev domain.ExecEvent) error {
			if stderr.Len() < tailBytes {
				stderr.Write(ev.Stderr)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("step %d (WORKDIR %s): %w", i+1, dir, err)
		}
		if res.ExitCode != 0 {
			return domain.Errorf(domain.KindInvalid, "step %d (WORKDIR %s): cannot make the directory (exit code %d): %s",
				i+1, dir, res.ExitCode, strings.TrimSpace(stderr.String()))
		}
		return nil
	})
}

// userName is the build's user as the agent knows users: by name. The user (a name or
// a numeric uid) must be in the image's /etc/passwd: the agent would otherwise refuse
// the command as if the server had asked for the wrong user.
func (bd *build) userName(ctx context.Context, c *agentclient.Client) (string, error) {
	u := bd.meta.user()
	if u == "root" {
		return u, nil
	}
	var passwd bytes.Buffer
	if err := c.Files().ReadFile(ctx, "/etc/passwd", "root", &limitWriter{w: &passwd, left: 4 << 20}); err != nil {
		return "", domain.Errorf(domain.KindInvalid, "USER %s: reading the image's /etc/passwd: %v", u, err)
	}
	for _, line := range strings.Split(passwd.String(), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[0] != "" && (f[0] == u || f[2] == u) {
			return f[0], nil
		}
	}
	return "", domain.Errorf(domain.KindInvalid, "USER %s: no such user in the image's /etc/passwd; add it with a RUN step (useradd) before the USER step", u)
}

// limitWriter fails a write past its bound.
type limitWriter struct {
	w    *bytes.Buffer
	left int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.left {
		return 0, errors.New("the file is larger than the builder reads")
	}
	l.left -= len(p)
	return l.w.Write(p)
}

func quote(cmd string) string {
	if len(cmd) > 200 {
		cmd = cmd[:200] + "..."
	}
	return strconv.Quote(cmd)
}

// lineLog turns a command's output into log lines: stdout and stderr each split at
// newlines, lines cut at maxLineBytes, at most maxStepLines of them, the last
// tailLines kept for an error.
type lineLog struct {
	bd       *build
	out, err []byte
	lines    int
	last     []string
}

func (l *lineLog) event(ev domain.ExecEvent) error {
	l.feed(&l.out, ev.Stdout, "info")
	l.feed(&l.err, ev.Stderr, "info")
	return nil
}

func (l *lineLog) feed(buf *[]byte, data []byte, level string) {
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			room := maxLineBytes - len(*buf)
			if len(data) > room {
				*buf = append(*buf, data[:max(room, 0)]...)
				l.line(*buf, level)
				*buf = (*buf)[:0]
				data = data[max(room, 0):]
				continue
			}
			*buf = append(*buf, data...)
			return
		}
		*buf = append(*buf, data[:nl]...)
		if len(*buf) > maxLineBytes {
			*buf = (*buf)[:maxLineBytes]
		}
		l.line(*buf, level)
		*buf = (*buf)[:0]
		data = data[nl+1:]
	}
}

func (l *lineLog) line(b []byte, level string) {
	s := strings.TrimRight(string(b), "\r")
	l.last = append(l.last, s)
	if len(l.last) > tailLines {
		l.last = l.last[1:]
	}
	l.lines++
	switch {
	case l.lines < maxStepLines:
		l.bd.logf(level, "%s", s)
	case l.lines == maxStepLines:
		l.bd.logf("warn", "the step wrote more than %d lines: the rest is not logged", maxStepLines)
	}
}

// flush logs what is left of unterminated lines.
func (l *lineLog) flush() {
	for _, b := range []*[]byte{&l.out, &l.err} {
		if len(*b) > 0 {
			l.line(*b, "info")
			*b = (*b)[:0]
		}
	}
}

// tail is the last lines of output, at most tailBytes of them.
func (l *lineLog) tail() string {
	s := strings.Join(l.last, "\n")
	if len(s) > tailBytes {
		s = "..." + s[len(s)-tailBytes:]
	}
	if s == "" {
		return "(no output)"
	}
	return s
}
