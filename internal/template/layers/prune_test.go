package layers

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// TestPrune: layers unused past KeepUnused go, then the least recently used while the
// cache is over MaxCacheBytes; a layer used within the protection window stays whatever
// the budget; a cache hit marks a layer used; the finished root keeps its files; a
// pruned step reruns on the next build and the kept ones stay cached.
func TestPrune(t *testing.T) {
	b, p, _ := copyEnv(t)
	b.cfg.KeepUnused = 14 * 24 * time.Hour
	files := memFiles{}
	h := files.add(t, file("one", "1"), file("two", "22"), file("three", "333"))
	spec := domain.BuildSpec{Steps: []domain.BuildStep{
		{Kind: domain.StepCopy, Args: []string{"one", "/one"}, FilesHash: h},
		{Kind: domain.StepCopy, Args: []string{"two", "/two"}, FilesHash: h},
		{Kind: domain.StepCopy, Args: []string{"three", "/three"}, FilesHash: h},
	}}
	var keys []string
	build := func() ([]bool, *Result) {
		t.Helper()
		var cached []bool
		keys = keys[:0]
		res, err := b.BuildFrom(context.Background(), spec, p, files, nil, func(r domain.StepResult) {
			cached = append(cached, r.Cached)
			keys = append(keys, r.Key)
		})
		if err != nil {
			t.Fatal(err)
		}
		return cached, res
	}
	_, res := build()
	now := time.Now()
	if r, err := b.Prune(context.Background(), now); err != nil || r.Removed != 0 || r.Kept != 3 {
		t.Fatalf("prune of fresh layers: %+v, %v", r, err)
	}
	usedAgo := func(i int, d time.Duration) {
		t.Helper()
		at := now.Add(-d)
		if err := os.Chtimes(filepath.Join(b.layerDir(keys[i]), "meta.json"), at, at); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(i int) bool {
		_, ok := b.cached(keys[i])
		return ok
	}
	usedAgo(0, 30*24*time.Hour)
	usedAgo(1, 3*24*time.Hour)
	usedAgo(2, time.Hour)
	r, err := b.Prune(context.Background(), now)
	if err != nil || r.Removed != 1 || exists(0) || !exists(1) || !exists(2) {
		t.Errorf("prune by age: %+v, %v; layers present %v %v %v, want only the month-old one gone", r, err, exists(0), exists(1), exists(2))
	}
	// Over a one-byte budget: the 3-day-old one goes, the one used an hour ago stays.
	b.cfg.MaxCacheBytes = 1
	r, err = b.Prune(context.Background(), now)
	if err != nil || r.Removed != 1 || exists(1) || !exists(2) || r.Kept != 1 {
		t.Errorf("prune by size: %+v, %v; layers present %v %v, want only the protected one kept", r, err, exists(1), exists(2))
	}
	if readFile(t, res.RootFS, "one") != "1" || readFile(t, res.RootFS, "three") != "333" {
		t.Error("pruning layers changed the finished root filesystem")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(res.RootFS), "size")); err != nil {
		t.Errorf("the finished root was removed: %v", err)
	}

	// The next build reruns the pruned steps; a cached step is marked used.
	b.cfg.MaxCacheBytes = 0
	if err := os.RemoveAll(filepath.Dir(res.RootFS)); err != nil { // so that the build looks at its layers
		t.Fatal(err)
	}
	cached, _ := build()
	if len(cached) != 3 || cached[0] || cached[1] || !cached[2] {
		t.Errorf("after pruning steps 1 and 2: cached %v, want them rerun and step 3 (kept; same keys) cached", cached)
	}
	usedAgo(0, 5*time.Hour)
	cached, _ = build()
	if len(cached) != 3 || !cached[0] || !cached[1] || !cached[2] {
		t.Errorf("a rebuild: cached %v, want all", cached)
	}
	fi, err := os.Stat(filepath.Join(b.layerDir(keys[0]), "meta.json"))
	if err != nil || time.Since(fi.ModTime()) > time.Minute {
		t.Errorf("a cache hit did not mark the layer used: %v, %v", fi.ModTime(), err)
	}
}
