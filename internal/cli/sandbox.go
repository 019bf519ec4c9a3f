package cli

import (
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
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *timeout < 0 {
		return usagef("--timeout must not be negative")
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
	}
	if *noInternet {
		opts.Internet = warren.Ptr(false)
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
		{"limits", fmt.Sprintf("cpu %g, memory %d MiB, disk %d MiB, processes %d", l.CPUCores, l.MemoryMB, l.DiskMB, l.MaxProcesses)},
		{"metadata", fmtMap(sb.Metadata)},
		{"env", orDash(strings.Join(sb.EnvKeys, ","))},
		{"created", fmtTime(sb.CreatedAt)},
		{"started", fmtTime(sb.StartedAt)},
		{"ends", fmtTime(sb.EndsAt)},
		{"stopped", fmtTime(sb.StoppedAt)},
	})
}

func (a *app) sandboxList(args []string) error {
	fs := a.newFlags()
	var states listFlag
	fs.Var(&states, "state", "only these states: starting, running, stopped, error (repeatable or comma-separated)")
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
