package oci

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// TestPrune: a pull that finds a root or a blob marks it used; roots and blobs unused
// for longer than keep are removed (the root first uncommitted, so the next pull makes
// it again, downloading the pruned blobs), and nothing used within two hours is.
func TestPrune(t *testing.T) {
	host, blobGets := memRegistry(t)
	push(t, host+"/team/app:v1", testImage(t))
	p := &Puller{CacheDir: t.TempDir(), Keychain: authn.NewMultiKeychain()}
	ctx := context.Background()
	img, err := p.Pull(ctx, host+"/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(img.Root)
	blobs, _ := filepath.Glob(filepath.Join(p.CacheDir, "blobs", "*", "*"))
	if len(blobs) != 2 {
		t.Fatalf("blobs %v, want 2", blobs)
	}
	age := func(path string, d time.Duration) {
		t.Helper()
		at := time.Now().Add(-d)
		if err := os.Chtimes(path, at, at); err != nil {
			t.Fatal(err)
		}
	}
	week := 7 * 24 * time.Hour
	// Nothing is old: nothing goes; keep 0 prunes nothing; a keep under two hours is two hours.
	for _, keep := range []time.Duration{week, 0, time.Minute} {
		if res, err := p.Prune(ctx, time.Now(), keep); err != nil || res != (PruneResult{}) {
			t.Errorf("keep %s on a fresh cache: %+v, %v", keep, res, err)
		}
	}
	// Old, then found by a pull: marked used, kept.
	age(filepath.Join(root, "image.json"), 2*week)
	for _, b := range blobs {
		age(b, 2*week)
	}
	if img, err := p.Pull(ctx, host+"/team/app:v1"); err != nil || !img.Cached {
		t.Fatalf("a cached pull: %+v, %v", img, err)
	}
	res, err := p.Prune(ctx, time.Now(), week)
	if err != nil || res.Roots != 0 || res.Blobs != 2 {
		// The root was found (touched); its blobs were not needed for it.
		t.Errorf("after a cached pull: %+v, %v; want the root kept and the 2 unused blobs removed", res, err)
	}
	age(filepath.Join(root, "image.json"), 2*week)
	res, err = p.Prune(ctx, time.Now(), week)
	if err != nil || res.Roots != 1 || res.FreedBytes <= 0 {
		t.Errorf("an unused root: %+v, %v", res, err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("the pruned root is still there: %v", err)
	}
	// The next pull downloads (the config and the 2 layers) and unpacks it again.
	before := blobGets.Load()
	img, err = p.Pull(ctx, host+"/team/app:v1")
	if err != nil || img.Cached || blobGets.Load() != before+3 {
		t.Fatalf("a pull after pruning: cached %v, blob downloads %d, %v", img != nil && img.Cached, blobGets.Load()-before, err)
	}
	if tr := tree(t, img.Root); strings.Join(tr, "|") != strings.Join(wantTree, "|") {
		t.Errorf("tree after pruning and pulling again\n%q", tr)
	}
}
