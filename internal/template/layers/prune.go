package layers

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/logkey"
)

// The layer cache is a cache: a layer only saves rerunning its step. Each layer's
// meta.json is touched whenever a build finds it, so its modification time is when a
// build last used it. Prune removes the layers unused for longer than Config.KeepUnused
// and then, while the cache holds more than Config.MaxCacheBytes, the least recently
// used. A layer a build used less than the build timeout ago (twice it, at least two
// hours) is never removed: that build may still have it mounted. Finished root
// filesystems (r/) are not layers and are left alone: templates and their sandboxes run
// on them; a flattened root holds hard links, not references, to its layers' files.

// PruneResult is what a Prune removed and what the cache holds after it.
type PruneResult struct {
	Removed    int
	FreedBytes int64
	KeptBytes  int64
	Kept       int
}

// cachedLayer is one committed layer as Prune sees it.
type cachedLayer struct {
	dir   string
	key   string
	used  time.Time
	bytes int64
}

// protectedFor is how long after its last use a layer stays whatever the budget.
func (b *Builder) protectedFor() time.Duration {
	return max(2*b.cfg.Timeout, 2*time.Hour)
}

// Prune removes layers as the package comment says, at time now.
func (b *Builder) Prune(ctx context.Context, now time.Time) (PruneResult, error) {
	var res PruneResult
	ents, err := os.ReadDir(filepath.Join(b.cfg.Dir, "l"))
	if err != nil {
		return res, err
	}
	var all []cachedLayer
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !e.IsDir() {
			continue // half-made: clearStale's
		}
		dir := filepath.Join(b.cfg.Dir, "l", e.Name())
		meta := filepath.Join(dir, "meta.json")
		fi, err := os.Stat(meta)
		if err != nil {
			continue // not committed (yet)
		}
		var m layerMeta
		if raw, err := os.ReadFile(meta); err != nil || json.Unmarshal(raw, &m) != nil || len(m.Key) < 32 {
			continue
		}
		all = append(all, cachedLayer{dir: dir, key: m.Key, used: fi.ModTime(), bytes: m.Bytes})
	}
	slices.SortFunc(all, func(a, b cachedLayer) int { return a.used.Compare(b.used) }) // least recently used first
	var total int64
	for _, l := range all {
		total += l.bytes
	}
	for _, l := range all {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		age := now.Sub(l.used)
		stale := b.cfg.KeepUnused > 0 && age > b.cfg.KeepUnused
		over := b.cfg.MaxCacheBytes > 0 && total > b.cfg.MaxCacheBytes
		if age < b.protectedFor() || !stale && !over {
			continue
		}
		removed, err := b.removeLayer(l, now)
		if err != nil {
			b.log.Warn("removing a cached layer", "dir", l.dir, logkey.Err, err)
			continue
		}
		if removed {
			res.Removed++
			res.FreedBytes += l.bytes
			total -= l.bytes
		}
	}
	res.KeptBytes, res.Kept = total, len(all)-res.Removed
	return res, nil
}

// removeLayer removes l under its key's lock unless a build used it meanwhile: a
// build looking it up holds the lock and touches it.
func (b *Builder) removeLayer(l cachedLayer, now time.Time) (bool, error) {
	unlock := b.keyLock(l.key)
	defer unlock()
	fi, err := os.Stat(filepath.Join(l.dir, "meta.json"))
	if err != nil {
		return false, nil // gone already
	}
	if now.Sub(fi.ModTime()) < b.protectedFor() {
		return false, nil
	}
	// Uncommit it first (meta.json gone: no build finds it), then remove the files.
	if err := os.Remove(filepath.Join(l.dir, "meta.json")); err != nil {
		return false, err
	}
	return true, os.RemoveAll(l.dir)
}

// touch records that a build used the layer of key now.
func (b *Builder) touch(key string) {
	now := time.Now()
	if err := os.Chtimes(filepath.Join(b.layerDir(key), "meta.json"), now, now); err != nil {
		b.log.Warn("marking a cached layer used", logkey.Err, err)
	}
}

// RunPrune prunes the cache every interval until ctx ends, logging what it removed.
func (b *Builder) RunPrune(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		res, err := b.Prune(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			b.log.Warn("pruning the layer cache", logkey.Err, err)
		case res.Removed > 0:
			b.log.Info("pruned the layer cache", "removed", res.Removed, "freed_bytes", res.FreedBytes,
				"kept", res.Kept, "kept_bytes", res.KeptBytes)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
