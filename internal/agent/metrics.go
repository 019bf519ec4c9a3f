package agent

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// cpuSampleWindow is how long GET /metrics measures CPU use.
const cpuSampleWindow = 100 * time.Millisecond

// metrics is the GET /metrics body (envd's snake_case fields).
type metrics struct {
	Timestamp   int64   `json:"ts"`
	CPUCount    int     `json:"cpu_count"`
	CPUUsedPct  float64 `json:"cpu_used_pct"`
	MemTotal    uint64  `json:"mem_total"`
	MemUsed     uint64  `json:"mem_used"`
	MemCache    uint64  `json:"mem_cache"`
	MemTotalMiB uint64  `json:"mem_total_mib"`
	MemUsedMiB  uint64  `json:"mem_used_mib"`
	DiskUsed    uint64  `json:"disk_used"`
	DiskTotal   uint64  `json:"disk_total"`
	// OOMKills counts the processes the agent's OOM watchdog killed (Warren only).
	OOMKills int64 `json:"oom_kills"`
}

func (a *Agent) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r, "GET")
		return
	}
	m, err := collectMetrics(r.Context().Done())
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "collecting metrics: "+err.Error())
		return
	}
	m.OOMKills = a.oom.killCount()
	writeJSON(w, http.StatusOK, m)
}

// collectMetrics reads CPU use over cpuSampleWindow from /proc/stat, memory from
// /proc/meminfo and disk use of / from statfs(2).
func collectMetrics(cancel <-chan struct{}) (*metrics, error) {
	m := &metrics{Timestamp: time.Now().Unix(), CPUCount: runtime.NumCPU()}

	busy0, total0, err := readCPUTimes()
	if err != nil {
		return nil, err
	}
	select {
	case <-time.After(cpuSampleWindow):
	case <-cancel:
		return nil, errors.New("request canceled")
	}
	busy1, total1, err := readCPUTimes()
	if err != nil {
		return nil, err
	}
	if total1 > total0 {
		pct := 100 * float64(busy1-busy0) / float64(total1-total0)
		m.CPUUsedPct = math.Round(pct*100) / 100
	}

	mem, err := readMeminfo()
	if err != nil {
		return nil, err
	}
	m.MemTotal = mem["MemTotal"]
	avail, ok := mem["MemAvailable"]
	if !ok {
		avail = mem["MemFree"] + mem["Buffers"] + mem["Cached"]
	}
	if avail < m.MemTotal {
		m.MemUsed = m.MemTotal - avail
	}
	m.MemCache = mem["Cached"] + mem["Buffers"]
	m.MemTotalMiB = m.MemTotal >> 20
	m.MemUsedMiB = m.MemUsed >> 20

	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		return nil, fmt.Errorf("statfs /: %w", err)
	}
	bsize := uint64(st.Bsize)
	m.DiskTotal = st.Blocks * bsize
	m.DiskUsed = (st.Blocks - st.Bfree) * bsize
	return m, nil
}

// readCPUTimes returns busy and total jiffies from the "cpu" line of /proc/stat.
func readCPUTimes() (busy, total uint64, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || fields[0] != "cpu" {
			continue
		}
		for i, s := range fields[1:] {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("parsing /proc/stat: %w", err)
			}
			// user nice system idle iowait irq softirq steal guest guest_nice;
			// guest time is already counted in user/nice.
			if i >= 8 {
				break
			}
			total += v
			if i != 3 && i != 4 { // idle, iowait
				busy += v
			}
		}
		return busy, total, nil
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	return 0, 0, errors.New("no cpu line in /proc/stat")
}

// readMeminfo returns /proc/meminfo in bytes, by field name.
func readMeminfo() (map[string]uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			continue
		}
		if len(fields) > 1 && fields[1] == "kB" {
			v *= 1024
		}
		out[name] = v
	}
	return out, sc.Err()
}
