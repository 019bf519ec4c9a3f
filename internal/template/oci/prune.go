package oci

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/logkey"
)

// The cache is pruned by age: a Pull that finds an image's root touches its image.json,
// and one that finds a layer's blob touches the blob, so their modification times say
// when a pull last used them. Prune removes the roots and blobs unused for longer than
// keep. What a pull used within the last two hours stays whatever keep says: a template
// build may still run on the root (builds are bounded to an hour). A built template
// does not need the image's root afterwards: its own root filesystem is made anew (files
// copied or hard-linked), never a view of the image's.

// protectedFor is how long after its last use a root or blob is never pruned.
const protectedFor = 2 * time.Hour

// PruneResult is what a Prune removed.
type PruneResult struct {
	Roots, Blobs int
	FreedBytes   int64
}

// Prune removes the roots and blobs no pull used since now-keep (keep <= 0: none).
func (p *Puller) Prune(ctx context.Context, now time.Time, keep time.Duration) (PruneResult, error) {
	var res PruneResult
	if keep <= 0 {
		return res, nil
	}
	keep = max(keep, protectedFor)
	var errs []error
	roots, _ := filepath.Glob(filepath.Join(p.CacheDir, "roots", "*", "*"))
	for _, dir := range roots {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if strings.HasPrefix(filepath.Base(dir), ".") {
			continue // half-made: its pull's
		}
		algo, hex := filepath.Base(filepath.Dir(dir)), filepath.Base(dir)
		n, removed, err := p.pruneRoot(dir, algo+":"+hex, now, keep)
		if err != nil {
			errs = append(errs, err)
		}
		if removed {
			res.Roots++
			res.FreedBytes += n
		}
	}
	blobs, _ := filepath.Glob(filepath.Join(p.CacheDir, "blobs", "*", "*"))
	for _, b := range blobs {
		fi, err := os.Stat(b)
		if err != nil || strings.HasPrefix(filepath.Base(b), ".") || now.Sub(fi.ModTime()) <= keep {
			continue
		}
		if err := os.Remove(b); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Blobs++
		res.FreedBytes += fi.Size()
	}
	return res, errors.Join(errs...)
}

// pruneRoot removes the image root dir (of manifest digest) if no pull used it since
// now-keep, under the digest's pull lock, and returns its size.
func (p *Puller) pruneRoot(dir, digest string, now time.Time, keep time.Duration) (int64, bool, error) {
	l, _ := p.locks.LoadOrStore(digest, new(sync.Mutex))
	l.(*sync.Mutex).Lock()
	defer l.(*sync.Mutex).Unlock()
	fi, err := os.Stat(filepath.Join(dir, "image.json"))
	if err != nil || now.Sub(fi.ModTime()) <= keep {
		return 0, false, nil
	}
	meta, _ := readMeta(dir)
	// Uncommit it first (image.json gone: no pull finds it), then remove the files.
	if err := os.Remove(filepath.Join(dir, "image.json")); err != nil {
		return 0, false, err
	}
	return meta.Stats.Bytes, true, os.RemoveAll(dir)
}

// touch records that a pull used the file at path now.
func (p *Puller) touch(path string) {
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		p.logger().Warn("marking a cached image file used", "path", path, logkey.Err, err)
	}
}

// RunPrune prunes the cache every interval until ctx ends, logging what it removed.
func (p *Puller) RunPrune(ctx context.Context, interval, keep time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		res, err := p.Prune(ctx, time.Now(), keep)
		if err != nil && ctx.Err() == nil {
			p.logger().Warn("pruning the image cache", logkey.Err, err)
		}
		if res.Roots+res.Blobs > 0 {
			p.logger().Info("pruned the image cache", "roots", res.Roots, "blobs", res.Blobs, "freed_bytes", res.FreedBytes)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
