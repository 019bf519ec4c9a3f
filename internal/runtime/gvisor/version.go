package gvisor

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

// The runsc Warren is tested with: scripts/install-deps.sh builds it from gVisor's Go
// module at PinnedVersion (the version is in scripts/runsc.version too; a test checks
// that the two agree) into DefaultBuildCache/<commit>/runsc and installs it as
// /usr/local/bin/runsc.
const (
	Module        = "gvisor.dev/gvisor"
	PinnedVersion = "v0.0.0-20260905035102-160fafc42237"
	// DefaultBuildCache is where scripts/install-deps.sh keeps its builds
	// (WARREN_RUNSC_CACHE overrides it there and in warren serve).
	DefaultBuildCache = "/var/cache/warren/runsc"
	// BuildLockName is the file in the build cache that scripts/install-deps.sh holds
	// (flock) while it builds and installs runsc.
	BuildLockName = "build.lock"
	// BuildFailedName is the file a failed background build leaves beside the lock,
	// saying what to do; a later successful run removes it.
	BuildFailedName = "build.failed"
)

// ErrBuildFailed is WaitForBuild's error when the last runsc build failed.
var ErrBuildFailed = errors.New("the runsc build of scripts/install-deps.sh failed")

// netnsFixedDate is the first source date (YYYYMMDD) assumed to have gVisor #10704 fixed:
// the issue was filed on 2024-07-30 against master, and Debian's 20240729 build has the
// bug. The fix landed soon after; builds from before this date keep the workaround, which
// is harmless where it is not needed.
const netnsFixedDate = "20241001"

// Version is what a runsc binary says about itself.
type Version struct {
	// Path is the binary.
	Path string
	// Module is the gvisor.dev/gvisor module version it was built from (Go's build
	// information), e.g. "v0.0.0-20260905035102-160fafc42237"; empty for a build that
	// was not made from the module (Debian's).
	Module string
	// Release is what `runsc --version` says ("0.0~20240729.0" for Debian's build), read
	// only when Module is empty; a module build says VERSION_MISSING.
	Release string
	// Date is the source date (YYYYMMDD) of the build, from Module or Release; empty when
	// unknown.
	Date string
}

// String names the version for people: the module version, else the release.
func (v Version) String() string {
	switch {
	case v.Module != "":
		return Module + "@" + v.Module
	case v.Release != "":
		return v.Release
	}
	return "unknown version"
}

// Pinned reports whether this is the build scripts/install-deps.sh installs.
func (v Version) Pinned() bool { return v.Module == PinnedVersion }

// Older reports whether the build's source is older than the pinned version's, or of
// unknown date.
func (v Version) Older() bool { return v.Date == "" || v.Date < dateOf(PinnedVersion) }

// NeedsNetnsWorkaround reports whether this runsc mistakes a network namespace for the
// root one on kernel 6.x (gVisor #10704; see Driver.command). Unknown builds are assumed
// to.
func (v Version) NeedsNetnsWorkaround() bool { return v.Date == "" || v.Date < netnsFixedDate }

var (
	// pseudoVersionRE finds the date of a Go pseudo-version (vX.Y.Z-yyyymmddhhmmss-commit).
	pseudoVersionRE = regexp.MustCompile(`-(\d{8})\d{6}-[0-9a-f]{12}$`)
	// releaseDateRE finds the date in a release name ("0.0~20240729.0", "release-20240729.0").
	releaseDateRE = regexp.MustCompile(`(?:^|[^0-9])(20\d{6})(?:[^0-9]|$)`)
)

func dateOf(moduleVersion string) string {
	if m := pseudoVersionRE.FindStringSubmatch(moduleVersion); m != nil {
		return m[1]
	}
	return ""
}

// ReadVersion reads runsc's version from its Go build information (cheap: no exec), and
// only for a build without module information from `runsc --version`.
func ReadVersion(ctx context.Context, runsc string) (Version, error) {
	v := Version{Path: runsc}
	if mod, ok := moduleVersion(runsc); ok {
		v.Module, v.Date = mod, dateOf(mod)
		return v, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, runsc, "--version").CombinedOutput()
	if err != nil {
		return v, fmt.Errorf("%s --version: %w: %s", runsc, err, strings.TrimSpace(string(out)))
	}
	first, _, _ := strings.Cut(string(out), "\n")
	v.Release = strings.TrimSpace(strings.TrimPrefix(first, "runsc version "))
	if d := dateOf(v.Release); d != "" {
		// scripts/install-deps.sh builds from a copy of the module (whose build
		// information says "(devel)") and stamps the module version in.
		v.Module, v.Date, v.Release = v.Release, d, ""
		return v, nil
	}
	if m := releaseDateRE.FindStringSubmatch(v.Release); m != nil {
		v.Date = m[1]
	}
	return v, nil
}

// moduleVersion returns the gvisor.dev/gvisor module version runsc was built from, if
// its build information records one (go install of gvisor.dev/gvisor/runsc@version
// does; Debian's build, made inside its source tree, does not).
func moduleVersion(runsc string) (string, bool) {
	bi, err := buildinfo.ReadFile(runsc)
	if err != nil {
		return "", false
	}
	mods := append([]*debug.Module{&bi.Main}, bi.Deps...)
	for _, m := range mods {
		if m.Path == Module && strings.HasPrefix(m.Version, "v") {
			return m.Version, true
		}
	}
	return "", false
}

// WaitForBuild waits while scripts/install-deps.sh builds and installs runsc (it holds
// the build lock in cache meanwhile), calling waiting once first if it has to wait. It
// returns at once when no build is running, and ErrBuildFailed (with what the script
// says to do) when the last background build failed.
func WaitForBuild(ctx context.Context, cache string, waiting func()) error {
	f, err := os.Open(filepath.Join(cache, BuildLockName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	for i := 0; ; i++ {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
			if b, err := os.ReadFile(filepath.Join(cache, BuildFailedName)); err == nil {
				return fmt.Errorf("%w: %s", ErrBuildFailed, strings.TrimSpace(string(b)))
			}
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("waiting for the runsc build: %w", err)
		}
		if i == 0 && waiting != nil {
			waiting()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
