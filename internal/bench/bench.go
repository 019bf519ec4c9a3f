// Package bench measures Warren against a baseline taken in the same run: the time from
// "create a sandbox" to the first output of `echo` through the API, against a bare
// `runsc run` of the same root filesystem printing one line.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/runtime/oci"
)

// Options configure a run.
type Options struct {
	APIURL string
	APIKey string
	// N is the number of sandboxes created one after another (default 20).
	N int
	// RootFS is the template root filesystem the baseline runs (the base template).
	RootFS string
	// Runsc is the runsc binary for the baseline (default from PATH).
	Runsc string
	// Progress receives one line per measurement; nil discards.
	Progress io.Writer
}

// Stats summarises a series of durations in milliseconds.
type Stats struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	Min float64 `json:"min_ms"`
	Max float64 `json:"max_ms"`
}

// Result is one benchmark run.
type Result struct {
	// Warren is create-to-first-output of `echo` through the API.
	Warren Stats `json:"warren_create_to_first_output"`
	// WarrenCreate is the create call alone.
	WarrenCreate Stats `json:"warren_create"`
	// Baseline is a bare `runsc run` of the same root filesystem printing one line.
	Baseline Stats `json:"baseline_runsc_run"`
	// RatioP50 and RatioP95 are Warren over baseline; 1.0 means no overhead.
	RatioP50 float64 `json:"ratio_p50"`
	RatioP95 float64 `json:"ratio_p95"`
}

func summarize(ds []time.Duration) Stats {
	if len(ds) == 0 {
		return Stats{}
	}
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = float64(d.Microseconds()) / 1000
	}
	sort.Float64s(ms)
	pct := func(p float64) float64 {
		// Nearest rank.
		i := int(p*float64(len(ms))+0.999999) - 1
		return ms[max(0, min(i, len(ms)-1))]
	}
	return Stats{N: len(ms), P50: pct(0.50), P95: pct(0.95), Min: ms[0], Max: ms[len(ms)-1]}
}

// Run measures the baseline and Warren, alternating so that both see the same machine.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.N <= 0 {
		o.N = 20
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Runsc == "" {
		p, err := exec.LookPath("runsc")
		if err != nil {
			return nil, errors.New("runsc not found: the baseline needs it (apt-get install -t bookworm-backports runsc)")
		}
		o.Runsc = p
	}
	if _, err := os.Stat(filepath.Join(o.RootFS, "bin", "echo")); err != nil {
		return nil, fmt.Errorf("baseline root filesystem %q has no /bin/echo: pass --rootfs (the base template's rootfs directory)", o.RootFS)
	}
	tmp, err := os.MkdirTemp("", "warren-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var base, warren, create []time.Duration
	// One warm-up of each, not counted: the first run pays for page-cache misses.
	if _, err := baselineOnce(ctx, o, tmp, -1); err != nil {
		return nil, err
	}
	if _, _, err := warrenOnce(ctx, o); err != nil {
		return nil, err
	}
	for i := 0; i < o.N; i++ {
		b, err := baselineOnce(ctx, o, tmp, i)
		if err != nil {
			return nil, err
		}
		w, c, err := warrenOnce(ctx, o)
		if err != nil {
			return nil, err
		}
		base, warren, create = append(base, b), append(warren, w), append(create, c)
		fmt.Fprintf(o.Progress, "run %2d/%d: warren %6.1f ms (create %6.1f ms), bare runsc %6.1f ms\n", i+1, o.N,
			float64(w.Microseconds())/1000, float64(c.Microseconds())/1000, float64(b.Microseconds())/1000)
	}
	r := &Result{Warren: summarize(warren), WarrenCreate: summarize(create), Baseline: summarize(base)}
	if r.Baseline.P50 > 0 {
		r.RatioP50 = r.Warren.P50 / r.Baseline.P50
	}
	if r.Baseline.P95 > 0 {
		r.RatioP95 = r.Warren.P95 / r.Baseline.P95
	}
	return r, nil
}

// baselineOnce runs `runsc run` of /bin/echo in the root filesystem and times it until
// the line arrives.
func baselineOnce(ctx context.Context, o Options, tmp string, i int) (time.Duration, error) {
	id := fmt.Sprintf("warrenbench%d%d", os.Getpid(), i+1)
	bundle := filepath.Join(tmp, id)
	sp := &oci.Spec{
		OCIVersion: "1.0.2",
		Process:    oci.Process{Args: []string{"/bin/echo", "hello"}, Env: []string{"PATH=/usr/bin:/bin"}, Cwd: "/"},
		Root:       oci.Root{Path: o.RootFS, Readonly: true},
		Mounts:     []oci.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
		Linux:      oci.Linux{Namespaces: []oci.Namespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}}},
	}
	if err := oci.WriteBundle(bundle, sp); err != nil {
		return 0, err
	}
	root := filepath.Join(tmp, "runsc-root")
	cmd := exec.CommandContext(ctx, o.Runsc, "--root="+root, "--network=none", "run", "--bundle", bundle, id)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	elapsed := time.Since(start)
	werr := cmd.Wait()
	_ = exec.Command(o.Runsc, "--root="+root, "delete", "-force", id).Run()
	if strings.TrimSpace(line) != "hello" {
		return 0, fmt.Errorf("baseline runsc run printed %q (%v): %s", line, werr, stderr.String())
	}
	return elapsed, nil
}

// warrenOnce creates a sandbox, runs /bin/echo (directly, as the baseline does: no
// shell) with streaming and times until the first output arrives; the sandbox is killed
// afterwards, untimed.
func warrenOnce(ctx context.Context, o Options) (total, create time.Duration, err error) {
	start := time.Now()
	var sb struct {
		ID string `json:"id"`
	}
	if err := call(ctx, o, "POST", "/v1/sandboxes", `{"template":"base"}`, &sb); err != nil {
		return 0, 0, err
	}
	create = time.Since(start)
	defer call(context.WithoutCancel(ctx), o, "DELETE", "/v1/sandboxes/"+sb.ID, "", nil)
	req, err := http.NewRequestWithContext(ctx, "POST", o.APIURL+"/v1/sandboxes/"+sb.ID+"/commands",
		strings.NewReader(`{"args":["/bin/echo","hello"],"stream":true}`))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+o.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return 0, 0, fmt.Errorf("exec: %s: %s", resp.Status, b)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == "event: stdout" {
			total = time.Since(start)
			io.Copy(io.Discard, resp.Body)
			return total, create, nil
		}
	}
	return 0, 0, errors.New("exec stream ended without output")
}

func call(ctx context.Context, o Options, method, path, body string, out any) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, o.APIURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+o.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w (is warren serve running at %s?)", method, path, err, o.APIURL)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
