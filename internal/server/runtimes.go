package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/gvisor"
	"github.com/warren-sh/warren/internal/runtime/runc"
)

// buildDrivers makes every runtime this host can run (the node keeps them all, to
// recover and tear down sandboxes of any runtime), checks that each runtime the
// operator enables runs, and picks the default: the one configured, or with "auto" the
// strongest enabled one (with no list: the strongest available; no microVM driver
// ships yet, so gVisor, else runc). It returns the names offered to requests, the
// default first. A configured runtime that cannot run is an error, never a silent
// fallback to weaker isolation.
func buildDrivers(ctx context.Context, c Config, out io.Writer, log *slog.Logger) (def runtime.Driver, all []runtime.Driver, enabled []string, err error) {
	parent := "/" + c.NetworkName
	// make run builds runsc (once per pinned version) while this server builds the base
	// template; the runtimes start once it is installed.
	err = gvisor.WaitForBuild(ctx, c.RunscCache, func() {
		fmt.Fprintf(out, "Waiting for the runsc build (scripts/install-deps.sh, log in %s/build.log) to finish...\n", c.RunscCache)
	})
	switch {
	case errors.Is(err, gvisor.ErrBuildFailed):
		// Said, not fatal: a runsc already installed (or runc) may still serve.
		fmt.Fprintf(out, "warning: %v\n", err)
		log.Warn("runsc build failed", logkey.Err, err)
	case err != nil:
		return nil, nil, nil, err
	}
	gv, gerr := gvisor.New(gvisor.Config{Runsc: c.Runsc, Root: filepath.Join(c.DataDir, "runsc"), Platform: c.RunscPlatform, CgroupParent: parent, Log: log})
	rc, rerr := runc.New(runc.Config{Root: filepath.Join(c.DataDir, "runc"), CgroupParent: parent, Log: log})
	if gerr == nil {
		all = append(all, gv)
	}
	if rerr == nil {
		all = append(all, rc)
	}
	byName := map[string]struct {
		d   runtime.Driver
		err error
	}{"gvisor": {gv, gerr}, "runc": {rc, rerr}}
	const noMicroVM = "this build ships no microVM driver (microVMs need hardware virtualization and a VMM; docs/ARCHITECTURE.md describes how a Firecracker driver plugs in)"
	for _, name := range c.Runtimes {
		if name == "microvm" {
			return nil, nil, nil, fmt.Errorf("--runtimes microvm: %s; leave it out", noMicroVM)
		}
		if err := byName[name].err; err != nil {
			return nil, nil, nil, fmt.Errorf("--runtimes %s: runtime %s cannot run on this host: %w (run 'warren doctor', or leave it out of --runtimes)", strings.Join(c.Runtimes, ","), name, err)
		}
	}
	switch c.Runtime {
	case "microvm":
		return nil, nil, nil, fmt.Errorf("--runtime microvm: %s; use auto or gvisor", noMicroVM)
	case "gvisor":
		if gerr != nil {
			return nil, nil, nil, fmt.Errorf("--runtime gvisor: %w", gerr)
		}
		def = gv
	case "runc":
		if rerr != nil {
			return nil, nil, nil, fmt.Errorf("--runtime runc: %w", rerr)
		}
		fmt.Fprintln(out, "Default runtime: runc (shares the host kernel: use it for trusted work only)")
		def = rc
	default: // auto
		switch {
		case len(c.Runtimes) > 0:
			// The strongest enabled one; every one of them runs (checked above).
			def = rc
			if slices.Contains(c.Runtimes, "gvisor") {
				def = gv
			}
		case gerr == nil:
			def = gv
		case rerr == nil:
			fmt.Fprintf(out, "gVisor is not available (%v); runtime auto falls back to runc, which shares the host kernel\n", gerr)
			log.Warn("runtime auto: gVisor not available, using runc", logkey.Err, gerr)
			def = rc
		default:
			return nil, nil, nil, errors.Join(errors.New("no sandbox runtime works on this host; run 'warren doctor'"), gerr, rerr)
		}
	}
	defName := def.Capabilities().Name
	enabled = []string{defName}
	for _, name := range c.Runtimes {
		if name != defName {
			enabled = append(enabled, name)
		}
	}
	if len(enabled) > 1 {
		fmt.Fprintf(out, "Runtimes offered to requests: %s (default %s)\n", strings.Join(enabled, ", "), defName)
	}
	return def, all, enabled, nil
}
