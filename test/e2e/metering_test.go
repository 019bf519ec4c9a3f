package e2e

import (
	"fmt"
	"math"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type usageRowJSON struct {
	SandboxID  string `json:"sandbox_id"`
	TemplateID string `json:"template_id"`
	WallMS     int64  `json:"wall_ms"`
	CPUMicros  int64  `json:"cpu_us"`
	MemMBs     int64  `json:"memory_mb_s"`
	DiskMBs    int64  `json:"disk_mb_s"`
	NetRx      int64  `json:"net_rx_bytes"`
	NetTx      int64  `json:"net_tx_bytes"`
}

type usageJSON struct {
	Rows  []usageRowJSON `json:"rows"`
	Total usageRowJSON   `json:"total"`
}

// cgroupCPUMicros reads the host's CPU accounting of a sandbox (gVisor's cgroup holds
// the sentry, gofer and every guest task), in microseconds.
func cgroupCPUMicros(t *testing.T, s *server, id string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuacct", s.Net, id, "cpuacct.usage"))
	if err != nil {
		t.Fatalf("reading the sandbox's cgroup CPU accounting: %v", err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return ns / 1000
}

// TestMeteringSurvivesCrash: a sandbox burns CPU while the server is killed with
// SIGKILL and restarted; the metered CPU seconds match the cgroup's accounting within
// one sampling interval, and the time the server was down is booked too.
func TestMeteringSurvivesCrash(t *testing.T) {
	const interval = time.Second
	env := []string{"WARREN_METER_INTERVAL=" + interval.String()}
	s := startServer(t, serverOpts{ExtraEnv: env})
	sb := s.Create(map[string]any{"timeout": 300, "limits": map[string]any{"cpu_cores": 1, "memory_mb": 256}})
	// 20 MB on disk, and eight seconds of one busy core, detached from the command so
	// that it outlives it.
	r := s.Exec(sb.ID, "dd if=/dev/zero of=/home/user/ballast bs=1M count=20 status=none && setsid -f timeout 8 sh -c 'while :; do :; done' >/dev/null 2>&1; echo started")
	if !strings.Contains(r.Stdout, "started") {
		t.Fatalf("starting the workload: %+v", r)
	}
	burnStart := time.Now()
	time.Sleep(2500 * time.Millisecond)
	atCrash := cgroupCPUMicros(t, s, sb.ID)
	s.Crash()
	t.Logf("server killed with SIGKILL %.1fs into the workload", time.Since(burnStart).Seconds())
	time.Sleep(3 * time.Second)
	whileDown := cgroupCPUMicros(t, s, sb.ID) - atCrash
	s.Start(env)
	// Let the workload finish and the meter take a few samples.
	time.Sleep(time.Until(burnStart.Add(8*time.Second)) + 3*interval)
	cgroup := cgroupCPUMicros(t, s, sb.ID)
	s.Kill(sb.ID) // the meter's last reading is taken at the kill
	var u usageJSON
	if code, raw := s.API("GET", "/v1/usage?group_by=sandbox&sandbox_id="+sb.ID, nil, &u); code != 200 || len(u.Rows) != 1 {
		t.Fatalf("usage: %d %s", code, raw)
	}
	metered := u.Rows[0].CPUMicros
	diff := metered - cgroup
	t.Logf("metered CPU %.3fs, cgroup accounting %.3fs before the kill, difference %.3fs (allowed: one %s interval at 1 core)",
		float64(metered)/1e6, float64(cgroup)/1e6, float64(diff)/1e6, interval)
	if math.Abs(float64(diff)) > float64(interval.Microseconds()) {
		t.Errorf("metered CPU %dus differs from the cgroup's %dus by more than one sampling interval", metered, cgroup)
	}
	// What the loop burned while the server was down is in the cgroup's figure, so the
	// check above shows it booked, provided it is more than the one interval allowed. The
	// CPU the loop gets depends on the machine's load (ci14, load 17: 5 s of 8), so this
	// is measured rather than assumed.
	t.Logf("CPU burned while the server was down: %.3fs", float64(whileDown)/1e6)
	if whileDown <= interval.Microseconds() {
		t.Errorf("the busy loop burned only %dus while the server was down: not enough to tell booked downtime from dropped", whileDown)
	}
	if w := u.Rows[0].WallMS; w < 10_000 || w > 60_000 {
		t.Errorf("wall time %dms; want the sandbox's ~11-15 s life", w)
	}
	if u.Rows[0].MemMBs <= 0 || u.Rows[0].DiskMBs <= 0 {
		t.Errorf("memory %d MB·s, disk %d MB·s: want both metered", u.Rows[0].MemMBs, u.Rows[0].DiskMBs)
	}
}

// TestMeteringNetworkAndDeadSandbox: traffic is metered both ways, and a sandbox that
// dies while the server is down has its record closed by the next start.
func TestMeteringNetworkAndDeadSandbox(t *testing.T) {
	env := []string{"WARREN_METER_INTERVAL=1s"}
	s := startServer(t, serverOpts{ExtraEnv: env})
	sb := s.Create(map[string]any{"timeout": 300})
	// 3 MB out of the sandbox to the host: tx from the sandbox's side.
	r := s.Exec(sb.ID, "python3 -c \"import socket,sys; s=socket.socket(); s.settimeout(2)\ntry:\n  s.connect(('10.0.0.1',9))\nexcept Exception: pass\n\"; head -c 3000000 /dev/zero | python3 -c 'import sys; sys.stdin.buffer.read()'; echo ok")
	if !strings.Contains(r.Stdout, "ok") {
		t.Fatalf("exec: %+v", r)
	}
	time.Sleep(2500 * time.Millisecond)
	s.Crash()
	// The sandbox dies while the server is down.
	exec := func(args ...string) {
		if out, err := runCmd(args...); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	exec("runsc", "--root", filepath.Join(s.DataDir, "runsc"), "kill", sb.ID, "KILL")
	time.Sleep(500 * time.Millisecond)
	s.Start(env)
	var got sandboxJSON
	s.API("GET", "/v1/sandboxes/"+sb.ID, nil, &got)
	if got.State != "stopped" {
		t.Errorf("dead sandbox after restart: %+v; want stopped (lost)", got)
	}
	var u usageJSON
	if code, raw := s.API("GET", "/v1/usage?group_by=sandbox&sandbox_id="+sb.ID, nil, &u); code != 200 || len(u.Rows) != 1 {
		t.Fatalf("usage: %d %s", code, raw)
	}
	t.Logf("dead sandbox's usage after restart: %+v", u.Rows[0])
	if u.Rows[0].WallMS < 2000 || u.Rows[0].CPUMicros <= 0 {
		t.Errorf("usage %+v: want the wall time and CPU booked before the crash", u.Rows[0])
	}
}

// testPlans prices a few seconds of work in whole currency units, so that every line of
// a short workload's invoice is far from zero and a wrong quantity shows in the cents.
const testPlans = `{
  "default": "payg",
  "plans": [
    {"id": "payg", "per_minute": "1.37", "minimum_charge": "0.05"},
    {"id": "resources", "per_cpu_hour": "3600", "per_gb_hour": "7200", "per_gb_month_disk": "2592000", "per_gb_traffic": "50000"},
    {"id": "team", "monthly_price": "150.00", "included_hours": "0.001", "included_concurrency": 10, "per_minute": "2.5"}
  ]
}`

// TestInvoiceMatchesUsage: for each plan type (per minute with a minimum charge, per
// resource, a package with included hours), the invoice of a real workload equals the
// total computed here by hand from the metered quantities and the plan's prices, to the
// cent.
func TestInvoiceMatchesUsage(t *testing.T) {
	plansFile := filepath.Join(t.TempDir(), "plans.json")
	if err := os.WriteFile(plansFile, []byte(testPlans), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, serverOpts{ExtraEnv: []string{"WARREN_METER_INTERVAL=1s", "WARREN_PLANS=" + plansFile}})
	var plans struct {
		Plans []map[string]any `json:"plans"`
	}
	s.API("GET", "/v1/plans", nil, &plans)
	for _, planID := range []string{"payg", "resources", "team"} {
		t.Run(planID, func(t *testing.T) {
			var plan map[string]any
			for _, p := range plans.Plans {
				if p["id"] == planID {
					plan = p
				}
			}
			if plan == nil {
				t.Fatalf("plan %s not offered: %v", planID, plans.Plans)
			}
			_, key := s.newTeam(map[string]any{"name": "billed " + planID, "plan_id": planID})
			var ids []string
			for i := range 2 {
				var sb sandboxJSON
				if code, raw := s.APIKey(key, "POST", "/v1/sandboxes", map[string]any{"timeout": 60}, &sb); code != 201 {
					t.Fatalf("create: %d %s", code, raw)
				}
				ids = append(ids, sb.ID)
				var r execJSON
				s.APIKey(key, "POST", "/v1/sandboxes/"+sb.ID+"/commands", map[string]any{"cmd": fmt.Sprintf("timeout %d sh -c 'while :; do :; done'; true", i+1)}, &r)
			}
			for _, id := range ids {
				s.APIKey(key, "DELETE", "/v1/sandboxes/"+id, nil, nil)
			}
			var u usageJSON
			s.APIKey(key, "GET", "/v1/usage?group_by=sandbox", nil, &u)
			if len(u.Rows) != 2 {
				t.Fatalf("usage rows %+v; want 2 sandboxes", u.Rows)
			}
			want := handInvoice(t, plan, u.Rows)
			period := time.Now().UTC().Format("2006-01")
			var inv struct {
				Total string `json:"total"`
				Lines []struct {
					Description, Quantity, Amount string
				} `json:"lines"`
			}
			if code, raw := s.APIKey(key, "GET", "/v1/invoices/"+period, nil, &inv); code != 200 {
				t.Fatalf("invoice: %d %s", code, raw)
			}
			t.Logf("%s: usage %+v; invoice total %s, by hand %s; lines %+v", planID, u.Total, inv.Total, want, inv.Lines)
			if inv.Total != want {
				t.Errorf("invoice total %s; computed by hand %s", inv.Total, want)
			}
			csv, _ := s.APIKey(key, "GET", "/v1/invoices/"+period+"?format=csv", nil, nil)
			if csv != 200 {
				t.Errorf("CSV export: %d", csv)
			}
		})
	}
	// A spending limit stops new sandboxes once this period's charges reach it: one
	// short sandbox costs payg's minimum charge, 0.05, which is the limit.
	t.Run("spending limit", func(t *testing.T) {
		_, key := s.newTeam(map[string]any{"name": "thrifty", "plan_id": "payg", "spend_limit": "0.05"})
		var sb sandboxJSON
		if code, raw := s.APIKey(key, "POST", "/v1/sandboxes", map[string]any{"timeout": 60}, &sb); code != 201 {
			t.Fatalf("first create: %d %s", code, raw)
		}
		s.APIKey(key, "DELETE", "/v1/sandboxes/"+sb.ID, nil, nil)
		code, raw := s.APIKey(key, "POST", "/v1/sandboxes", map[string]any{"timeout": 60}, nil)
		e := decodeErr(t, raw)
		t.Logf("after one sandbox: %d %s", code, raw)
		if code != 403 || e.Code != "quota_exceeded" || e.Quota != "spending_limit" || e.Limit != 0.05 || e.Used < 0.05 {
			t.Errorf("create past the spending limit = %d %s; want 403 quota_exceeded spending_limit", code, raw)
		}
		// Raising the limit lets the team go on.
		var teams struct {
			Teams []teamJSON `json:"teams"`
		}
		s.APIKey(key, "GET", "/v1/teams", nil, &teams)
		if code, raw := s.API("PATCH", "/v1/teams/"+teams.Teams[0].ID, map[string]any{"spend_limit": "10"}, nil); code != 200 {
			t.Fatalf("raising the limit: %d %s", code, raw)
		}
		if code, raw := s.APIKey(key, "POST", "/v1/sandboxes", map[string]any{"timeout": 60}, &sb); code != 201 {
			t.Errorf("create after raising the limit: %d %s", code, raw)
		} else {
			s.APIKey(key, "DELETE", "/v1/sandboxes/"+sb.ID, nil, nil)
		}
	})
}

// handInvoice prices the rows with the plan the way the pricing documentation says:
// each line's amount is quantity x price rounded half-up to the cent (quantities
// rounded half-up to 6 decimals first), minutes beyond the included hours, shortest
// sandbox first, a per-sandbox minimum charge, and the monthly fee.
func handInvoice(t *testing.T, plan map[string]any, rows []usageRowJSON) string {
	t.Helper()
	rat := func(field string) *big.Rat {
		v, _ := plan[field].(string)
		if v == "" {
			v = "0"
		}
		r, ok := new(big.Rat).SetString(v)
		if !ok {
			t.Fatalf("plan %s = %q", field, v)
		}
		return r
	}
	total := new(big.Rat)
	line := func(qty, price *big.Rat) {
		q := roundRat(qty, 6)
		total.Add(total, roundRat(new(big.Rat).Mul(q, price), 2))
	}
	total.Add(total, rat("monthly_price"))
	// Minutes: included hours consumed shortest sandbox first.
	included := new(big.Rat).Mul(rat("included_hours"), big.NewRat(60*60*1000, 1)) // ms
	walls := make([]int64, len(rows))
	for i, r := range rows {
		walls[i] = r.WallMS
	}
	for i := range walls {
		for j := i + 1; j < len(walls); j++ {
			if walls[j] < walls[i] {
				walls[i], walls[j] = walls[j], walls[i]
			}
		}
	}
	billed := new(big.Rat)
	minimumCount := int64(0)
	perMin, minimum := rat("per_minute"), rat("minimum_charge")
	for _, w := range walls {
		rest := new(big.Rat).SetInt64(w)
		if included.Cmp(rest) >= 0 {
			included.Sub(included, rest)
			continue
		}
		rest.Sub(rest, included)
		included.SetInt64(0)
		minutes := new(big.Rat).Quo(rest, big.NewRat(60000, 1))
		if minimum.Sign() > 0 && new(big.Rat).Mul(minutes, perMin).Cmp(minimum) < 0 {
			minimumCount++
			continue
		}
		billed.Add(billed, rest)
	}
	if perMin.Sign() > 0 || billed.Sign() > 0 {
		line(new(big.Rat).Quo(billed, big.NewRat(60000, 1)), perMin)
	}
	if minimumCount > 0 {
		line(big.NewRat(minimumCount, 1), minimum)
	}
	var cpu, mem, disk, net int64
	for _, r := range rows {
		cpu += r.CPUMicros
		mem += r.MemMBs
		disk += r.DiskMBs
		net += r.NetRx + r.NetTx
	}
	line(big.NewRat(cpu, 3600*1e6), rat("per_cpu_hour"))
	line(big.NewRat(mem, 1024*3600), rat("per_gb_hour"))
	line(big.NewRat(disk, 1024*2592000), rat("per_gb_month_disk"))
	line(big.NewRat(net, 1<<30), rat("per_gb_traffic"))
	return total.FloatString(2)
}

// roundRat rounds a non-negative rational half-up to n decimals.
func roundRat(r *big.Rat, n int) *big.Rat {
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	x := new(big.Rat).Mul(r, new(big.Rat).SetInt(scale))
	x.Add(x, big.NewRat(1, 2))
	q := new(big.Int).Quo(x.Num(), x.Denom())
	return new(big.Rat).SetFrac(q, scale)
}

func runCmd(args ...string) ([]byte, error) {
	return exec.Command(args[0], args[1:]...).CombinedOutput()
}
