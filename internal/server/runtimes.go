package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/warren-sh/warren/internal/runtime"
	"github.com/warren-sh/warren/internal/runtime/gvisor"
	"github.com/warren-sh/warren/internal/runtime/runc"
	"github.com/warren-sh/warren/internal/template"
)

// buildDrivers makes every runtime this host can run and picks the default: the one
// configured, or with "auto" the strongest available (no microVM driver ships yet, so
// gVisor, else runc). A configured runtime that cannot run is an error, never a silent
// fallback to weaker isolation.
func buildDrivers(c Config, out io.Writer, log *slog.Logger) (runtime.Driver, []runtime.Driver, error) {
	parent := "/" + c.NetworkName
	gv, gerr := gvisor.New(gvisor.Config{Runsc: c.Runsc, Root: filepath.Join(c.DataDir, "runsc"), Platform: c.RunscPlatform, CgroupParent: parent, Log: log})
	rc, rerr := runc.New(runc.Config{Root: filepath.Join(c.DataDir, "runc"), CgroupParent: parent, Log: log})
	var all []runtime.Driver
	if gerr == nil {
		all = append(all, gv)
	}
	if rerr == nil {
		all = append(all, rc)
	}
	switch c.Runtime {
	case "microvm":
		return nil, nil, errors.New("--runtime microvm: this build ships no microVM driver (microVMs need hardware virtualization and a VMM; docs/ARCHITECTURE.md describes how a Firecracker driver plugs in); use auto or gvisor")
	case "gvisor":
		if gerr != nil {
			return nil, nil, fmt.Errorf("--runtime gvisor: %w", gerr)
		}
		return gv, all, nil
	case "runc":
		if rerr != nil {
			return nil, nil, fmt.Errorf("--runtime runc: %w", rerr)
		}
		fmt.Fprintln(out, "Default runtime: runc (shares the host kernel: use it for trusted work only)")
		return rc, all, nil
	}
	switch {
	case gerr == nil:
		return gv, all, nil
	case rerr == nil:
		fmt.Fprintf(out, "gVisor is not available (%v); runtime auto falls back to runc, which shares the host kernel\n", gerr)
		log.Warn("runtime auto: gVisor not available, using runc", "err", gerr)
		return rc, all, nil
	}
	return nil, nil, errors.Join(errors.New("no sandbox runtime works on this host; run 'warren doctor'"), gerr, rerr)
}

// prepareShifted builds the uid-shifted copy of the base template that user-namespaced
// runtimes (runc) need, so their first sandbox does not wait for it.
func prepareShifted(ctx context.Context, drivers []runtime.Driver, b *template.Builder, log *slog.Logger) {
	rootfs, ok := b.IsReady(template.Base())
	if !ok {
		return
	}
	for _, d := range drivers {
		if sh, ok := d.(runtime.IDShifter); ok {
			if _, err := sh.ShiftedRootFS(ctx, rootfs); err != nil && ctx.Err() == nil {
				log.Error("preparing the uid-shifted base template", "runtime", d.Capabilities().Name, "err", err)
			}
		}
	}
}
