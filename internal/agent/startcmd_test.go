package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/envdpb/process"
)

func TestStartCommand(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "started")
	e := newTestEnv(t, Config{StartCmd: "id -u > " + flag + "; exec sleep 300"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(flag)
		if err == nil && string(b) == "0\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("start command did not run as root: %q %v", b, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := e.proc.List(context.Background(), connect.NewRequest(&process.ListRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range resp.Msg.GetProcesses() {
		if p.GetTag() == "start" {
			found = true
		}
	}
	if !found {
		t.Errorf("no process tagged start in %v", resp.Msg.GetProcesses())
	}
}
