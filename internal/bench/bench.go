// Package bench measures Warren on the machine it runs on, every figure in one run so
// that they see the same machine: a bare `runsc run` of the base root filesystem
// printing one line (the baseline), cold and warm (pool-claimed) create to first
// output, pause, resume, fork of 1 and of 10, code-interpreter create to first result,
// the command and runCode round trips, and the idle memory (PSS) of a base sandbox.
//
// A measurement the server cannot take (a route it does not have, a runtime that
// cannot checkpoint, no warm pool) is reported absent with the reason, never as
// figures: see Stats.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Options configure a run.
type Options struct {
	APIURL string
	APIKey string
	// N is the number of cold and of warm creates, and of baseline runs, interleaved
	// (default 20).
	N int
	// RootFS is the template root filesystem the baseline runs (the base template).
	RootFS string
	// Runsc is the runsc binary for the baseline (default from PATH).
	Runsc string
	// ExecCalls is the number of timed command round trips back to back (default
	// 100), and ExecPacedCalls the number with a pause before each (default 30).
	ExecCalls, ExecPacedCalls int
	// PauseRuns is the number of pause and resume pairs (default 5).
	PauseRuns int
	// ForkRuns is the number of forks of count 1, and of count 10 (default 3).
	ForkRuns int
	// CodeRuns is the number of code-interpreter sandboxes created (default 5), and
	// CodeCalls the number of timed runCode("1+1") calls (default 200). With SkipCode
	// the code interpreter is not measured (its fields are absent).
	CodeRuns, CodeCalls int
	SkipCode            bool
	// Progress receives one line per measurement; nil discards.
	Progress io.Writer

	// Seams for tests: the baseline run, the /proc the PSS is read from and how long a
	// sandbox idles before it is read (default 2 s).
	// baseline runs with the network a sandbox gets, baselineNonet with --network=none.
	baseline, baselineNonet func(ctx context.Context, i int) (time.Duration, error)
	procRoot                string
	idleWait                time.Duration
	// settleWait bounds the wait for the base pool to refill before each baseline and
	// cold create (default 30 s).
	settleWait time.Duration
	// settleAfter is how long the bench still waits once the pool is full (default
	// 500 ms): a new member's agent starts a spare shell 100 ms after its warm-up
	// command, and a baseline timed beside that start ran ~15% slower. It is also
	// the wait between killing a sandbox and the next timed create (the warm create
	// after the cold one's kill, each code-interpreter create after the last one's):
	// the server answers a kill before the sandbox's teardown ends (runsc delete,
	// unmounts, ~60-80 ms of CPU), and a create timed beside it shares the 2 cores
	// with it while the baseline never does.
	settleAfter time.Duration
	// execPause is the pause before each paced command (default 250 ms).
	execPause time.Duration
}

// Result is one benchmark run. Every series is a Stats; see Stats for absent ones.
type Result struct {
	// Baseline is a bare `runsc run` of the same root filesystem printing one line, with
	// the same network mode as a sandbox: its own network namespace set up as Warren
	// sets up a sandbox's (veth pair, addresses, default route) and --network=sandbox.
	Baseline Stats `json:"baseline_runsc_run"`
	// BaselineNonet is the same run with --network=none (no namespace, no netstack).
	BaselineNonet Stats `json:"baseline_runsc_run_nonet"`
	// Cold is create to first output of `echo` for a create no warm pool serves (it
	// asks for a memory limit 1 MiB under the default, which no pool member has).
	Cold Stats `json:"cold_create_to_first_output"`
	// Warm is create to first output for creates a warm pool served (each one checked
	// against the server's pool counters); absent when the server keeps no base pool.
	Warm Stats `json:"warm_create_to_first_output"`
	// Pause and Resume time POST /v1/sandboxes/{id}/pause and /resume.
	Pause  Stats `json:"pause"`
	Resume Stats `json:"resume"`
	// Fork1 is a fork of count 1; Fork10 a fork of count 10 per sandbox (the call's
	// time over 10), Fork10Call the whole call.
	Fork1      Stats `json:"fork_1"`
	Fork10     Stats `json:"fork_10"`
	Fork10Call Stats `json:"fork_10_call"`
	// CodeFirst is code-interpreter create to the first result of 1+1.
	CodeFirst Stats `json:"code_create_to_first_result"`
	// Exec is a command round trip through /v1: {"cmd":"true"}, not streamed, the
	// calls back to back. ExecPaced is the same call after a pause of a quarter of a
	// second, the rhythm of an agent that reads each result before its next command
	// (the sandbox has a spare shell waiting by then).
	Exec      Stats `json:"exec"`
	ExecPaced Stats `json:"exec_paced"`
	// Spawn is posix_spawn and wait of /bin/true inside the base sandbox, back to
	// back, timed by the sandbox itself (ExecCalls of them): what one process costs in
	// the runtime, the floor under Exec and under every first output.
	Spawn Stats `json:"spawn_in_sandbox"`
	// RunCode is a runCode("1+1") round trip (POST /v1/sandboxes/{id}/execute) on a
	// warm context.
	RunCode Stats `json:"run_code"`
	// RatioP50 is cold over Baseline (p50, the same network mode), RatioWarmP50 warm over baseline; 1.0
	// means no overhead. RatioP95 is cold over baseline at p95.
	RatioP50     float64 `json:"ratio_p50"`
	RatioWarmP50 float64 `json:"ratio_warm_p50"`
	RatioP95     float64 `json:"ratio_p95"`
	// IdlePSSBytes is the PSS of one idle base sandbox's host processes (see PSS);
	// IdleUSSBytes its private part (see PSS.USSBytes); IdlePSS its parts,
	// IdlePSSError why it could not be read.
	IdlePSSBytes int64  `json:"idle_pss_bytes"`
	IdleUSSBytes int64  `json:"idle_uss_bytes"`
	IdlePSS      *PSS   `json:"idle_pss,omitempty"`
	IdlePSSError string `json:"idle_pss_error,omitempty"`
	// WarmMisses counts warm creates that were not pool claims (not in Warm).
	WarmMisses int `json:"warm_misses"`
	// PoolUnsettled counts the rounds whose baselines and cold create started while
	// the base pool was still refilling (it did not get full within the wait): their
	// figures include that contention.
	PoolUnsettled int `json:"pool_unsettled_runs"`
	// WarrenCreateToFirstOutput and WarrenCreate are the cold series under the names
	// earlier versions used; WarrenCreate is the create call alone.
	WarrenCreateToFirstOutput Stats `json:"warren_create_to_first_output"`
	WarrenCreate              Stats `json:"warren_create"`
	// Code is the code interpreter's figures in the shape earlier versions printed.
	Code *CodeResult `json:"code_interpreter,omitempty"`
}

