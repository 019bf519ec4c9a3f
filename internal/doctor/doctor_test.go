package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/runtime/gvisor"
)

// fakeHost is a scripted machine. Paths in stat exist with the given mode; commands are
// keyed by the base name of the binary plus its arguments and succeed with "" output
// unless scripted.
type fakeHost struct {
	euid       int
	files      map[string]string
	stat       map[string]fs.FileMode
	bins       map[string]bool
	out        map[string]string
	failCmd    map[string]bool
	devErr     map[string]error
	free       uint64
	overlay    error
	run        time.Duration
	runErr     error
	sandboxes  int
	crun       time.Duration
	crunErr    error
	containers int
	// version is what RunscVersion reads; probe and probeErr what TryCheckpoint gives.
	version  gvisor.Version
	probe    CheckpointProbe
	probeErr error
	probes   int
}

// hybridMountinfo is the cgroup part of a real cgroup v1 hybrid host.
const hybridMountinfo = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

const v2Mountinfo = `30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

// healthy is a host where everything works, with hardware virtualization and a VMM.
func healthy() *fakeHost {
	return &fakeHost{
		files: map[string]string{
			"/proc/sys/kernel/osrelease":    "6.1.0-26-amd64\n",
			"/proc/self/mountinfo":          hybridMountinfo,
			"/proc/cgroups":                 "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t2\t1\nmemory\t4\t35\t1\npids\t8\t2\t1\n",
			"/proc/filesystems":             "nodev\tsysfs\nnodev\toverlay\n\text4\n",
			"/proc/sys/net/ipv4/ip_forward": "1\n",
			"/proc/cpuinfo":                 "processor\t: 0\nflags\t\t: fpu vme vmx sse\n",
		},
		stat: map[string]fs.FileMode{
			"/proc/self/ns/mnt": 0, "/proc/self/ns/pid": 0, "/proc/self/ns/net": 0, "/proc/self/ns/user": 0,
			"/dev/net/tun": fs.ModeDevice | fs.ModeCharDevice, "/dev/kvm": fs.ModeDevice | fs.ModeCharDevice,
			"/var/lib": fs.ModeDir,
		},
		bins: map[string]bool{"unshare": true, "nft": true, "ip": true, "runsc": true, "runc": true, "debootstrap": true, "firecracker": true},
		out: map[string]string{
			"runsc --version":       "runsc version 0.0~20240729.0\nspec: 1.0.2-dev\n",
			"runsc flags":           "  -platform string\n    \tspecifies which platform to use: systrap (default), ptrace, kvm. (default \"systrap\")\n",
			"runc --version":        "runc version 1.1.5+ds1\n",
			"nft --version":         "nftables v1.0.6 (Lester Gooch #5)\n",
			"ip -V":                 "ip utility, iproute2-6.1.0\n",
			"debootstrap --version": "debootstrap 1.0.128\n",
			"firecracker --version": "Firecracker v1.7.0\n",
		},
		failCmd: map[string]bool{},
		devErr:  map[string]error{},
		free:    50 << 30,
		run:     170 * time.Millisecond,
		crun:    30 * time.Millisecond,
		version: gvisor.Version{Module: gvisor.PinnedVersion, Date: "20260905"},
		probe:   CheckpointProbe{Works: true, StartMillis: 250, CheckpointMillis: 140, RestoreMillis: 400, AnswerMillis: 30, ImageBytes: 8_700_000},
	}
}

type fakeInfo struct {
	name string
	mode fs.FileMode
}

func (i fakeInfo) Name() string       { return i.name }
func (i fakeInfo) Size() int64        { return 0 }
func (i fakeInfo) Mode() fs.FileMode  { return i.mode }
func (i fakeInfo) ModTime() time.Time { return time.Time{} }
func (i fakeInfo) IsDir() bool        { return i.mode.IsDir() }
func (i fakeInfo) Sys() any           { return nil }

func (f *fakeHost) host() Host {
	return Host{
		Geteuid: func() int { return f.euid },
		ReadFile: func(name string) ([]byte, error) {
			if s, ok := f.files[name]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		},
		Stat: func(name string) (fs.FileInfo, error) {
			if m, ok := f.stat[name]; ok {
				return fakeInfo{filepath.Base(name), m}, nil
			}
			return nil, fs.ErrNotExist
		},
		LookPath: func(file string) (string, error) {
			if f.bins[file] {
				return "/usr/bin/" + file, nil
			}
			return "", errors.New("executable file not found in $PATH")
		},
		Command: func(_ context.Context, name string, args ...string) ([]byte, error) {
			key := strings.Join(append([]string{filepath.Base(name)}, args...), " ")
			if f.failCmd[key] {
				return []byte("boom"), errors.New("exit status 1")
			}
			return []byte(f.out[key]), nil
		},
		OpenDevice: func(name string) error { return f.devErr[name] },
		DiskFree:   func(string) (uint64, error) { return f.free, nil },
		TryOverlay: func(context.Context, string) error { return f.overlay },
		RunSandbox: func(context.Context, string, string) (time.Duration, error) {
			f.sandboxes++
			return f.run, f.runErr
		},
		RunContainer: func(context.Context, string, string) (time.Duration, error) {
			f.containers++
			return f.crun, f.crunErr
		},
		RunscVersion: func(_ context.Context, path string) (gvisor.Version, error) {
			v := f.version
			v.Path = path
			return v, nil
		},
		TryCheckpoint: func(context.Context, string, string) (CheckpointProbe, error) {
			f.probes++
			return f.probe, f.probeErr
		},
	}
}

func (f *fakeHost) report(measure bool) Report {
	return Run(context.Background(), Options{Host: f.host(), MeasureRuntimes: measure, RootFS: "/rootfs"})
}

var baseChecks = []string{CheckRoot, CheckKernel, CheckCgroups, CheckNamespaces, CheckTun, CheckOverlay,
	CheckNftables, CheckIproute2, CheckIPForward, CheckRunsc, CheckRunc, CheckDebootstrap, CheckDisk, CheckKVM, CheckVMM}

// measuredChecks are the checks of a run with MeasureRuntimes.
var measuredChecks = append(slices.Clone(baseChecks), CheckRunscRun, CheckRuncRun, CheckRunscCheckpoint)

// all3 is every runtime, strongest first.
var all3 = []string{RuntimeMicroVM, RuntimeGVisor, RuntimeRunc}

func names(r Report) []string {
	var n []string
	for _, c := range r.Checks {
		n = append(n, c.Name)
	}
	return n
}

func TestHealthyHost(t *testing.T) {
	r := healthy().report(true)
	if got, want := names(r), measuredChecks; !slices.Equal(got, want) {
		t.Errorf("checks = %v, want %v", got, want)
	}
	for _, c := range r.Checks {
		if c.Status != StatusOK {
			t.Errorf("%s: %s %q (fix %q), want ok", c.Name, c.Status, c.Detail, c.Fix)
		}
	}
	if !r.OK() || !slices.Equal(r.Runtimes, all3) || !r.MicroVMs || r.ExitCode() != 0 {
		t.Errorf("OK=%v runtimes=%v microvms=%v", r.OK(), r.Runtimes, r.MicroVMs)
	}
	if r.Summary != (Summary{OK: 18}) || r.Kernel != "6.1.0-26-amd64" || r.RunscRunMillis != 170 || r.RuncRunMillis != 30 {
		t.Errorf("summary %+v kernel %q runsc %v runc %v", r.Summary, r.Kernel, r.RunscRunMillis, r.RuncRunMillis)
	}
	if c, _ := r.Check(CheckCgroups); !strings.Contains(c.Detail, "v1 hybrid (cgroup2 at /sys/fs/cgroup/unified)") {
		t.Errorf("cgroups detail %q", c.Detail)
	}
	if c, _ := r.Check(CheckRunscRun); !strings.Contains(c.Detail, "170 ms (fast)") {
		t.Errorf("runsc_run detail %q", c.Detail)
	}
	if c, _ := r.Check(CheckRuncRun); !strings.Contains(c.Detail, "no user namespace") || !strings.Contains(c.Detail, "30 ms (fast)") {
		t.Errorf("runc_run detail %q", c.Detail)
	}
	if c, _ := r.Check(CheckRunsc); !strings.Contains(c.Detail, "runsc gvisor.dev/gvisor@"+gvisor.PinnedVersion+" at /usr/bin/runsc") || !strings.Contains(c.Detail, "(the pinned build)") {
		t.Errorf("runsc detail %q", c.Detail)
	}
	if c, _ := r.Check(CheckRunscCheckpoint); c.Detail != "checkpoint and restore work: start 250 ms, checkpoint 140 ms (image 8.7 MB), restore 400 ms, answered 30 ms later" {
		t.Errorf("runsc_checkpoint detail %q", c.Detail)
	}
	if r.RunscPath != "/usr/bin/runsc" || r.RunscVersion != "gvisor.dev/gvisor@"+gvisor.PinnedVersion || r.Checkpoint == nil || !r.Checkpoint.Works || r.Checkpoint.RestoreMillis != 400 {
		t.Errorf("runsc %q %q, checkpoint %+v", r.RunscPath, r.RunscVersion, r.Checkpoint)
	}
}

// Each case breaks the healthy host in one way and checks the one check it should change,
// plus the runtimes that remain usable.
func TestProblems(t *testing.T) {
	for _, tc := range []struct {
		name     string
		breakIt  func(*fakeHost)
		check    string
		status   Status
		detail   string // substring
		fix      string // substring
		runtimes []string
	}{
		{"not root", func(f *fakeHost) { f.euid = 1000 }, CheckRoot, StatusFail, "uid 1000", "run warren as root", nil},
		{"old kernel", func(f *fakeHost) { f.files["/proc/sys/kernel/osrelease"] = "4.9.0-x\n" }, CheckKernel, StatusFail, "older than 4.14", "upgrade", all3},
		{"oldish kernel", func(f *fakeHost) { f.files["/proc/sys/kernel/osrelease"] = "5.4.0\n" }, CheckKernel, StatusWarn, "untested", "upgrade", all3},
		{"cgroup v2", func(f *fakeHost) {
			f.files["/proc/self/mountinfo"] = v2Mountinfo
			f.files["/sys/fs/cgroup/cgroup.controllers"] = "cpuset cpu io memory pids\n"
		}, CheckCgroups, StatusOK, "v2 (unified at /sys/fs/cgroup); usable: cpu (v2), memory (v2), pids (v2)", "", all3},
		{"no memory controller", func(f *fakeHost) {
			f.files["/proc/cgroups"] = strings.Replace(f.files["/proc/cgroups"], "memory\t4\t35\t1", "memory\t4\t35\t0", 1)
		}, CheckCgroups, StatusWarn, "missing: memory", "cgroup_enable=memory", all3},
		{"no cgroups", func(f *fakeHost) { f.files["/proc/self/mountinfo"] = "" }, CheckCgroups, StatusFail, "no cgroup", "mount -t cgroup2", nil},
		{"no user ns", func(f *fakeHost) { f.failCmd["unshare --user true"] = true }, CheckNamespaces, StatusWarn, "not usable: user", "max_user_namespaces", all3},
		{"no net ns", func(f *fakeHost) { delete(f.stat, "/proc/self/ns/net") }, CheckNamespaces, StatusFail, "not usable: net", "CONFIG_NET_NS", nil},
		{"no tun", func(f *fakeHost) { delete(f.stat, "/dev/net/tun") }, CheckTun, StatusWarn, "/dev/net/tun", "mknod /dev/net/tun c 10 200", all3},
		{"no overlay", func(f *fakeHost) { f.files["/proc/filesystems"] = "nodev\tsysfs\n" }, CheckOverlay, StatusFail, "not in /proc/filesystems", "modprobe overlay", all3},
		{"overlay mount fails", func(f *fakeHost) { f.overlay = errors.New("invalid argument") }, CheckOverlay, StatusFail, "invalid argument", "ext4", all3},
		{"no nft", func(f *fakeHost) { delete(f.bins, "nft") }, CheckNftables, StatusFail, "not found", "apt-get install nftables", all3},
		{"nft cannot list", func(f *fakeHost) { f.failCmd["nft list ruleset"] = true }, CheckNftables, StatusFail, "list ruleset failed", "nf_tables", all3},
		{"no ip", func(f *fakeHost) { delete(f.bins, "ip") }, CheckIproute2, StatusWarn, "not found: warren serve does not need it", "apt-get install iproute2", all3},
		{"forwarding off", func(f *fakeHost) { f.files["/proc/sys/net/ipv4/ip_forward"] = "0\n" }, CheckIPForward, StatusWarn, "= 0; warren serve enables it", "sysctl -w net.ipv4.ip_forward=1", all3},
		{"no runsc", func(f *fakeHost) { delete(f.bins, "runsc") }, CheckRunsc, StatusFail, "not found", "run scripts/install-deps.sh", []string{"microvm", "runc"}},
		{"runsc 2022", func(f *fakeHost) {
			f.version = gvisor.Version{Release: "0.0~20221219.0", Date: "20221219"}
			f.out["runsc flags"] = "    \tspecifies which platform to use: ptrace (default), kvm. (default \"ptrace\")\n"
		}, CheckRunsc, StatusFail, "runsc 0.0~20221219.0 at /usr/bin/runsc; platforms: ptrace, kvm; no systrap platform", "builds gVisor's runsc at the pinned version", []string{"microvm", "runc"}},
		{"runsc debian", func(f *fakeHost) { f.version = gvisor.Version{Release: "0.0~20240729.0", Date: "20240729"} }, CheckRunsc, StatusWarn,
			"runsc 0.0~20240729.0 at /usr/bin/runsc; platforms: systrap, ptrace, kvm; older than the pinned gvisor.dev/gvisor@" + gvisor.PinnedVersion + ": its checkpoint fails while a sandbox has a TCP connection open",
			"installs it as /usr/local/bin/runsc", all3},
		{"runsc newer", func(f *fakeHost) {
			f.version = gvisor.Version{Module: "v0.0.0-20270101000000-0123456789ab", Date: "20270101"}
		}, CheckRunsc, StatusOK,
			"runsc gvisor.dev/gvisor@v0.0.0-20270101000000-0123456789ab at /usr/bin/runsc; platforms: systrap, ptrace, kvm (newer than the pinned", "", all3},
		{"checkpoint fails", func(f *fakeHost) {
			f.probe, f.probeErr = CheckpointProbe{StartMillis: 250}, errors.New("runsc checkpoint: exit status 128: endpoint cannot be saved in connected state")
		}, CheckRunscCheckpoint, StatusWarn, "checkpoint and restore do not work here (pause, resume, fork and snapshots need them): runsc checkpoint: exit status 128", "runsc checkpoint and restore by hand", all3},
		{"no runc", func(f *fakeHost) { delete(f.bins, "runc") }, CheckRunc, StatusWarn, "not found", "apt-get install runc", []string{"microvm", "gvisor"}},
		{"no debootstrap", func(f *fakeHost) { delete(f.bins, "debootstrap") }, CheckDebootstrap, StatusFail, "templates cannot be built", "apt-get install debootstrap", all3},
		{"disk low", func(f *fakeHost) { f.free = 3 << 30 }, CheckDisk, StatusWarn, "3.0 GiB free on /var/lib (less than 5 GiB)", "--data-dir", all3},
		{"disk full", func(f *fakeHost) { f.free = 500 << 20 }, CheckDisk, StatusFail, "need at least 1 GiB", "free space on /var/lib", all3},
		{"no kvm", func(f *fakeHost) { delete(f.stat, "/dev/kvm") }, CheckKVM, StatusWarn, "no /dev/kvm: microVMs not usable", "hardware virtualization", []string{"gvisor", "runc"}},
		{"kvm closed", func(f *fakeHost) { f.devErr["/dev/kvm"] = fs.ErrPermission }, CheckKVM, StatusWarn, "does not open", "permissions", []string{"gvisor", "runc"}},
		{"pvm without flag", func(f *fakeHost) { f.files["/proc/cpuinfo"] = "flags\t\t: fpu sse\n" }, CheckKVM, StatusWarn, "no vmx/svm flag, so it is a software backend (PVM or similar): microVMs not usable", "gVisor (systrap) works without it", []string{"gvisor", "runc"}},
		{"pvm module", func(f *fakeHost) { f.files["/proc/modules"] = "kvm_pvm 147456 0 - Live 0x0\nkvm 1 1 kvm_pvm\n" }, CheckKVM, StatusWarn, "is PVM (kvm_pvm module", "hardware virtualization", []string{"gvisor", "runc"}},
		{"sandbox ok", func(f *fakeHost) { f.run = 600 * time.Millisecond }, CheckRunscRun, StatusOK, "600 ms (ok)", "", all3},
		{"sandbox slow", func(f *fakeHost) { f.run = 2 * time.Second }, CheckRunscRun, StatusWarn, "2000 ms (slow)", "systrap", all3},
		{"sandbox fails", func(f *fakeHost) { f.runErr = errors.New("cannot create sandbox") }, CheckRunscRun, StatusFail, "cannot create sandbox", "--debug-log", []string{"microvm", "runc"}},
		{"pvm built in", func(f *fakeHost) { f.stat["/sys/module/kvm_pvm"] = fs.ModeDir }, CheckKVM, StatusWarn, "is PVM (kvm_pvm module", "hardware virtualization", []string{"gvisor", "runc"}},
		{"no vmm", func(f *fakeHost) { delete(f.bins, "firecracker") }, CheckVMM, StatusWarn, "no VMM (firecracker or cloud-hypervisor) on PATH", "install Firecracker", []string{"gvisor", "runc"}},
		{"cloud hypervisor", func(f *fakeHost) {
			delete(f.bins, "firecracker")
			f.bins["cloud-hypervisor"] = true
			f.out["cloud-hypervisor --version"] = "cloud-hypervisor v38.0\n"
		}, CheckVMM, StatusOK, "cloud-hypervisor v38.0 at /usr/bin/cloud-hypervisor", "", all3},
		{"vmm broken", func(f *fakeHost) { f.failCmd["firecracker --version"] = true }, CheckVMM, StatusWarn, "firecracker --version", "install Firecracker", []string{"gvisor", "runc"}},
		{"container ok", func(f *fakeHost) { f.crun = 450 * time.Millisecond }, CheckRuncRun, StatusOK, "450 ms (ok)", "", all3},
		{"container slow", func(f *fakeHost) { f.crun = 1500 * time.Millisecond }, CheckRuncRun, StatusWarn, "1500 ms (slow)", "expect ~20-50 ms", all3},
		{"container fails", func(f *fakeHost) { f.crunErr = errors.New("pivot_root: invalid argument") }, CheckRuncRun, StatusFail, "pivot_root: invalid argument", "runc --debug run", []string{"microvm", "gvisor"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := healthy()
			tc.breakIt(f)
			r := f.report(true)
			if !slices.Equal(names(r), measuredChecks) {
				t.Errorf("checks = %v", names(r))
			}
			c, _ := r.Check(tc.check)
			if c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) || !strings.Contains(c.Fix, tc.fix) {
				t.Errorf("%s = %s %q fix %q; want %s, detail with %q, fix with %q", tc.check, c.Status, c.Detail, c.Fix, tc.status, tc.detail, tc.fix)
			}
			if c.Status != StatusOK && c.Fix == "" {
				t.Errorf("%s is %s without a fix", c.Name, c.Status)
			}
			for _, other := range r.Checks {
				dependent := (tc.check == CheckRunsc || tc.check == CheckRunscRun) && (other.Name == CheckRunscRun || other.Name == CheckRunscCheckpoint) || tc.check == CheckRunc && other.Name == CheckRuncRun
				if other.Name != tc.check && !dependent && other.Status != StatusOK {
					t.Errorf("unrelated check %s is %s: %s", other.Name, other.Status, other.Detail)
				}
			}
			if !slices.Equal(r.Runtimes, tc.runtimes) || r.OK() != (len(tc.runtimes) > 0) || (r.ExitCode() == 0) != r.OK() {
				t.Errorf("runtimes = %v (OK %v), want %v", r.Runtimes, r.OK(), tc.runtimes)
			}
		})
	}
}

func TestMeasureOnlyWhenAsked(t *testing.T) {
	f := healthy()
	r := f.report(false)
	if !slices.Equal(names(r), baseChecks) || f.sandboxes+f.containers != 0 || r.RunscRunMillis+r.RuncRunMillis != 0 {
		t.Errorf("checks %v, sandboxes run %d, containers run %d", names(r), f.sandboxes, f.containers)
	}
	for _, rt := range r.Support {
		if rt.StartMillis != 0 || rt.Rating != "" {
			t.Errorf("%s has a start time without measuring: %+v", rt.Name, rt)
		}
	}
	f = healthy()
	r = Run(context.Background(), Options{Host: f.host(), MeasureRuntimes: true})
	for _, name := range []string{CheckRunscRun, CheckRuncRun} {
		if c, _ := r.Check(name); c.Status != StatusWarn || f.sandboxes+f.containers != 0 {
			t.Errorf("measuring without a rootfs: %+v, sandboxes run %d, containers %d", c, f.sandboxes, f.containers)
		}
	}
	f = healthy()
	delete(f.bins, "runsc")
	r = f.report(true)
	if c, _ := r.Check(CheckRunscRun); c.Status != StatusWarn || f.sandboxes != 0 {
		t.Errorf("measuring without runsc: %+v, sandboxes run %d", c, f.sandboxes)
	}
	f = healthy()
	delete(f.bins, "runc")
	r = f.report(true)
	if c, _ := r.Check(CheckRuncRun); c.Status != StatusWarn || !strings.Contains(c.Detail, "runc is not usable") || f.containers != 0 || f.sandboxes != 1 {
		t.Errorf("measuring without runc: %+v, containers run %d", c, f.containers)
	}
}

func TestWriteText(t *testing.T) {
	f := healthy()
	delete(f.bins, "runsc")
	f.files["/proc/sys/net/ipv4/ip_forward"] = "0\n"
	f.euid = 1000
	r := f.report(false)
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	lines := strings.Split(text, "\n")
	col := -1
	for i, l := range lines {
		for _, st := range []Status{StatusOK, StatusWarn, StatusFail} {
			if !strings.HasPrefix(l, "  "+string(st)+" ") {
				continue
			}
			// Details start in the same column on every check line.
			rest := strings.TrimLeft(l[2+4:], " ")
			name, _, _ := strings.Cut(rest, " ")
			c := strings.Index(l, name) + len(name)
			c += len(l[c:]) - len(strings.TrimLeft(l[c:], " "))
			if col == -1 {
				col = c
			} else if c != col {
				t.Errorf("line %q: detail at column %d, want %d", l, c, col)
			}
			if st != StatusOK && !strings.Contains(lines[i+1], "fix: ") {
				t.Errorf("%s line not followed by its fix: %q", st, lines[i+1])
			}
		}
	}
	for _, want := range []string{
		"  fail  root  ", "fix: run warren as root",
		"fix: run scripts/install-deps.sh (as root, from a Warren checkout; it needs Go): it builds gVisor's runsc at the pinned version",
		"  microvm   microvm    not usable: not running as root\n",
		"  gvisor    sandbox    not usable: not running as root; runsc not installed\n",
		"runtime: none usable. Warren cannot run sandboxes on this host",
		"  - warning: no runtime is usable", "Summary: 12 ok, 1 warn, 2 fail",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	r := healthy().report(true)
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"hostname", "kernel", "time", "checks", "summary", "runtimes", "microvms", "runsc_run_ms", "runc_run_ms", "runtime_support", "recommended", "runsc_path", "runsc_version", "runsc_checkpoint"} {
		if _, ok := back[k]; !ok {
			t.Errorf("JSON lacks %q:\n%s", k, buf.String())
		}
	}
	first := back["checks"].([]any)[0].(map[string]any)
	if first["name"] != "root" || first["status"] != "ok" {
		t.Errorf("first check = %v", first)
	}
	if _, hasFix := first["fix"]; hasFix {
		t.Error("ok check has a fix field")
	}
	gv := back["runtime_support"].([]any)[1].(map[string]any)
	if gv["name"] != "gvisor" || gv["isolation"] != "sandbox" || gv["usable"] != true || gv["start_ms"] != 170.0 || gv["rating"] != "fast" {
		t.Errorf("gvisor support = %v", gv)
	}
	rec := back["recommended"].(map[string]any)
	env, _ := rec["env"].(map[string]any)
	if rec["runtime"] != "microvm" || env["WARREN_RUNTIME"] != "microvm" || len(rec["notes"].([]any)) == 0 {
		t.Errorf("recommended = %v", rec)
	}
}

func TestParseKernel(t *testing.T) {
	for in, want := range map[string][2]int{"6.18.44-fc-v595": {6, 18}, "5.10.0-28-amd64": {5, 10}, "4.14": {4, 14}, "6.1rc2": {6, 1}} {
		if got, err := parseKernel(in); err != nil || got != want {
			t.Errorf("parseKernel(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := parseKernel("garbage"); err == nil {
		t.Error("parsed garbage")
	}
}
