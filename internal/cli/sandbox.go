package cli

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	warren "github.com/warren-sh/warren/sdk/go"
)

func (a *app) sandboxCreate(args []string) error {
	fs := a.newFlags()
	template := fs.String("template", "base", "template to start from (see \"warren templates\")")
	timeout := fs.Int("timeout", 0, "seconds until the sandbox is stopped (0: server default)")
	env, md := kvFlag{}, kvFlag{}
	fs.Var(env, "env", "environment variable K=V (repeatable)")
	fs.Var(md, "metadata", "metadata label K=V (repeatable)")
	noInternet := fs.Bool("no-internet", false, "block outbound internet access")
	cpu := fs.Float64("cpu", 0, "CPU cores (0: server default)")
	mem := fs.Int64("memory-mb", 0, "memory in MiB (0: server default)")
	disk := fs.Int64("disk-mb", 0, "writable disk in MiB (0: server default)")
	procs := fs.Int64("max-processes", 0, "process limit (0: server default)")
	rt := fs.String("runtime", "", "runtime: gvisor or runc (default: the server's)")
	minIso := fs.String("min-isolation", "", "minimum isolation: container, sandbox or microvm")
	snapshot := fs.String("snapshot", "", "start from this snapshot (id or name; see \"warren snapshot list\") instead of a template")
	onTimeout := fs.String("on-timeout", "", "what happens at the timeout: kill (default) or pause")
	autoResume := fs.Bool("auto-resume", false, "resume the paused sandbox when a request comes for it through the proxy")
	var allowOut, denyOut listFlag
	fs.Var(&allowOut, "allow-out", "egress always allowed to: IPv4 address, CIDR, domain or *.domain (repeatable, comma-separated)")
	fs.Var(&denyOut, "deny-out", "egress denied to, unless allowed (0.0.0.0/0: everything else; repeatable, comma-separated)")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *timeout < 0 {
		return usagef("--timeout must not be negative")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *snapshot != "" {
		if set["template"] {
			return usagef("--template and --snapshot exclude each other: a sandbox started from a snapshot runs on the snapshot's template")
		}
		*template = ""
	}
	if *onTimeout != "" && *onTimeout != "kill" && *onTimeout != "pause" {
		return usagef("--on-timeout %q: use kill or pause", *onTimeout)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	opts := warren.SandboxOptions{
		Template: *template,
		Timeout:  time.Duration(*timeout) * time.Second,
		Env:      env,
		Metadata: md,
		Limits:   warren.Limits{CPUCores: *cpu, MemoryMB: *mem, DiskMB: *disk, MaxProcesses: *procs},
		Runtime:  *rt, MinIsolation: *minIso,
		Snapshot: *snapshot,
	}
	if *onTimeout != "" || *autoResume {
		opts.Lifecycle = &warren.Lifecycle{OnTimeout: *onTimeout, AutoResume: *autoResume}
	}
	if *noInternet {
		opts.Internet = warren.Ptr(false)
	}
	if len(allowOut)+len(denyOut) > 0 {
		opts.Network = &warren.NetworkPolicy{AllowOut: allowOut, DenyOut: denyOut}
	}
	sbx, err := c.CreateSandbox(a.ctx, opts)
	if err != nil {
		return err
	}
	sb := sbx.Info()
	if a.json() {
		return a.printJSON(sb)
	}
	if err := a.showSandbox(&sb); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "\nRun a command: warren exec %s -- bash -c 'echo hello'\n", sb.ID)
	return nil
}

func (a *app) showSandbox(sb *warren.SandboxInfo) error {
	internet := "on"
	if !sb.Internet {
		internet = "off"
	}
	l := sb.Limits
	return a.fields([][2]string{
		{"id", sb.ID},
		{"template", sb.Template},
		{"state", sb.State},
		{"end reason", orDash(sb.EndReason)},
		{"runtime", orDash(sb.Runtime)},
		{"internet", internet},
		{"network", fmtNetwork(sb.Network)},
		{"limits", fmt.Sprintf("cpu %g, memory %d MiB, disk %d MiB, processes %d", l.CPUCores, l.MemoryMB, l.DiskMB, l.MaxProcesses)},
		{"metadata", fmtMap(sb.Metadata)},
		{"env", orDash(strings.Join(sb.EnvKeys, ","))},
		{"created", fmtTime(sb.CreatedAt)},
		{"started", fmtTime(sb.StartedAt)},
		{"ends", fmtTime(sb.EndsAt)},
		{"stopped", fmtTime(sb.StoppedAt)},
		{"paused", fmtTime(sb.PausedAt)},
		{"on timeout", fmtLifecycle(sb.Lifecycle)},
	})
}

// fmtNetwork is an egress policy in one line ("-" when there is none).
func fmtNetwork(n warren.NetworkPolicy) string {
	var parts []string
	if len(n.AllowOut) > 0 {
		parts = append(parts, "allow "+strings.Join(n.AllowOut, ","))
	}
	if len(n.DenyOut) > 0 {
		parts = append(parts, "deny "+strings.Join(n.DenyOut, ","))
	}
	return orDash(strings.Join(parts, "; "))
}

// fmtLifecycle says what happens at the timeout: "kill", or "pause" with auto-resume.
func fmtLifecycle(l *warren.Lifecycle) string {
	if l == nil {
		return "kill"
	}
	s := orDash(l.OnTimeout)
	if l.AutoResume {
		s += " (auto-resume)"
	}
	return s
}

func (a *app) sandboxList(args []string) error {
	fs := a.newFlags()
	var states listFlag
	fs.Var(&states, "state", "only these states: starting, running, paused, stopped, error (repeatable or comma-separated)")
	md := kvFlag{}
	fs.Var(md, "metadata", "only sandboxes with metadata K=V (repeatable)")
	limit := fs.Int("limit", 0, "list at most N sandboxes (0: all)")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *limit < 0 {
		return usagef("--limit must not be negative")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	// Follow the cursor until the end or the limit.
	all := []warren.SandboxInfo{}
	opts := warren.ListOptions{States: states, Metadata: md, Limit: 100}
	if *limit > 0 {
		opts.Limit = min(100, *limit)
	}
	for sb, err := range c.AllSandboxes(a.ctx, opts) {
		if err != nil {
			return err
		}
		all = append(all, *sb)
		if *limit > 0 && len(all) >= *limit {
			break
		}
	}
	if a.json() {
		return a.printJSON(all)
	}
	rows := make([][]string, 0, len(all))
	for _, sb := range all {
		rows = append(rows, []string{sb.ID, sb.Template, sb.State, fmtTime(sb.CreatedAt), fmtTime(sb.EndsAt), fmtMap(sb.Metadata)})
	}
	return a.table([]string{"ID", "TEMPLATE", "STATE", "CREATED", "ENDS", "METADATA"}, rows)
}

func (a *app) sandboxGet(args []string) error {
	pos, err := a.parse(a.newFlags(), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	sb, err := c.GetSandbox(a.ctx, pos[0])
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(sb)
	}
	return a.showSandbox(sb)
}

func (a *app) sandboxKill(args []string) error {
	pos, err := a.parse(a.newFlags(), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if err := c.Sandbox(pos[0]).Kill(a.ctx); err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(map[string]any{"id": pos[0], "killed": true})
	}
	fmt.Fprintf(a.stdout, "killed %s\n", pos[0])
	return nil
}

func (a *app) sandboxTimeout(args []string) error {
	pos, err := a.parse(a.newFlags(), args, 2, 2)
	if err != nil {
		return err
	}
	secs, err := strconv.Atoi(pos[1])
	if err != nil || secs < 1 {
		return usagef("SECONDS must be a whole number of seconds, at least 1; got %q", pos[1])
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	sb, err := c.Sandbox(pos[0]).SetTimeout(a.ctx, time.Duration(secs)*time.Second)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(sb)
	}
	fmt.Fprintf(a.stdout, "sandbox %s now ends at %s\n", sb.ID, fmtTime(sb.EndsAt))
	return nil
}

func (a *app) sandboxNetwork(args []string) error {
	fs := a.newFlags()
	var allowOut, denyOut listFlag
	fs.Var(&allowOut, "allow-out", "egress always allowed to: IPv4 address, CIDR, domain or *.domain (repeatable, comma-separated)")
	fs.Var(&denyOut, "deny-out", "egress denied to, unless allowed (0.0.0.0/0: everything else; repeatable, comma-separated)")
	clearAll := fs.Bool("clear", false, "remove the policy (internet access alone decides)")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	switch {
	case *clearAll && len(allowOut)+len(denyOut) > 0:
		return usagef("--clear and --allow-out/--deny-out exclude each other")
	case !*clearAll && len(allowOut)+len(denyOut) == 0:
		return usagef("give the new policy with --allow-out and --deny-out (it replaces the old one), or --clear to remove it")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	sb, err := c.Sandbox(pos[0]).SetNetwork(a.ctx, warren.NetworkPolicy{AllowOut: allowOut, DenyOut: denyOut})
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(sb)
	}
	fmt.Fprintf(a.stdout, "sandbox %s network: %s\n", sb.ID, fmtNetwork(sb.Network))
	return nil
}

func (a *app) sandboxPause(args []string) error {
	pos, err := a.parse(a.newFlags(), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	sb, err := c.Sandbox(pos[0]).Pause(a.ctx)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(sb)
	}
	fmt.Fprintf(a.stdout, "paused %s\n", sb.ID)
	fmt.Fprintf(a.stderr, "Resume it: warren sandbox resume %s\n", sb.ID)
	return nil
}

func (a *app) sandboxResume(args []string) error {
	fs := a.newFlags()
	timeout := fs.Int("timeout", 0, "seconds until the resumed sandbox is stopped (0: server default)")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *timeout < 0 {
		return usagef("--timeout must not be negative")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	sb, err := c.Sandbox(pos[0]).Resume(a.ctx, time.Duration(*timeout)*time.Second)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(sb)
	}
	fmt.Fprintf(a.stdout, "resumed %s, ends at %s\n", sb.ID, fmtTime(sb.EndsAt))
	return nil
}

// maxFork is the most sandboxes one fork starts (the API's bound).
const maxFork = 20

func (a *app) sandboxFork(args []string) error {
	fs := a.newFlags()
	count := fs.Int("count", 1, fmt.Sprintf("how many copies to start (1 to %d)", maxFork))
	timeout := fs.Int("timeout", 0, "seconds until each copy is stopped (0: server default)")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *count < 1 || *count > maxFork {
		return usagef("--count must be between 1 and %d; got %d", maxFork, *count)
	}
	if *timeout < 0 {
		return usagef("--timeout must not be negative")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	// Some copies may start and others not (quota, node room): the ones that started
	// are printed, and the failures make the exit code 1.
	forks, err := c.Sandbox(pos[0]).Fork(a.ctx, warren.ForkOptions{Count: *count, Timeout: time.Duration(*timeout) * time.Second})
	var partial *warren.ForkError
	if err != nil && !errors.As(err, &partial) {
		return err
	}
	infos := make([]warren.SandboxInfo, len(forks))
	for i, f := range forks {
		infos[i] = f.Info()
	}
	if a.json() {
		if perr := a.printJSON(infos); perr != nil {
			return perr
		}
	} else {
		rows := make([][]string, 0, len(infos))
		for _, sb := range infos {
			rows = append(rows, []string{sb.ID, sb.Template, sb.State, fmtTime(sb.EndsAt)})
		}
		if terr := a.table([]string{"ID", "TEMPLATE", "STATE", "ENDS"}, rows); terr != nil {
			return terr
		}
	}
	if partial != nil {
		for _, f := range partial.Failures {
			fmt.Fprintf(a.stderr, "copy %d did not start: %s\n", f.Index+1, f.Message)
		}
		return fmt.Errorf("%d of %d copies did not start; the %d listed run", len(partial.Failures), *count, len(infos))
	}
	return nil
}
