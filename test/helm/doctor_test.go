package helm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
)

// doctorScript renders the nodes' doctor init container with the check repeated every
// second, and rewrites its paths into dir: the warren binary becomes dir/warren (a stub
// the test writes) and the node's data dir dir/data.
func doctorScript(t *testing.T, dir string) string {
	t.Helper()
	vals := readValues(t, "ci/defaults-values.yaml")
	vals["node"] = map[string]any{"doctor": map[string]any{"enabled": true, "retrySeconds": 1}}
	out, err := render(loadChart(t), vals)
	if err != nil {
		t.Fatal(err)
	}
	var script string
	for _, m := range manifests(t, out) {
		if ds, ok := m.obj.(*appsv1.DaemonSet); ok {
			ic := ds.Spec.Template.Spec.InitContainers
			if len(ic) != 1 || len(ic[0].Command) != 3 || ic[0].Command[0] != "/bin/sh" || ic[0].Command[1] != "-c" {
				t.Fatalf("the doctor init container's command is not /bin/sh -c SCRIPT: %+v", ic)
			}
			script = ic[0].Command[2]
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer("/usr/local/bin/warren", filepath.Join(dir, "warren"), "/var/lib/warren", filepath.Join(dir, "data")).Replace(script)
}

// stubDoctor writes dir/warren: it fails (exit 1, with a report) until it has been
// called passAfter times, then passes; passAfter 0 never passes.
func stubDoctor(t *testing.T, dir string, passAfter int) {
	t.Helper()
	stub := `#!/bin/sh
n=$(( $(cat "` + dir + `/calls" 2>/dev/null || echo 0) + 1 ))
echo $n > "` + dir + `/calls"
echo "args: $*"
if [ ` + strconv.Itoa(passAfter) + ` -gt 0 ] && [ $n -ge ` + strconv.Itoa(passAfter) + ` ]; then echo "Summary: 9 ok, 0 warn, 0 fail"; exit 0; fi
echo "[FAIL] runsc: not installed (run scripts/install-deps.sh)"
exit 1
`
	if err := os.WriteFile(filepath.Join(dir, "warren"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
}

// runScript runs script with bash in POSIX mode, in a process group of its own that is
// killed whole when ctx ends (the script's sleep with it).
func runScript(ctx context.Context, script string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "bash", "--posix", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd.CombinedOutput()
}

// TestDoctorWaits runs the rendered doctor script for real (POSIX shell) against a stub
// warren: a host that fails the check is reported and checked again, never an exit
// with an error (which would crash-loop the pod); once it passes, the script exits 0
// and the node starts.
func TestDoctorWaits(t *testing.T) {
	t.Run("passes after a failure", func(t *testing.T) {
		dir := t.TempDir()
		script := doctorScript(t, dir)
		stubDoctor(t, dir, 2)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := runScript(ctx, script)
		if err != nil {
			t.Fatalf("the doctor script: %v\n%s", err, out)
		}
		for _, want := range []string{"[FAIL] runsc", "cannot run sandboxes yet", "checking again in 1s", "Summary: 9 ok", "args: doctor --measure=false --data-dir " + filepath.Join(dir, "data")} {
			if !strings.Contains(string(out), want) {
				t.Errorf("the doctor script's output lacks %q:\n%s", want, out)
			}
		}
		report, err := os.ReadFile(filepath.Join(dir, "data", "doctor-report.txt"))
		if err != nil || !strings.Contains(string(report), "Summary: 9 ok") {
			t.Errorf("doctor-report.txt holds %q (%v), want the passing report", report, err)
		}
	})
	t.Run("keeps waiting while the host fails", func(t *testing.T) {
		dir := t.TempDir()
		script := doctorScript(t, dir)
		stubDoctor(t, dir, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		defer cancel()
		out, err := runScript(ctx, script)
		if ctx.Err() == nil {
			t.Fatalf("the doctor script ended (%v) on a host that never passes; it must wait:\n%s", err, out)
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) || strings.Count(string(out), "[FAIL] runsc") < 2 {
			t.Errorf("want the failing report printed at each check until killed, got %v:\n%s", err, out)
		}
		report, _ := os.ReadFile(filepath.Join(dir, "data", "doctor-report.txt"))
		if !strings.Contains(string(report), "[FAIL] runsc") {
			t.Errorf("doctor-report.txt holds %q, want the failing report", report)
		}
	})
}
