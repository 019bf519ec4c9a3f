package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/network"
	"github.com/warren-sh/warren/internal/runtime/gvisor"
	"github.com/warren-sh/warren/internal/runtime/oci"
)

// starts measures the baseline, cold creates and warm creates, interleaved so that
// all three see the same machine.
func (b *runner) starts(ctx context.Context) error {
	// One warm-up of each, not counted: the first run pays for page-cache misses. The
	// warm-up sandbox also tells the default limits.
	if _, err := b.o.baseline(ctx, -1); err != nil {
		return err
	}
	if _, err := b.o.baselineNonet(ctx, -1); err != nil {
		return err
	}
	sb, _, _, err := b.createToOutput(ctx, `{"template":"base"}`)
	if err != nil {
		return err
	}
	coldBody := `{"template":"base"}`
	if sb.Limits.MemoryMB > 1 {
		// Pool members have the default limits: one MiB less is a create no pool serves.
		coldBody = fmt.Sprintf(`{"template":"base","limits":{"memory_mb":%d}}`, sb.Limits.MemoryMB-1)
	}
	warmWhy := ""
	if _, err := b.c.pool(ctx, "base"); err != nil {
		if !errors.Is(err, errNoPoolStats) {
			return err
		}
		warmWhy = "the server keeps no warm pool of the base template (start warren serve with --warm-pool base=4), so no create can be a pool claim"
	}
	var base, nonet, cold, create, warm []time.Duration
	misses, unsettled := 0, 0
	for i := 0; i < b.o.N; i++ {
		if warmWhy == "" {
			// The last warm claim set off a refill: let it end first, and the new
			// member's after-start work (its spare shell) too, so that the baselines
			// and the cold create see the same quiet machine.
			full, err := b.c.waitPoolFull(ctx, "base", b.o.settleWait)
			if err != nil {
				return err
			}
			if !full {
				unsettled++
			} else if err := sleepCtx(ctx, b.o.settleAfter); err != nil {
				return err
			}
		}
		d, err := b.o.baseline(ctx, i)
		if err != nil {
			return err
		}
		base = append(base, d)
		dn, err := b.o.baselineNonet(ctx, i)
		if err != nil {
			return err
		}
		nonet = append(nonet, dn)
		_, total, createOnly, err := b.createToOutput(ctx, coldBody)
		if err != nil {
			return fmt.Errorf("cold create: %w", err)
		}
		cold, create = append(cold, total), append(create, createOnly)
		line := fmt.Sprintf("run %2d/%d: bare runsc %6.1f ms (no network %6.1f ms), cold %6.1f ms (create %6.1f ms)", i+1, b.o.N, msOf(d), msOf(dn), msOf(total), msOf(createOnly))
		if warmWhy == "" {
			w, claimed, err := b.warmOnce(ctx)
			if err != nil {
				return fmt.Errorf("warm create: %w", err)
			}
			if claimed {
				warm = append(warm, w)
				line += fmt.Sprintf(", warm %6.1f ms", msOf(w))
			} else {
				misses++
				line += ", warm: not a pool claim (pool empty), not counted"
			}
		}
		b.progress("%s", line)
	}
	r := b.r
	r.Baseline, r.BaselineNonet = summarize(base), summarize(nonet)
	r.Cold, r.WarrenCreate = summarize(cold), summarize(create)
	r.WarrenCreateToFirstOutput = r.Cold
	switch {
	case warmWhy != "":
		r.Warm = absent(warmWhy)
	case len(warm) == 0:
		r.Warm = absent(fmt.Sprintf("none of %d creates of base was a pool claim: the pool never had a member ready", misses))
	default:
		r.Warm = summarize(warm)
	}
	r.WarmMisses = misses
	r.PoolUnsettled = unsettled
	r.RatioP50 = ratio(r.Cold.P50, r.Baseline.P50)
	r.RatioP95 = ratio(r.Cold.P95, r.Baseline.P95)
	r.RatioWarmP50 = ratio(r.Warm.P50, r.Baseline.P50)
	return nil
}

// warmOnce creates a base sandbox once the pool has a member ready, and reports
// whether the pool's claim counter moved (only then was it warm).
func (b *runner) warmOnce(ctx context.Context) (time.Duration, bool, error) {
	// The cold sandbox was just killed: let its teardown end (Options.settleAfter).
	if err := sleepCtx(ctx, b.o.settleAfter); err != nil {
		return 0, false, err
	}
	before, err := b.c.waitPoolReady(ctx, "base", 30*time.Second)
	if err != nil {
		return 0, false, err
	}
	_, total, _, err := b.createToOutput(ctx, `{"template":"base"}`)
	if err != nil {
		return 0, false, err
	}
	after, err := b.c.pool(ctx, "base")
	if err != nil {
		return 0, false, err
	}
	return total, after.Claims > before.Claims, nil
}

