package layers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// layerMeta is a committed layer's meta.json.
type layerMeta struct {
	Key   string `json:"key"`
	Kind  string `json:"kind"`
	Empty bool   `json:"empty"`
	Bytes int64  `json:"bytes"`
}

// short is the directory name of key's layer or root.
func short(key string) string { return key[:32] }

func (b *Builder) layerDir(key string) string { return filepath.Join(b.cfg.Dir, "l", short(key)) }

// cached returns key's committed layer, if there is one.
func (b *Builder) cached(key string) (layerMeta, bool) {
	var m layerMeta
	raw, err := os.ReadFile(filepath.Join(b.layerDir(key), "meta.json"))
	if err != nil || json.Unmarshal(raw, &m) != nil || m.Key != key {
		return m, false
	}
	return m, true
}

// build is one build in progress.
type build struct {
	b      *Builder
	spec   domain.BuildSpec
	parent Parent
	files  domain.BuildFiles
	logs   func(domain.BuildLogLine)
	work   string   // scratch, removed at the end
	stack  []string // non-empty layers so far, topmost first
	meta   Meta
}

func (bd *build) logf(level, format string, args ...any) {
	if bd.logs != nil {
		bd.logs(domain.BuildLogLine{Time: time.Now().UTC(), Level: level, Message: fmt.Sprintf(format, args...)})
	}
}

// BuildFrom runs spec's steps on parent and returns the finished root filesystem. It
// is Build with the parent's identity given by the caller, and with the result's key
// and metadata.
func (b *Builder) BuildFrom(ctx context.Context, spec domain.BuildSpec, parent Parent, files domain.BuildFiles,
	logs func(domain.BuildLogLine), steps func(domain.StepResult)) (*Result, error) {
	if err := validate(spec); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(parent.RootFS); err != nil || !fi.IsDir() || parent.ID == "" {
		return nil, fmt.Errorf("the parent root filesystem %q is not a directory with an identity: %v", parent.RootFS, err)
	}
	timeout := or(spec.Timeout, b.cfg.Timeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	work, err := os.MkdirTemp(filepath.Join(b.cfg.Dir, "work"), scratchPrefix())
	if err != nil {
		return nil, err
	}
	bd := &build{b: b, spec: spec, parent: parent, files: files, logs: logs, work: work}
	defer func() {
		if err := os.RemoveAll(work); err != nil {
			b.log.Error("removing a build's scratch", "dir", work, logkey.Err, err)
		}
	}()
	key := parentKey(parent)
	forced := false
	t0 := time.Now()
	for i, s := range spec.Steps {
		if steps == nil {
			steps = func(domain.StepResult) {}
		}
		res, err := bd.step(ctx, i, s, key, forced || s.Force)
		if err != nil {
			return nil, bd.timedOut(ctx, err, timeout)
		}
		forced = forced || s.Force
		key = res.Key
		steps(res)
	}
	rootfs, size, err := bd.finish(ctx, key)
	if err != nil {
		return nil, bd.timedOut(ctx, err, timeout)
	}
	bd.logf("info", "built in %s: %d bytes", time.Since(t0).Round(time.Millisecond), size)
	return &Result{RootFS: rootfs, Size: size, Key: key, Config: bd.meta}, nil
}

// timedOut turns an error caused by the build's deadline into one that says so.
func (bd *build) timedOut(ctx context.Context, err error, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return domain.Errorf(domain.KindInvalid, "the build did not finish within its timeout of %s (%v); give it a longer timeout or fewer steps", timeout, err)
	}
	return err
}

// step runs (or finds cached) step i, whose parent layer is keyed prev.
func (bd *build) step(ctx context.Context, i int, s domain.BuildStep, prev string, force bool) (domain.StepResult, error) {
	t0 := time.Now()
	n := len(bd.spec.Steps)
	selection := ""
	if s.Kind == domain.StepCopy {
		var err error
		if selection, err = bd.selectionDigest(ctx, i, s); err != nil {
			return domain.StepResult{}, err
		}
	}
	key := stepKey(prev, s, selection)
	res := domain.StepResult{Index: i, Key: key}
	unlock := bd.b.keyLock(key)
	defer unlock()
	m, ok := bd.b.cached(key)
	if ok && !force {
		bd.b.touch(key)
		res.Cached = true
		bd.logf("info", "step %d/%d: %s: cached", i+1, n, describe(s))
	} else {
		bd.logf("info", "step %d/%d: %s", i+1, n, describe(s))
		var err error
		if m, res.ExitCode, err = bd.run(ctx, i, s, key); err != nil {
			return res, err
		}
	}
	bd.meta = bd.meta.after(s)
	if !m.Empty {
		bd.stack = append([]string{filepath.Join(bd.b.layerDir(key), "d")}, bd.stack...)
	}
	res.Duration = time.Since(t0)
	return res, nil
}

// run makes step i's layer (key) and commits it.
func (bd *build) run(ctx context.Context, i int, s domain.BuildStep, key string) (layerMeta, int, error) {
	tmp, err := os.MkdirTemp(filepath.Join(bd.b.cfg.Dir, "l"), ".tmp-"+scratchPrefix())
	if err != nil {
		return layerMeta{}, 0, err
	}
	defer os.RemoveAll(tmp) // gone once renamed
	diff := filepath.Join(tmp, "d")
	exit := 0
	switch s.Kind {
	case domain.StepRun:
		exit, err = bd.runCommand(ctx, i, s.Args[0], diff)
	case domain.StepWorkdir:
		err = bd.makeWorkdir(ctx, i, bd.meta.abs(s.Args[0]), diff)
	case domain.StepCopy:
		err = bd.copyFiles(ctx, i, s, diff)
	default: // ENV, USER: metadata only
		err = os.Mkdir(diff, 0o755)
	}
	if err != nil {
		return layerMeta{}, exit, err
	}
	m := layerMeta{Key: key, Kind: string(s.Kind)}
	m.Bytes, m.Empty = usage(diff)
	raw, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), raw, 0o600); err != nil {
		return m, exit, err
	}
	return m, exit, bd.b.commit(tmp, bd.b.layerDir(key))
}

// commit renames the made directory tmp to dst. An older dst (a Force rerun) goes to
// trash/ first: a build running on it keeps its files until it is done with them.
func (b *Builder) commit(tmp, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		old, err := os.MkdirTemp(filepath.Join(b.cfg.Dir, "trash"), "")
		if err != nil {
			return err
		}
		if err := os.Rename(dst, filepath.Join(old, "x")); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("replacing a cached layer: %w", err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		if _, serr := os.Stat(filepath.Join(dst, "meta.json")); serr == nil {
			return nil // another server process made it meanwhile: same key, same content
		}
		return fmt.Errorf("storing a layer: %w", err)
	}
	return nil
}
