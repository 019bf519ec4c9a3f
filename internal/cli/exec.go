package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	warren "github.com/warren-sh/warren/sdk/go"
)

// maxStdin caps what exec -i forwards: stdin travels inside the JSON request (base64 for
// binary data), and the server caps JSON bodies at 1 MiB.
const maxStdin = warren.MaxStdin

// exec runs a command: "warren exec [flags] ID -- CMD...". One word after "--" is a
// shell line (run by bash -c, so pipes work); several are an argv, run directly.
func (a *app) exec(args []string) error {
	fs := a.newFlags()
	user := fs.String("user", "", "user to run as")
	cwd := fs.String("cwd", "", "working directory")
	env := kvFlag{}
	fs.Var(env, "env", "environment variable K=V (repeatable)")
	timeout := fs.Int("timeout", 0, "seconds before the command is killed, which exits 124 (0: server default)")
	stdin := fs.Bool("i", false, "forward standard input (piped, up to 512 KiB) to the command")

	var command []string
	split := -1
	for i, arg := range args {
		if arg == "--" {
			split = i
			break
		}
	}
	var pos []string
	var err error
	if split >= 0 {
		command = args[split+1:]
		pos, err = a.parse(fs, args[:split], 1, 1)
	} else {
		// Without "--", flags come first and everything after the id is the command.
		if err = fs.Parse(args); err != nil {
			err = a.flagError(fs, err)
		} else if err = a.checkOutput(); err == nil && fs.NArg() > 0 {
			pos, command = fs.Args()[:1], fs.Args()[1:]
		}
	}
	if err != nil {
		return err
	}
	if len(pos) != 1 || len(command) == 0 {
		return usagef("usage: warren exec [flags] ID -- CMD...")
	}
	if *timeout < 0 {
		return usagef("--timeout must not be negative")
	}
	opts := warren.RunOptions{Env: env, Cwd: *cwd, User: *user, Timeout: time.Duration(*timeout) * time.Second, AllowNonZeroExit: true}
	if len(env) == 0 {
		opts.Env = nil
	}
	if *stdin {
		if isTerminal(a.stdin) {
			return usagef("-i forwards piped input; stdin is a terminal (interactive sessions are not supported)")
		}
		in, err := io.ReadAll(io.LimitReader(a.stdin, maxStdin+1))
		if err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
		if len(in) > maxStdin {
			return usagef("stdin is larger than 512 KiB; upload it with \"warren cp - %s:/tmp/input\" and redirect from that file", pos[0])
		}
		opts.Stdin = bytes.NewReader(in)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if !a.json() {
		opts.OnStdout = func(b []byte) { _, _ = a.stdout.Write(b) }
		opts.OnStderr = func(b []byte) { _, _ = a.stderr.Write(b) }
	}
	cmds := c.Sandbox(pos[0]).Commands()
	var res *warren.CommandResult
	if len(command) == 1 {
		res, err = cmds.Run(a.ctx, command[0], opts)
	} else {
		res, err = cmds.RunArgs(a.ctx, command, opts)
	}
	var timedOut *warren.CommandTimeoutError
	if errors.As(err, &timedOut) {
		res, err = timedOut.CommandResult, nil // a result like any other; exitStatus says so
	}
	if err != nil {
		return err
	}
	if a.json() {
		out := map[string]any{"exit_code": res.ExitCode, "stdout": res.Stdout, "stderr": res.Stderr, "timed_out": res.TimedOut}
		if err := a.printJSON(out); err != nil {
			return err
		}
	}
	return a.exitStatus(res)
}

// exitTimedOut is exec's exit code for a command killed at its timeout, as timeout(1)
// has it.
const exitTimedOut = 124

// exitStatus turns the command's ending into warren's exit: the command's own code when
// it is a valid one; 124 with a message on stderr when it timed out (as timeout(1)
// does); else 1 with the reason on stderr (killed by a signal).
func (a *app) exitStatus(res *warren.CommandResult) error {
	switch {
	case res.TimedOut:
		// Said even with -o json: stderr does not mix with the JSON on stdout.
		msg := res.Error // "command timed out after 5s and was killed"
		if msg == "" {
			msg = "command timed out and was killed"
		}
		fmt.Fprintf(a.stderr, "warren: %s (exit code %d)\n", msg, exitTimedOut)
		return exitCode(exitTimedOut)
	case res.ExitCode == 0 && res.Error == "":
		return nil
	case res.ExitCode > 0 && res.ExitCode < 256:
		return exitCode(res.ExitCode)
	}
	if !a.json() {
		fmt.Fprintf(a.stderr, "warren: command ended: %s (exit code %d)\n", orDash(res.Error), res.ExitCode)
	}
	return exitCode(1)
}

// isTerminal reports whether r is a character device (a terminal), using only the
// standard library.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
