package runtimetest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/runtime"
)

// counterEnv is an agent whose start command counts in a shell variable (memory) and
// writes the count to /tmp/count, a file in the sandbox's writable layer the test reads
// from the host: a count that goes on from where it was after a restore proves the
// memory came back, one that starts again at 1 would be a fresh boot.
func counterEnv() []string {
	return []string{`WARREN_AGENT_CONFIG={"listen":":49983","access_token":"contract","start_cmd":"i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.05; done"}`}
}

// startCounter starts a sandbox running the counter and waits until it has counted.
func (s *suite) startCounter(t *testing.T) (runtime.Handle, runtime.Spec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := s.nextID()
	dir := filepath.Join(s.dir, id)
	slot := s.seq
	rootfs := s.prepare(t, ctx, id, dir, slot)
	spec := runtime.Spec{ID: id, RootFS: rootfs, StateDir: dir, Hostname: id,
		AgentPath: s.agent, AgentEnv: counterEnv(), Limits: limits, Slot: slot}
	h, err := s.drv.Start(ctx, spec)
	if err != nil {
		s.unmount(t, id)
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		_ = s.drv.Destroy(context.Background(), runtime.Handle{ID: id, Driver: s.caps.Name})
		s.unmount(t, id)
	})
	waitCount(t, rootfs, 3)
	return h, spec
}

// count reads the counter the sandbox at rootfs writes (0 when it has not yet).
func count(rootfs string) int {
	b, _ := os.ReadFile(filepath.Join(rootfs, "tmp", "count"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// waitCount waits until the counter at rootfs reaches at least n.
func waitCount(t *testing.T, rootfs string, n int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := count(rootfs)
		if c >= n {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("the counter in %s reached %d in 30 s, want %d", rootfs, c, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// still checks that the counter at rootfs does not move for a while (the sandbox is
// frozen) and returns it.
func still(t *testing.T, rootfs, what string) int {
	t.Helper()
	c := count(rootfs)
	time.Sleep(400 * time.Millisecond)
	if c2 := count(rootfs); c2 != c {
		t.Fatalf("%s: the counter moved from %d to %d, want it stopped", what, c, c2)
	}
	return c
}

// testCheckpoint checks a Checkpointer: a checkpoint that leaves the sandbox running
// (and keeps it frozen when it was), one that stops it and leaves no trace, a restore
// of the same id on the same files where the count goes on, a restore of the image as
// another sandbox on a copy of the files, and a failed checkpoint (no room for the
// image) that leaves the sandbox running.
func testCheckpoint(t *testing.T, s *suite) {
	cp, ok := s.drv.(runtime.Checkpointer)
	if !ok {
		t.Skip("the driver cannot checkpoint")
	}
	ctx := context.Background()
	h, spec := s.startCounter(t)
	images := t.TempDir()

	// A failed checkpoint (the image does not fit) leaves the sandbox running.
	full := filepath.Join(images, "full")
	if err := os.Mkdir(full, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", full, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	err := cp.Checkpoint(ctx, h, full, false)
	_ = unix.Unmount(full, unix.MNT_DETACH)
	if err == nil {
		t.Fatal("a checkpoint into a 64 KiB file system succeeded")
	}
	t.Logf("checkpoint into a full disk: %v", err)
	if st, err := s.drv.Status(ctx, h); err != nil || st != runtime.StatusRunning {
		t.Fatalf("after a failed checkpoint the sandbox is %v (%v), want running", st, err)
	}
	c := count(spec.RootFS)
	waitCount(t, spec.RootFS, c+3)

	// Freeze, checkpoint leaving it running: it stays frozen until Thaw.
	fr, frozen := s.drv.(runtime.Freezer)
	if frozen {
		if err := fr.Freeze(ctx, h); err != nil {
			t.Fatalf("freeze: %v", err)
		}
		still(t, spec.RootFS, "frozen")
	}
	snap := filepath.Join(images, "snap")
	t0 := time.Now()
	if err := cp.Checkpoint(ctx, h, snap, true); err != nil {
		t.Fatalf("checkpoint, leaving it running: %v", err)
	}
	t.Logf("checkpoint (leave running) took %s", time.Since(t0))
	// The files as they were at the checkpoint, for a restore as another sandbox.
	atSnap := count(spec.RootFS)
	upperCopy := filepath.Join(images, "upper")
	if out, err := exec.Command("cp", "-a", filepath.Join(spec.StateDir, "upper"), upperCopy).CombinedOutput(); err != nil {
		t.Fatalf("copying the writable layer: %v: %s", err, out)
	}
	if frozen {
		still(t, spec.RootFS, "frozen, after a checkpoint that left it running")
		if err := fr.Thaw(ctx, h); err != nil {
			t.Fatalf("thaw: %v", err)
		}
	}
	if st, err := s.drv.Status(ctx, h); err != nil || st != runtime.StatusRunning {
		t.Fatalf("after a checkpoint that left it running the sandbox is %v (%v)", st, err)
	}
	waitCount(t, spec.RootFS, atSnap+3)

	// Checkpoint stopping it: nothing of it runs, its files stay.
	pause := filepath.Join(images, "pause")
	if err := cp.Checkpoint(ctx, h, pause, false); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	if st, _ := s.drv.Status(ctx, h); st == runtime.StatusRunning {
		t.Fatal("the sandbox still runs after a checkpoint that should stop it")
	}
	if tr := waitNoTraces(h.ID); len(tr) > 0 {
		t.Errorf("traces left after a checkpoint that stopped the sandbox: %v", tr)
	}
	atPause := still(t, spec.RootFS, "checkpointed")

	// Restore the same id on the same files: the count goes on.
	t0 = time.Now()
	h2, err := cp.Restore(ctx, spec, pause)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	t.Logf("restore took %s", time.Since(t0))
	CheckCPUQuota(t, h2.ID, limits.CPUCores)
	if st, err := s.drv.Status(ctx, h2); err != nil || st != runtime.StatusRunning {
		t.Fatalf("status after restore: %v %v", st, err)
	}
	if got := waitCount(t, spec.RootFS, atPause+3); got < atPause {
		t.Fatalf("after restore the counter is %d, below %d at the checkpoint: it started again", got, atPause)
	}

	// Restore the leave-running image as another sandbox on its own copy of the files.
	id2 := s.nextID()
	dir2 := filepath.Join(s.dir, id2)
	if err := os.MkdirAll(dir2, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(upperCopy, filepath.Join(dir2, "upper")); err != nil {
		t.Fatal(err)
	}
	rootfs2 := s.prepare(t, ctx, id2, dir2, s.seq)
	spec2 := spec
	spec2.ID, spec2.RootFS, spec2.StateDir, spec2.Hostname, spec2.Slot = id2, rootfs2, dir2, id2, s.seq
	h3, err := cp.Restore(ctx, spec2, snap)
	if err != nil {
		s.unmount(t, id2)
		t.Fatalf("restore as another sandbox: %v", err)
	}
	t.Cleanup(func() {
		_ = s.drv.Destroy(context.Background(), h3)
		s.unmount(t, id2)
	})
	if got := waitCount(t, rootfs2, atSnap+3); got < atSnap {
		t.Fatalf("the copy's counter is %d, below %d at the checkpoint", got, atSnap)
	}
	s.destroy(t, h3)
	s.destroy(t, h2)
	if tr := waitNoTraces(h2.ID); len(tr) > 0 {
		t.Errorf("traces left after destroying a restored sandbox: %v", tr)
	}
}
