package template

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/warren-sh/warren/internal/logkey"
)

// Default locations of the caches on a Warren host.
const (
	DefaultCacheDir = "/var/cache/warren/templates"
	DefaultDebCache = "/var/cache/warren/debs"
)

// markerName is the completion marker inside a cache entry; it is written before the
// entry is renamed into place, so an entry with a valid marker is complete.
const markerName = "ready.json"

// Marker is the content of a cache entry's ready.json.
type Marker struct {
	Name      string    `json:"name"`
	Hash      string    `json:"hash"`
	BuiltAt   time.Time `json:"built_at"`
	SizeBytes int64     `json:"size_bytes"`
	// BuildSeconds is the wall-clock duration of the build.
	BuildSeconds float64 `json:"build_seconds"`
	// StartCmd is the recipe's StartCmd: what the sandbox agent starts at boot.
	StartCmd string `json:"start_cmd,omitempty"`
	Recipe   Recipe `json:"recipe"`
}

// Builder builds templates into a cache directory. The zero value is not usable: set
// CacheDir. A Builder is safe for concurrent use, also across processes sharing CacheDir.
type Builder struct {
	// CacheDir holds one <name>-<hash> directory per built recipe, lock files and
	// temporary build directories. It must be on one file system (builds are renamed).
	CacheDir string
	// DebCache is debootstrap's --cache-dir: downloaded .debs are kept there and reused.
	// Empty means no .deb cache.
	DebCache string
	// Log receives build start and end records; nil discards them.
	Log *slog.Logger
	// Progress receives human-readable progress lines prefixed with "[template <name>] ";
	// nil discards them.
	Progress io.Writer
	// Run runs a command to completion (tests inject a fake). Nil means the real runner,
	// which streams the command's output to Progress, runs it in a private mount
	// namespace (so no mount made by debootstrap or the script can outlive it) and kills
	// its whole process group when ctx ends.
	Run func(ctx context.Context, name string, args ...string) error
	// HideMounts are directories whose mounts each build step's private mount namespace
	// drops before the step starts: a node's sandbox directories. The namespace starts
	// as a copy of every mount of the host, and a copy of a sandbox's disk would keep
	// its loop device attached until the step ends (minutes for debootstrap): a sandbox
	// paused meanwhile could not resume.
	HideMounts []string
}

func (b *Builder) log() *slog.Logger {
	if b.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Log.With(logkey.Subsystem, "template")
}

// Dir returns the cache entry directory of r (which may not exist).
func (b *Builder) Dir(r Recipe) string { return filepath.Join(b.CacheDir, r.ID()) }

// IsReady returns the root filesystem of r and true if it is built and complete. It only
// reads the marker and stats the rootfs, so it is cheap enough for every sandbox start.
func (b *Builder) IsReady(r Recipe) (string, bool) {
	m, err := readMarker(b.Dir(r))
	if err != nil || m.Hash != r.Hash() {
		return "", false
	}
	rootfs := filepath.Join(b.Dir(r), "rootfs")
	if fi, err := os.Stat(rootfs); err != nil || !fi.IsDir() {
		return "", false
	}
	return rootfs, true
}

// Marker returns the marker of r's cache entry, or an error if r is not built.
func (b *Builder) Marker(r Recipe) (Marker, error) {
	if _, ok := b.IsReady(r); !ok {
		return Marker{}, fmt.Errorf("template %s (%s) is not built", r.Name, r.Hash())
	}
	return readMarker(b.Dir(r))
}

func readMarker(dir string) (Marker, error) {
	var m Marker
	data, err := os.ReadFile(filepath.Join(dir, markerName))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("reading %s: %w", filepath.Join(dir, markerName), err)
	}
	return m, nil
}

