package template

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/warren-sh/warren/internal/logkey"
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
	log := b.log().With(logkey.Template, id)
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
	if apt := r.aptPackages(); len(apt) > 0 {
		p.phase("installing %d packages with apt-get", len(apt))
		if err := b.aptInstall(ctx, p, dir, apt); err != nil {
			return "", b.failure(ctx, id, "apt-get install", err, p,
				fmt.Sprintf("check that %s is reachable and that every AptPackages entry exists in %s", mirrorHost(r.mirror()), r.Suite))
		}
	}
	if len(r.Files) > 0 {
		p.phase("writing %d files", len(r.Files))
		if err := writeFiles(dir, r.Files); err != nil {
			return "", fmt.Errorf("building template %s: writing the recipe's files: %w", id, err)
		}
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
	m := Marker{Name: r.Name, Hash: r.Hash(), BuiltAt: time.Now().UTC(), SizeBytes: size, BuildSeconds: took.Seconds(), StartCmd: r.StartCmd, Recipe: r}
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

// aptScript installs packages with apt-get in the root filesystem $1, with /proc mounted
// and, when $2 names the shared .deb cache, that cache bind-mounted as apt's archive
// directory (so apt reuses and keeps the .debs debootstrap and other builds downloaded).
// The mounts live in the runner's private mount namespace; they are also undone here so
// that a runner without one leaves nothing behind.
const aptScript = `set -eu
root=$1 cache=$2
shift 2
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
opts=
if [ -n "$cache" ]; then
	mkdir -p "$cache/partial" "$root/var/cache/warren-debs"
	mount --bind "$cache" "$root/var/cache/warren-debs"
	trap 'umount "$root/var/cache/warren-debs" "$root/proc" 2>/dev/null || true; rmdir "$root/var/cache/warren-debs" 2>/dev/null || true' EXIT
	opts=-oDir::Cache::Archives=/var/cache/warren-debs/
fi
chroot "$root" apt-get -q -oAPT::Sandbox::User=root update
chroot "$root" apt-get -q -y -oAPT::Sandbox::User=root $opts install --no-install-recommends "$@"
`

// aptInstall runs aptScript. Like debootstrap, it holds the .deb cache lock.
func (b *Builder) aptInstall(ctx context.Context, p *progress, rootfs string, pkgs []string) error {
	if b.DebCache != "" {
		unlock, err := lockFile(ctx, filepath.Join(b.DebCache, ".lock"), func() {
			p.phase("waiting for another build to finish with the .deb cache %s", b.DebCache)
		})
		if err != nil {
			return err
		}
		defer unlock()
	}
	args := append([]string{"-c", aptScript, "apt-install", rootfs, b.DebCache}, pkgs...)
	return b.run(ctx, p, "/bin/sh", args...)
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
	err := execRun(ctx, p, b.HideMounts, name, args...)
	p.flush()
	return err
}

// execRun runs a command with its combined output going to p. The command gets a private
// mount namespace (debootstrap mounts /proc, /sys and, inside containers, /dev in the
// target; those mounts vanish with the namespace even if the command is killed) and its
// own process group, which is killed as a whole when ctx ends. The namespace starts as a
// copy of the host's mounts: the ones below a directory of hide are unmounted in it
// before the command starts (see Builder.HideMounts).
func execRun(ctx context.Context, p *progress, hide []string, name string, args ...string) error {
	if len(hide) > 0 {
		args = append(append(append([]string{"-c", unmountScript, "sh", strconv.Itoa(len(hide))}, hide...), name), args...)
		name = "/bin/sh"
	}
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

// writeFiles writes files (rootfs path → content) below rootfs, in path order. It goes
// through an os.Root so that a symbolic link in the new root filesystem (Debian's /bin →
// usr/bin, or a hostile absolute one) can never make it write outside rootfs.
func writeFiles(rootfs string, files map[string]string) error {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	paths := slices.Sorted(maps.Keys(files))
	for _, p := range paths {
		rel := strings.TrimPrefix(p, "/")
		mode := fileMode(p)
		if dir := filepath.Dir(rel); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		if err := root.WriteFile(rel, []byte(files[p]), mode); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		// WriteFile applies the umask, and keeps the mode of a file that existed.
		if err := root.Chmod(rel, mode); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// fileMode is the mode of a recipe file: executable under /usr/local/bin.
func fileMode(p string) os.FileMode {
	if strings.HasPrefix(p, "/usr/local/bin/") {
		return 0o755
	}
	return 0o644
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

// unmountScript runs a command (after the count and the directories) once every mount
// below those directories is gone from the private mount namespace it runs in. Mount
// points come from /proc/self/mountinfo, where a space or a backslash in a path is an
// octal escape (\040): the directory is escaped to match, and a match turned
// back with printf %b; the deepest go first. A mount that cannot be unmounted stays, as
// it would without this.
const unmountScript = `n=$1; shift
while [ "$n" -gt 0 ]; do
	D=$(printf '%s/' "${1%/}" | sed 's/\\/\\134/g; s/ /\\040/g') awk 'index($5, ENVIRON["D"]) == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while IFS= read -r m; do
			umount -l "$(printf '%b' "$(printf '%s' "$m" | sed 's/\\\([0-7]\)/\\0\1/g')")" 2>/dev/null
		done
	shift; n=$((n - 1))
done
exec "$@"`
