package bench

import (
	"context"
	"fmt"
	"time"
)

// running measures what is done to a running base sandbox: its idle memory, command
// round trips, forks, and pause and resume.
func (b *runner) running(ctx context.Context) error {
	sb, err := b.c.create(ctx, `{"template":"base","timeout":900}`)
	if err != nil {
		return err
	}
	defer b.c.kill(ctx, sb.ID)
	b.idlePSS(ctx, sb.ID)
	if err := b.exec(ctx, sb.ID); err != nil {
		return err
	}
	b.r.Spawn = b.spawnInSandbox(ctx, sb.ID)
	b.r.Fork1 = b.forks(ctx, sb.ID, 1, nil)
	var calls []time.Duration
	b.r.Fork10 = b.forks(ctx, sb.ID, 10, &calls)
	b.r.Fork10Call = summarizeOr(calls, b.r.Fork10.Error)
	b.pauseResume(ctx, sb.ID)
	return nil
}

// idlePSS reads the PSS of sandbox id's host processes once it has been idle a moment.
func (b *runner) idlePSS(ctx context.Context, id string) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(b.o.idleWait):
	}
	p, err := hostProcTable(b.o.procRoot).sandboxPSS(id)
	if err != nil {
		b.r.IdlePSSError = err.Error()
		return
	}
	b.r.IdlePSSBytes, b.r.IdleUSSBytes, b.r.IdlePSS = p.Bytes, p.USSBytes, &p
	b.progress("idle base sandbox: PSS %.1f MiB (sandbox %.1f MiB, gofer %.1f MiB, %d host processes, %d address spaces), private %.1f MiB",
		mib(p.Bytes), mib(p.SandboxBytes), mib(p.GoferBytes), p.Processes, p.AddressSpaces, mib(p.USSBytes))
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// exec times {"cmd":"true"} round trips, after a few untimed ones: back to back, then
// each after a pause.
func (b *runner) exec(ctx context.Context, id string) error {
	var ds []time.Duration
	for i := -5; i < b.o.ExecCalls; i++ {
		start := time.Now()
		if err := b.c.exec(ctx, id, "true"); err != nil {
			return fmt.Errorf("exec: %w", err)
		}
		if i >= 0 {
			ds = append(ds, time.Since(start))
		}
	}
	b.r.Exec = summarize(ds)
	b.progress("exec {\"cmd\":\"true\"}: p50 %.1f ms, p95 %.1f ms (n=%d)", b.r.Exec.P50, b.r.Exec.P95, b.r.Exec.N)
	ds = nil
	for i := 0; i < b.o.ExecPacedCalls; i++ {
		if err := sleepCtx(ctx, b.o.execPause); err != nil {
			return err
		}
		start := time.Now()
		if err := b.c.exec(ctx, id, "true"); err != nil {
			return fmt.Errorf("exec: %w", err)
		}
		ds = append(ds, time.Since(start))
	}
	b.r.ExecPaced = summarize(ds)
	b.progress("exec {\"cmd\":\"true\"} after %v: p50 %.1f ms, p95 %.1f ms (n=%d)", b.o.execPause, b.r.ExecPaced.P50, b.r.ExecPaced.P95, b.r.ExecPaced.N)
	return nil
}

// forks times ForkRuns forks of count of sandbox id; the figure is per sandbox (the
// call's time over count). calls, when not nil, receives the calls' whole times. The
// forks are killed, untimed.
func (b *runner) forks(ctx context.Context, id string, count int, calls *[]time.Duration) Stats {
	var per []time.Duration
	for i := 0; i < b.o.ForkRuns; i++ {
		start := time.Now()
		var res struct {
			Sandboxes []sandbox `json:"sandboxes"`
			Errors    []struct {
				Message string `json:"message"`
			} `json:"errors"`
		}
		err := b.c.call(ctx, "POST", "/v1/sandboxes/"+id+"/fork", fmt.Sprintf(`{"count":%d}`, count), &res)
		took := time.Since(start)
		for _, f := range res.Sandboxes {
			b.c.kill(ctx, f.ID)
		}
		if err != nil {
			return failed(err)
		}
		if len(res.Sandboxes) != count {
			why := ""
			if len(res.Errors) > 0 {
				why = ": " + res.Errors[0].Message
			}
			return absent(fmt.Sprintf("failed: a fork of count %d answered %d sandboxes%s (the fork and its parent must fit the team's quota)", count, len(res.Sandboxes), why))
		}
		per = append(per, took/time.Duration(count))
		if calls != nil {
			*calls = append(*calls, took)
		}
		b.progress("fork of %d: %.1f ms (%.1f ms per sandbox)", count, msOf(took), msOf(took/time.Duration(count)))
	}
	return summarize(per)
}

// pauseResume times PauseRuns pauses and resumes of sandbox id, checking after each
// resume that it runs commands.
func (b *runner) pauseResume(ctx context.Context, id string) {
	var pauses, resumes []time.Duration
	for i := 0; i < b.o.PauseRuns; i++ {
		start := time.Now()
		if err := b.c.call(ctx, "POST", "/v1/sandboxes/"+id+"/pause", "", nil); err != nil {
			b.r.Pause, b.r.Resume = failed(err), absent("no pause to resume from: "+failed(err).Error)
			return
		}
		pauses = append(pauses, time.Since(start))
		start = time.Now()
		if err := b.c.call(ctx, "POST", "/v1/sandboxes/"+id+"/resume", "", nil); err != nil {
			b.r.Pause, b.r.Resume = summarize(pauses), failed(err)
			return
		}
		resumes = append(resumes, time.Since(start))
		if err := b.c.exec(ctx, id, "true"); err != nil {
			b.r.Pause, b.r.Resume = summarize(pauses), absent("failed: the resumed sandbox runs no command: "+err.Error())
			return
		}
		b.progress("pause %.1f ms, resume %.1f ms", msOf(pauses[i]), msOf(resumes[i]))
	}
	b.r.Pause, b.r.Resume = summarize(pauses), summarize(resumes)
}

// failed is a measurement absent because of err: the server cannot (unsupported) or
// the operation failed.
func failed(err error) Stats {
	if why := unsupported(err); why != "" {
		return absent(why)
	}
	return absent("failed: " + err.Error())
}