// Ensure returns the root filesystem directory of r, building it first unless it is
// already in the cache. When several goroutines or processes ensure the same recipe,
// one builds and the others wait for it and then return the cached result. The returned
// directory must be treated as read-only: sandboxes share it.
func (b *Builder) Ensure(ctx context.Context, r Recipe) (_ string, err error) {
	ctx, span := otel.Tracer("github.com/warren-sh/warren/internal/template").Start(ctx, "template.ensure",
		trace.WithAttributes(attribute.String("warren.template", r.Name), attribute.String("warren.template_build", r.ID())))
	built := false
	defer func() {
		span.SetAttributes(attribute.Bool("warren.template_cached", !built && err == nil))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	if fi, err := os.Stat(b.CacheDir); err == nil && b.CacheDir != "" && fi.Mode().Perm() != 0o700 {
		// A cache made by an older version (0755): restrict it before handing anything out.
		if err := os.Chmod(b.CacheDir, 0o700); err != nil {
			return "", fmt.Errorf("restricting template cache %s to root: %w", b.CacheDir, err)
		}
	}
	if rootfs, ok := b.IsReady(r); ok {
		return rootfs, nil
	}
	if err := r.Validate(); err != nil {
		return "", err
	}
	if b.CacheDir == "" {
		return "", errors.New("template builder: CacheDir is not set")
	}
	// 0700: the cache holds every template's root filesystem as root; nothing but root
	// needs to walk it (overlay mounts reach their lower layers with the mounter's
	// credentials, and runc sandboxes see them through id-mapped mounts in their own
	// directories).
	if err := os.MkdirAll(b.CacheDir, 0o700); err != nil {
		return "", fmt.Errorf("creating template cache %s: %w", b.CacheDir, err)
	}
	p := newProgress(b.Progress, r.Name)
	unlock, err := lockFile(ctx, filepath.Join(b.CacheDir, ".lock-"+r.ID()), func() {
		p.phase("waiting for another build of %s to finish", r.ID())
	})
	if err != nil {
		return "", fmt.Errorf("locking template %s: %w", r.ID(), err)
	}
	defer unlock()
	// Whoever held the lock before us may have built it.
	if rootfs, ok := b.IsReady(r); ok {
		return rootfs, nil
	}
	built = true
	return b.build(ctx, r, p)
}

// lockFile takes an exclusive flock on path, polling so that ctx can cancel the wait.
// waiting is called once if the lock is busy. The lock is tied to the open file
// description, so it also excludes other goroutines of this process and dies with the
// process if it crashes.
func lockFile(ctx context.Context, path string, waiting func()) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, err
		}
		if !told && waiting != nil {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// entryRE matches cache entry directory names: <name>-<16 hex digits>.
var entryRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*-[0-9a-f]{16}$`)

// Prune removes cache entries and leftover temporary build directories of recipes not in
// keep, and returns the directories it removed. Entries that are being built (their lock
// is held) are skipped. The caller must make sure no sandbox still uses a removed rootfs.
// Lock files are left in place: removing one while another process waits on it would
// let two builders in at once.
func (b *Builder) Prune(keep ...Recipe) ([]string, error) {
	keepIDs := map[string]bool{}
	for _, r := range keep {
		keepIDs[r.ID()] = true
	}
	ents, err := os.ReadDir(b.CacheDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("pruning template cache: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		id, tmp := tempEntryID(e.Name())
		if !tmp {
			id = e.Name()
		}
		if !entryRE.MatchString(id) || (keepIDs[id] && !tmp) {
			continue
		}
		dir := filepath.Join(b.CacheDir, e.Name())
		unlock, err := tryLock(filepath.Join(b.CacheDir, ".lock-"+id))
		if err != nil {
			continue // being built right now
		}
		err = removeTree(dir)
		unlock()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, dir)
	}
	return removed, errors.Join(errs...)
}

// tryLock takes the lock at path without waiting.
func tryLock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// tempPrefix starts the names of temporary build directories: .tmp-<id>-<random>.
const tempPrefix = ".tmp-"

// tempEntryID returns the recipe ID of a temporary build directory name.
func tempEntryID(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, tempPrefix)
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 {
		return "", false
	}
	return rest[:i], true
}
