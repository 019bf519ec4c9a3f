package template

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// build builds r into a temporary directory and renames it into place.
// Preconditions: the lock of r is held and r is not ready.
func (b *Builder) build(ctx context.Context, r Recipe, p *progress) (rootfs string, err error) {
	id, final := r.ID(), b.Dir(r)
	if b.Run == nil && os.Geteuid() != 0 {
		return "", fmt.Errorf("building template %s needs root (debootstrap and chroot do): run warren as root", id)
	}
	// Leftovers of a build that was killed, or an entry whose marker went missing.
	stale, _ := filepath.Glob(filepath.Join(b.CacheDir, tempPrefix+id+"-*"))
	if _, err := os.Lstat(final); err == nil {
		stale = append(stale, final)
	}
	for _, dir := range stale {
		if err := removeTree(dir); err != nil {
			return "", fmt.Errorf("building template %s: removing a stale build: %w", id, err)
		}
	}
	if b.DebCache != "" {
		if err := os.MkdirAll(b.DebCache, 0o755); err != nil {
			return "", fmt.Errorf("building template %s: creating the .deb cache: %w", id, err)
		}
	}
	tmp, err := os.MkdirTemp(b.CacheDir, tempPrefix+id+"-")
	if err != nil {
		return "", fmt.Errorf("building template %s: %w", id, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("building template %s: %w", id, err)
	}
	done := false
	defer func() {
		if done {
			return
		}
		if rmErr := removeTree(tmp); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up the failed build: %w", rmErr))
		}
	}()

	start := time.Now()
	log := b.log().With("template", id)
	log.Info("building template", "suite", r.Suite, "variant", r.Variant, "mirror", r.mirror())
	dir := filepath.Join(tmp, "rootfs")
	pkgs := r.packages()
	p.phase("building %s: debootstrap %s (%s) from %s plus %d packages", id, r.Suite, orDefault(r.Variant, "default variant"), r.mirror(), len(pkgs))
	args := []string{}
	if r.Variant != "" {
		args = append(args, "--variant="+r.Variant)
	}
	if len(pkgs) > 0 {
		args = append(args, "--include="+strings.Join(pkgs, ","))
	}
	if b.DebCache != "" {
		args = append(args, "--cache-dir="+b.DebCache)
	}
	args = append(args, r.Suite, dir, r.mirror())
	if err := b.debootstrap(ctx, p, args); err != nil {
		return "", b.failure(ctx, id, "debootstrap", err, p,
			fmt.Sprintf("check that %s is reachable and that debootstrap is installed (apt-get install debootstrap)", mirrorHost(r.mirror())))
	}
	if r.Script != "" {
		p.phase("running recipe script")
		if err := b.run(ctx, p, "chroot", dir, "/bin/sh", "-c", r.Script); err != nil {
			return "", b.failure(ctx, id, "the recipe script", err, p,
				"fix the recipe's Script (it runs as root with /bin/sh -c inside the new root filesystem)")
		}
	}
	// The real runner uses a private mount namespace, so nothing can be left mounted;
	// this check guards against runners that do not.
	if err := unmountUnder(tmp); err != nil {
		return "", fmt.Errorf("building template %s: %w", id, err)
	}
	size, err := diskUsage(dir)
	if err != nil {
		return "", fmt.Errorf("building template %s: measuring the root filesystem: %w", id, err)
	}
	took := time.Since(start)
	m := Marker{Name: r.Name, Hash: r.Hash(), BuiltAt: time.Now().UTC(), SizeBytes: size, BuildSeconds: took.Seconds(), Recipe: r}
	if err := writeMarker(tmp, m); err != nil {
		return "", fmt.Errorf("building template %s: %w", id, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("building template %s: moving the build into place: %w", id, err)
	}
	done = true
	p.phase("done in %ds, %d MB", int(took.Round(time.Second).Seconds()), size/1e6)
	log.Info("built template", "seconds", took.Seconds(), "size_bytes", size)
	return filepath.Join(final, "rootfs"), nil
}

// debootstrap runs debootstrap. Builds of different recipes share DebCache, and
// debootstrap writes downloads straight to their final name there, so a lock on the
// cache serializes this step across builders.
func (b *Builder) debootstrap(ctx context.Context, p *progress, args []string) error {
	if b.DebCache != "" {
		unlock, err := lockFile(ctx, filepath.Join(b.DebCache, ".lock"), func() {
			p.phase("waiting for another build to finish with the .deb cache %s", b.DebCache)
		})
		if err != nil {
			return err
		}
		defer unlock()
	}
	return b.run(ctx, p, "debootstrap", args...)
}

// failure builds the error for a failed build step: what failed, how, what to do, and
// the last lines of the step's output.
func (b *Builder) failure(ctx context.Context, id, step string, err error, p *progress, fix string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("building template %s: %s interrupted: %w", id, step, ctx.Err())
	}
	if errors.Is(err, exec.ErrNotFound) && step == "debootstrap" {
		return fmt.Errorf("building template %s: debootstrap is not installed: run apt-get install debootstrap", id)
	}
	how := err.Error()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		how = fmt.Sprintf("exit %d", ee.ExitCode())
	}
	return fmt.Errorf("building template %s: %s failed (%s): %s%s", id, step, how, fix, formatTail(p.lastLines()))
}

