package doctor

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// Host variations for the runtime table and the recommendation.
func pvm(f *fakeHost) { // this project's machines: /dev/kvm is kvm_pvm, built in
	f.files["/proc/cpuinfo"] = "processor\t: 0\nflags\t\t: fpu vme sse hypervisor\n"
	f.stat["/sys/module/kvm_pvm"] = fs.ModeDir
}
func noKVM(f *fakeHost)   { delete(f.stat, "/dev/kvm") }
func noVMM(f *fakeHost)   { delete(f.bins, "firecracker") }
func noRunsc(f *fakeHost) { delete(f.bins, "runsc") }
func noRunc(f *fakeHost)  { delete(f.bins, "runc") }

func host(changes ...func(*fakeHost)) *fakeHost {
	f := healthy()
	for _, c := range changes {
		c(f)
	}
	return f
}

func TestRuntimeTable(t *testing.T) {
	type want struct {
		usable  bool
		reasons []string
		fix     string // substring of the runtime's fix
		start   float64
		rating  string
	}
	for _, tc := range []struct {
		name string
		f    *fakeHost
		want map[string]want
	}{
		{"healthy", host(), map[string]want{
			RuntimeMicroVM: {usable: true},
			RuntimeGVisor:  {usable: true, start: 170, rating: "fast"},
			RuntimeRunc:    {usable: true, start: 30, rating: "fast"},
		}},
		{"this host: pvm, no vmm", host(pvm, noVMM), map[string]want{
			RuntimeMicroVM: {reasons: []string{"no hardware virtualization (PVM backend)", "no VMM installed"}, fix: "bare metal, or a VM with nested virtualization"},
			RuntimeGVisor:  {usable: true, start: 170, rating: "fast"},
			RuntimeRunc:    {usable: true, start: 30, rating: "fast"},
		}},
		{"hardware kvm, no vmm", host(noVMM), map[string]want{
			RuntimeMicroVM: {reasons: []string{"no VMM installed"}, fix: "install Firecracker"},
			RuntimeGVisor:  {usable: true, start: 170, rating: "fast"},
			RuntimeRunc:    {usable: true, start: 30, rating: "fast"},
		}},
		{"no kvm, broken runtimes", host(noKVM, noRunc, func(f *fakeHost) {
			f.runErr = errors.New("boom")
			f.failCmd["firecracker --version"] = true
		}), map[string]want{
			RuntimeMicroVM: {reasons: []string{"no /dev/kvm", "firecracker does not run"}, fix: "microVMs need hardware virtualization"},
			RuntimeGVisor:  {reasons: []string{"a test run failed"}, fix: "--debug-log"},
			RuntimeRunc:    {reasons: []string{"runc not installed"}, fix: "apt-get install runc"},
		}},
		{"slow starts", host(func(f *fakeHost) { f.run, f.crun = 650*time.Millisecond, 1200*time.Millisecond }), map[string]want{
			RuntimeMicroVM: {usable: true},
			RuntimeGVisor:  {usable: true, start: 650, rating: "ok"},
			RuntimeRunc:    {usable: true, start: 1200, rating: "slow"},
		}},
		{"not root", host(func(f *fakeHost) { f.euid = 1000 }), map[string]want{
			RuntimeMicroVM: {reasons: []string{"not running as root"}, fix: "run warren as root"},
			RuntimeGVisor:  {reasons: []string{"not running as root"}, fix: "run warren as root"},
			RuntimeRunc:    {reasons: []string{"not running as root"}, fix: "run warren as root"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.f.report(true)
			if got := []string{r.Support[0].Name, r.Support[1].Name, r.Support[2].Name}; !slices.Equal(got, all3) {
				t.Fatalf("runtimes in order %v, want %v", got, all3)
			}
			isolation := map[string]string{RuntimeMicroVM: "microvm", RuntimeGVisor: "sandbox", RuntimeRunc: "container"}
			for _, rt := range r.Support {
				w := tc.want[rt.Name]
				if rt.Usable != w.usable || !slices.Equal(rt.Reasons, w.reasons) || !strings.Contains(rt.Fix, w.fix) ||
					rt.StartMillis != w.start || rt.Rating != w.rating || rt.Isolation != isolation[rt.Name] {
					t.Errorf("%s = %+v, want %+v", rt.Name, rt, w)
				}
				if !rt.Usable && rt.Fix == "" {
					t.Errorf("%s is not usable and has no fix", rt.Name)
				}
				if rt.Usable == (rt.Fix != "") {
					t.Errorf("%s: usable %v with fix %q", rt.Name, rt.Usable, rt.Fix)
				}
			}
		})
	}
}

func TestRecommend(t *testing.T) {
	for _, tc := range []struct {
		name    string
		f       *fakeHost
		dataDir string
		runtime string
		env     map[string]string
		flags   []string
		notes   []string // each a substring of some note
		never   []string // substrings no note may have
	}{
		{"kvm and vmm: microvm", host(), "", RuntimeMicroVM,
			map[string]string{"WARREN_RUNTIME": "microvm"}, []string{"--runtime=microvm"},
			[]string{"own guest kernel under hardware virtualization (firecracker)", "auto picks microvm", "runc is usable too (it starts in 30 ms)"}, []string{"warning:"}},
		{"kvm and vmm alone: microvm", host(noRunsc, noRunc), "", RuntimeMicroVM,
			map[string]string{"WARREN_RUNTIME": "microvm"}, []string{"--runtime=microvm"}, nil, []string{"runc is usable"}},
		{"only runsc: gvisor", host(noKVM, noVMM, noRunc), "", RuntimeGVisor,
			map[string]string{"WARREN_RUNTIME": "gvisor", "WARREN_RUNSC_PLATFORM": "systrap"}, []string{"--runtime=gvisor", "--runsc-platform=systrap"},
			[]string{"user-space kernel", "auto picks gvisor"}, []string{"warning:", "runc"}},
		{"this host: pvm, runsc and runc: gvisor", host(pvm, noVMM), "", RuntimeGVisor,
			map[string]string{"WARREN_RUNTIME": "gvisor", "WARREN_RUNSC_PLATFORM": "systrap"}, []string{"--runtime=gvisor", "--runsc-platform=systrap"},
			[]string{"warning: keep WARREN_RUNSC_PLATFORM=systrap, never kvm", "runc is usable too (it starts in 30 ms, gvisor in 170 ms)"}, nil},
		{"hardware kvm without vmm: gvisor", host(noVMM), "", RuntimeGVisor,
			map[string]string{"WARREN_RUNTIME": "gvisor", "WARREN_RUNSC_PLATFORM": "systrap"}, []string{"--runtime=gvisor", "--runsc-platform=systrap"},
			nil, []string{"never kvm"}},
		{"only runc: runc with a warning", host(noKVM, noVMM, noRunsc), "", RuntimeRunc,
			map[string]string{"WARREN_RUNTIME": "runc"}, []string{"--runtime=runc"},
			[]string{"warning: runc shares the host kernel: use it only for trusted work", "install gVisor"}, nil},
		{"runsc broken at run time: runc", host(pvm, noVMM, func(f *fakeHost) { f.runErr = errors.New("boom") }), "", RuntimeRunc,
			map[string]string{"WARREN_RUNTIME": "runc"}, []string{"--runtime=runc"}, []string{"use it only for trusted work"}, nil},
		{"slow gvisor", host(noKVM, func(f *fakeHost) { f.run = 1500 * time.Millisecond }), "", RuntimeGVisor,
			map[string]string{"WARREN_RUNTIME": "gvisor", "WARREN_RUNSC_PLATFORM": "systrap"}, []string{"--runtime=gvisor", "--runsc-platform=systrap"},
			[]string{"warning: gvisor starts slowly here (1500 ms): see the runsc_run check"}, nil},
		{"another data dir", host(noKVM, noRunc), "/srv/warren", RuntimeGVisor,
			map[string]string{"WARREN_RUNTIME": "gvisor", "WARREN_DATA_DIR": "/srv/warren", "WARREN_RUNSC_PLATFORM": "systrap"},
			[]string{"--runtime=gvisor", "--data-dir=/srv/warren", "--runsc-platform=systrap"}, nil, nil},
		{"none", host(noKVM, noRunsc, noRunc), "", "", map[string]string{}, []string{},
			[]string{"warning: no runtime is usable"}, nil},
		{"none: not root", host(func(f *fakeHost) { f.euid = 1000 }), "", "", map[string]string{}, []string{},
			[]string{"fix the failed checks above"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Run(context.Background(), Options{Host: tc.f.host(), MeasureRuntimes: true, RootFS: "/rootfs", DataDir: tc.dataDir})
			rec := r.Recommended
			if rec.Runtime != tc.runtime || !maps.Equal(rec.Env, tc.env) || !slices.Equal(rec.Flags, tc.flags) {
				t.Errorf("recommended %q env %v flags %v; want %q %v %v", rec.Runtime, rec.Env, rec.Flags, tc.runtime, tc.env, tc.flags)
			}
			if want := cond(tc.runtime == "", "", "WARREN_RUNTIME="+tc.runtime+" "); !strings.HasPrefix(rec.Command, want) ||
				(tc.runtime != "") != strings.HasSuffix(rec.Command, " warren serve") {
				t.Errorf("command %q", rec.Command)
			}
			// The recommendation is what auto picks: the strongest usable runtime.
			if first := append(slices.Clone(r.Runtimes), "")[0]; first != rec.Runtime {
				t.Errorf("recommended %q, strongest usable %q", rec.Runtime, first)
			}
			if (r.ExitCode() == 0) != (tc.runtime != "") {
				t.Errorf("exit code %d with recommended runtime %q", r.ExitCode(), tc.runtime)
			}
			all := strings.Join(rec.Notes, "\n")
			for _, n := range tc.notes {
				if !strings.Contains(all, n) {
					t.Errorf("notes lack %q:\n%s", n, all)
				}
			}
			for _, n := range tc.never {
				if strings.Contains(all, n) {
					t.Errorf("notes have %q:\n%s", n, all)
				}
			}
		})
	}
}

// TestWriteTextRuntimes is the text report of a host like this project's machines.
func TestWriteTextRuntimes(t *testing.T) {
	r := host(pvm, noVMM).report(true)
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, want := range []string{
		"Runtimes (strongest isolation first):\n  runtime   isolation  status\n",
		"  microvm   microvm    not usable: no hardware virtualization (PVM backend); no VMM installed\n",
		"  gvisor    sandbox    usable, start 170 ms (fast)\n",
		"  runc      container  usable, start 30 ms (fast); shares the host kernel\n",
		"Recommended configuration:\n  runtime: gvisor (what WARREN_RUNTIME=auto picks)\n",
		"  run:     WARREN_RUNTIME=gvisor WARREN_RUNSC_PLATFORM=systrap warren serve\n",
		"  or:      warren serve --runtime=gvisor --runsc-platform=systrap\n",
		"  - warning: keep WARREN_RUNSC_PLATFORM=systrap",
		"Summary: 16 ok, 2 warn, 0 fail\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}