// createToOutput creates a sandbox from body, runs /bin/echo in it with streaming and
// times until the first output arrives; the sandbox is killed afterwards, untimed.
func (b *runner) createToOutput(ctx context.Context, body string) (sb sandbox, total, create time.Duration, err error) {
	start := time.Now()
	sb, err = b.c.create(ctx, body)
	if err != nil {
		return sb, 0, 0, err
	}
	create = time.Since(start)
	defer b.c.kill(ctx, sb.ID)
	if err := b.c.firstOutput(ctx, sb.ID); err != nil {
		return sb, 0, 0, err
	}
	return sb, time.Since(start), create, nil
}

// baselineNet is the network a baseline run gets: like a Warren sandbox's (see
// network.Manager.Attach: a namespace with a veth pair, an address on each side, lo and
// the veth up, a default route via the host side), without the node's nftables.
type baselineNet struct {
	m    *network.Manager
	slot int
	// workaround is true for a runsc with gVisor #10704 (see gvisor.Driver.command).
	workaround bool
}

// newBaselineNet picks a /30 of 10.250.0.0/16 (not the server's pool, not the tests'
// fake internet 198.18/15) by process id, so two benches on one host do not collide.
func newBaselineNet(ctx context.Context, runsc string) (*baselineNet, error) {
	m, err := network.New(network.Config{Name: "wbench", Pool: netip.MustParsePrefix("10.250.0.0/16"), DenyCIDRs: []netip.Prefix{}, DNS: []netip.Addr{}})
	if err != nil {
		return nil, err
	}
	v, err := gvisor.ReadVersion(ctx, runsc)
	if err != nil {
		return nil, fmt.Errorf("baseline: reading the version of %s: %w", runsc, err)
	}
	return &baselineNet{m: m, slot: os.Getpid() % m.Slots(), workaround: v.NeedsNetnsWorkaround()}, nil
}

// baselineOnce runs `runsc run` of /bin/echo in the root filesystem and times it until
// the line arrives. With bn it runs in its own network namespace with --network=sandbox,
// as a Warren sandbox does; without, with --network=none. Everything it made (bundle,
// runsc state, namespace, veths) is removed before it returns.
func baselineOnce(ctx context.Context, o Options, tmp string, i int, bn *baselineNet) (_ time.Duration, err error) {
	kind := "nonet"
	if bn != nil {
		kind = "net"
	}
	id := fmt.Sprintf("warrenbench%d%s%d", os.Getpid(), kind, i+1)
	bundle := filepath.Join(tmp, id)
	defer os.RemoveAll(bundle)
	sp := &oci.Spec{
		OCIVersion: "1.0.2",
		Process:    oci.Process{Args: []string{"/bin/echo", "hello"}, Env: []string{"PATH=/usr/bin:/bin"}, Cwd: "/"},
		Root:       oci.Root{Path: o.RootFS, Readonly: true},
		Mounts:     []oci.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
		Linux:      oci.Linux{Namespaces: []oci.Namespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}}},
	}
	root := filepath.Join(tmp, "runsc-root")
	args := []string{"--root=" + root, "--network=none", "run", "--bundle", bundle, id}
	if bn != nil {
		a, err := bn.m.Attach(ctx, id, bn.slot, false)
		if err != nil {
			return 0, fmt.Errorf("baseline network: %w", err)
		}
		defer func() {
			if derr := bn.m.Detach(context.WithoutCancel(ctx), id, -1); derr != nil && err == nil {
				err = fmt.Errorf("baseline network cleanup: %w", derr)
			}
		}()
		sp.Linux.Namespaces = append(sp.Linux.Namespaces, oci.Namespace{Type: "network", Path: a.NetNSPath})
		args[1] = "--network=sandbox"
	}
	if err := oci.WriteBundle(bundle, sp); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, o.Runsc, args...)
	if bn != nil && bn.workaround {
		// As gvisor.Driver.command: a private mount namespace with an empty tmpfs over
		// /proc/sys/net, or this runsc takes the namespace for the root one.
		script := `mount -t tmpfs none /proc/sys/net && exec "$0" "$@"`
		cmd = exec.CommandContext(ctx, "unshare", append([]string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, o.Runsc}, args...)...)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	elapsed := time.Since(start)
	werr := cmd.Wait()
	_ = exec.Command(o.Runsc, "--root="+root, "delete", "-force", id).Run()
	if strings.TrimSpace(line) != "hello" {
		return 0, fmt.Errorf("baseline runsc run (%s) printed %q (%v): %s", args[1], line, werr, stderr.String())
	}
	return elapsed, nil
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