// run runs one build command through b.Run or the real runner.
func (b *Builder) run(ctx context.Context, p *progress, name string, args ...string) error {
	p.lastLines() // quote only this command's output on failure
	if b.Run != nil {
		return b.Run(ctx, name, args...)
	}
	err := execRun(ctx, p, name, args...)
	p.flush()
	return err
}

// execRun runs a command with its combined output going to p. The command gets a private
// mount namespace (debootstrap mounts /proc, /sys and, inside containers, /dev in the
// target; those mounts vanish with the namespace even if the command is killed) and its
// own process group, which is killed as a whole when ctx ends.
func execRun(ctx context.Context, p *progress, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = p, p
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == "PATH" || k == "LANG" || k == "LC_ALL" || k == "DEBIAN_FRONTEND"
	}),
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8", "LC_ALL=C.UTF-8",
		"DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true",
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Unshareflags: syscall.CLONE_NEWNS}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd.Run()
}

func writeMarker(dir string, m Marker) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, markerName))
	if err != nil {
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// removeTree unmounts anything mounted below dir and then deletes it. It refuses to
// delete when a mount remains: deleting through a bind mount of the host's /dev or /proc
// would damage the host.
func removeTree(dir string) error {
	if err := unmountUnder(dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// unmountUnder detaches every mount at or below dir, deepest first, and checks that none
// is left.
func unmountUnder(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	mounts, err := mountsUnder(real)
	if err != nil || len(mounts) == 0 {
		return err
	}
	for _, m := range mounts {
		_ = syscall.Unmount(m, syscall.MNT_DETACH) // checked below
	}
	if left, err := mountsUnder(real); err != nil || len(left) > 0 {
		return errors.Join(err, fmt.Errorf("refusing to delete %s: %s is still mounted; unmount it (umount -l) and retry", dir, strings.Join(left, ", ")))
	}
	return nil
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out, sc.Err()
}

// unescapeMountinfo undoes the octal escapes (\040 for space, ...) of /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if c, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(c))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// diskUsage returns the bytes allocated to the files below dir, counting hard links once
// (what du -s reports).
func diskUsage(dir string) (int64, error) {
	var total int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			total += fi.Size()
			return nil
		}
		if st.Nlink > 1 && !fi.IsDir() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		total += st.Blocks * 512
		return nil
	})
	return total, err
}

// mirrorHost returns the host part of a mirror URL for messages.
func mirrorHost(mirror string) string {
	if u, err := url.Parse(mirror); err == nil && u.Host != "" {
		return u.Host
	}
	return mirror
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
