package runtime

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestProcessRunning: this process runs; a child that exited is not running, whether
// still a zombie (not yet waited for) or reaped; pid 0 and negative pids never run.
func TestProcessRunning(t *testing.T) {
	if !ProcessRunning(os.Getpid()) {
		t.Fatal("this process is not running")
	}
	for _, pid := range []int{0, -1} {
		if ProcessRunning(pid) {
			t.Errorf("pid %d running", pid)
		}
	}
	cmd := exec.Command("/bin/sh", "-c", "exit 0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// Until waited for, the exited child is a zombie.
	deadline := time.Now().Add(10 * time.Second)
	for ProcessRunning(pid) {
		if time.Now().After(deadline) {
			t.Fatal("the exited child still counts as running (zombie not seen as exited)")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Fatalf("the child was reaped before the zombie check: %v", err)
	}
	_ = cmd.Wait()
	if ProcessRunning(pid) {
		t.Error("a reaped child is running")
	}
}
