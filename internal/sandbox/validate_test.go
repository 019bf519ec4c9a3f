package sandbox

import (
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// testService returns a Service on fakes that answer errNotSet.
func testService() *Service {
	s, err := New(Config{
		Store: &fakeStore{}, Node: &fakeNode{drivers: []runtime.Driver{gvisorFake}},
		DefaultTimeout: 300 * time.Second, MaxTimeout: 24 * time.Hour,
		DefaultLimits: domain.Limits{CPUCores: 1, MemoryMB: 512, DiskMB: 2048, MaxProcesses: 1024},
		MaxLimits:     domain.Limits{CPUCores: 2, MemoryMB: 8192, DiskMB: 20480, MaxProcesses: 8192},
	})
	if err != nil {
		panic(err)
	}
	return s
}

func TestResolveLimits(t *testing.T) {
	s := testService()
	cases := []struct {
		name  string
		in    domain.Limits
		want  domain.Limits
		field string // "" = ok
	}{
		{"defaults", domain.Limits{}, domain.Limits{CPUCores: 1, MemoryMB: 512, DiskMB: 2048, MaxProcesses: 1024}, ""},
		{"partial", domain.Limits{CPUCores: 0.5, MemoryMB: 1024}, domain.Limits{CPUCores: 0.5, MemoryMB: 1024, DiskMB: 2048, MaxProcesses: 1024}, ""},
		{"at max", domain.Limits{CPUCores: 2, MemoryMB: 8192, DiskMB: 20480, MaxProcesses: 8192}, domain.Limits{CPUCores: 2, MemoryMB: 8192, DiskMB: 20480, MaxProcesses: 8192}, ""},
		{"cpu over", domain.Limits{CPUCores: 2.5}, domain.Limits{}, "limits.cpu_cores"},
		{"memory over", domain.Limits{MemoryMB: 9000}, domain.Limits{}, "limits.memory_mb"},
		{"disk over", domain.Limits{DiskMB: 1 << 20}, domain.Limits{}, "limits.disk_mb"},
		{"procs over", domain.Limits{MaxProcesses: 100000}, domain.Limits{}, "limits.max_processes"},
		{"negative", domain.Limits{MemoryMB: -1}, domain.Limits{}, "limits"},
		{"memory too small", domain.Limits{MemoryMB: 16}, domain.Limits{}, "limits.memory_mb"},
		{"cpu too small", domain.Limits{CPUCores: 0.01}, domain.Limits{}, "limits.cpu_cores"},
		{"procs too small", domain.Limits{MaxProcesses: 2}, domain.Limits{}, "limits.max_processes"},
	}
	for _, c := range cases {
		got, err := resolveLimits(c.in, s.cfg.DefaultLimits, s.cfg.MaxLimits)
		if c.field == "" {
			if err != nil || got != c.want {
				t.Errorf("%s: got %+v, %v; want %+v", c.name, got, err, c.want)
			}
			continue
		}
		if !domain.IsKind(err, domain.KindInvalid) || domain.FieldOf(err) != c.field {
			t.Errorf("%s: err %v (field %q), want invalid %s", c.name, err, domain.FieldOf(err), c.field)
		}
	}
	_, err := resolveLimits(domain.Limits{MemoryMB: 9000}, s.cfg.DefaultLimits, s.cfg.MaxLimits)
	if !strings.Contains(err.Error(), "8192") || !strings.Contains(err.Error(), "WARREN_MAX_MEMORY_MB") {
		t.Errorf("message should name the maximum and the knob: %v", err)
	}
}

func TestResolveTimeout(t *testing.T) {
	s := testService()
	cases := []struct {
		in   time.Duration
		want time.Duration
		ok   bool
	}{
		{0, 300 * time.Second, true},
		{time.Second, time.Second, true},
		{24 * time.Hour, 24 * time.Hour, true},
		{500 * time.Millisecond, 0, false},
		{25 * time.Hour, 0, false},
	}
	for _, c := range cases {
		got, err := resolveTimeout(c.in, s.cfg.DefaultTimeout, s.cfg.MaxTimeout)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("%s: %s, %v", c.in, got, err)
		}
	}
}

func TestValidateMap(t *testing.T) {
	big := map[string]string{}
	for i := 0; i < 101; i++ {
		big[strings.Repeat("k", i+1)] = "v"
	}
	cases := []struct {
		name string
		m    map[string]string
		env  bool
		ok   bool
	}{
		{"nil", nil, true, true},
		{"fine", map[string]string{"A": "b"}, true, true},
		{"empty key", map[string]string{"": "b"}, false, false},
		{"equals in env key", map[string]string{"A=B": "c"}, true, false},
		{"equals in metadata key", map[string]string{"a=b": "c"}, false, true},
		{"nul", map[string]string{"a": "b\x00"}, false, false},
		{"long value", map[string]string{"a": strings.Repeat("x", 9000)}, false, false},
		{"too many", big, false, false},
	}
	for _, c := range cases {
		err := validateMap("env", c.m, c.env)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
		if err != nil && domain.FieldOf(err) != "env" {
			t.Errorf("%s: field %q", c.name, domain.FieldOf(err))
		}
	}
}

func TestParseLogLine(t *testing.T) {
	e, ok := parseLogLine([]byte(`{"time":"2026-11-27T10:00:00.5Z","level":"INFO","msg":"process started","pid":7,"cmd":"/bin/bash"}`))
	if !ok || e.Level != "info" || e.Message != "process started" || e.Fields["pid"] != "7" || e.Timestamp.IsZero() {
		t.Errorf("json line: %+v", e)
	}
	e, ok = parseLogLine([]byte("runsc: some plain text"))
	if !ok || e.Message != "runsc: some plain text" {
		t.Errorf("plain line: %+v", e)
	}
	if _, ok := parseLogLine([]byte("   ")); ok {
		t.Errorf("blank line parsed")
	}
}