func (o *Options) defaults() error {
	if o.N <= 0 {
		o.N = 20
	}
	if o.ExecCalls <= 0 {
		o.ExecCalls = 100
	}
	if o.ExecPacedCalls <= 0 {
		o.ExecPacedCalls = 30
	}
	if o.execPause <= 0 {
		o.execPause = 250 * time.Millisecond
	}
	if o.PauseRuns <= 0 {
		o.PauseRuns = 5
	}
	if o.ForkRuns <= 0 {
		o.ForkRuns = 3
	}
	if o.CodeRuns <= 0 {
		o.CodeRuns = 5
	}
	if o.CodeCalls <= 0 {
		o.CodeCalls = 200
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.idleWait <= 0 {
		o.idleWait = 2 * time.Second
	}
	if o.settleWait <= 0 {
		o.settleWait = 30 * time.Second
	}
	if o.settleAfter <= 0 {
		o.settleAfter = 500 * time.Millisecond
	}
	if o.procRoot == "" {
		o.procRoot = "/proc"
	}
	if o.baseline != nil {
		return nil
	}
	if o.Runsc == "" {
		p, err := exec.LookPath("runsc")
		if err != nil {
			return errors.New("runsc not found: the baseline needs it (run scripts/install-deps.sh, which builds and installs it)")
		}
		o.Runsc = p
	}
	if _, err := os.Stat(filepath.Join(o.RootFS, "bin", "echo")); err != nil {
		return fmt.Errorf("baseline root filesystem %q has no /bin/echo: pass --rootfs (the base template's rootfs directory)", o.RootFS)
	}
	return nil
}

// Run takes every measurement against the server at o.APIURL.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if o.baseline == nil {
		tmp, err := os.MkdirTemp("", "warren-bench-")
		if err != nil {
			return nil, err
		}
		defer func() {
			// A current runsc pins its gofers' shared empty network namespace with a
			// bind mount at <root>/null-netns: unmount it, or tmp cannot be removed.
			nullNS := filepath.Join(tmp, "runsc-root", "null-netns")
			for i := 0; i < 16 && syscall.Unmount(nullNS, syscall.MNT_DETACH) == nil; i++ {
			}
			os.RemoveAll(tmp)
		}()
		bn, err := newBaselineNet(ctx, o.Runsc)
		if err != nil {
			return nil, err
		}
		o.baseline = func(ctx context.Context, i int) (time.Duration, error) { return baselineOnce(ctx, o, tmp, i, bn) }
		o.baselineNonet = func(ctx context.Context, i int) (time.Duration, error) { return baselineOnce(ctx, o, tmp, i, nil) }
	}
	b := &runner{o: o, c: newClient(o.APIURL, o.APIKey), r: &Result{}}
	if err := b.starts(ctx); err != nil {
		return nil, err
	}
	if err := b.running(ctx); err != nil {
		return nil, err
	}
	if o.SkipCode {
		b.r.CodeFirst = absent("not measured (--code=false)")
		b.r.RunCode = absent("not measured (--code=false)")
	} else if err := b.code(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		b.r.CodeFirst, b.r.RunCode = failed(err), failed(err)
		b.progress("code interpreter not measured: %v", err)
	}
	return b.r, nil
}

// runner holds one run's client and result.
type runner struct {
	o Options
	c *client
	r *Result
}

func (b *runner) progress(format string, args ...any) {
	fmt.Fprintf(b.o.Progress, format+"\n", args...)
}
