package abuse

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-sh/warren/test/internal/harness"
)

// Escape probes. A hostile tenant is root in its own sandbox (the API runs commands as
// any user it names), so every probe attacks as root, and each one checks the effect on
// the host (a value it reads on the host itself, a marker file it planted there), not
// only the errno: on runc some of these succeed inside the sandbox's own user, mount or
// network namespace without touching the host, and on gVisor many syscalls are served
// by the sentry, never reaching the host kernel.

func init() {
	register(
		probe{name: "escape/mount", run: probeMount},
		probe{name: "escape/host-files", run: probeHostFiles},
		probe{name: "escape/host-binary-write", run: probeHostBinaryWrite},
		probe{name: "escape/host-processes", run: probeHostProcesses},
		probe{name: "escape/proc-sys-write", run: probeProcSys},
		probe{name: "escape/proc-sysrq", run: probeSysrq},
		probe{name: "escape/sys-write", run: probeSysWrite},
		probe{name: "escape/cgroup-release-agent", run: probeReleaseAgent},
		probe{name: "escape/kernel-modules", run: probeModules},
		probe{name: "escape/devices", run: probeDevices},
		probe{name: "escape/open-by-handle", run: probeOpenByHandle},
		probe{name: "escape/ptrace-pid1", run: probePtrace},
		probe{name: "escape/raw-sockets", run: probeRawSockets},
		probe{name: "escape/keyring", run: probeKeyring},
		probe{name: "escape/io-uring", run: probeIOUring},
		probe{name: "escape/bpf", run: probeBPF},
		probe{name: "escape/userfaultfd", run: probeUserfaultfd},
		probe{name: "escape/unshare", run: probeUnshare},
		probe{name: "escape/setns", run: probeSetns},
	)
}

// rootExec runs cmd as root in sandbox id with a command timeout in seconds.
func rootExec(t *testing.T, e *env, id, cmd string, timeout int) harness.ExecJSON {
	t.Helper()
	var r harness.ExecJSON
	code, raw := e.S.API("POST", "/v1/sandboxes/"+id+"/commands",
		map[string]any{"cmd": cmd, "user": "root", "timeout": timeout}, &r)
	if code != 200 {
		t.Fatalf("exec as root %q: %d %s", firstLine(cmd), code, raw)
	}
	return r
}

// rootShared runs cmd as root in the runtime's shared sandbox.
func rootShared(t *testing.T, e *env, cmd string) harness.ExecJSON {
	t.Helper()
	return rootExec(t, e, e.Sandbox(), cmd, 60)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// pyScript is a shell command running a python3 program given on stdin.
func pyScript(src string) string { return "python3 - <<'PYEOF'\n" + pySyscalls + src + "\nPYEOF" }

// pySyscalls is the prelude of the python probes: raw syscalls through ctypes, and
// report(name, ret) printing "name=ok" or "name=EPERM" lines that sysResults parses.
const pySyscalls = `import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def sc(nr, *args):
    conv = []
    for a in args:
        conv.append(ctypes.c_long(a) if isinstance(a, int) else a)
    r = libc.syscall(ctypes.c_long(nr), *conv)
    return r, (ctypes.get_errno() if r < 0 else 0)
def report(name, r):
    ret, err = r
    print("%s=%s" % (name, "ok" if ret >= 0 else errno.errorcode.get(err, str(err))), flush=True)
    return ret
`

// sysResults parses "name=result" lines.
func sysResults(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.ContainsAny(k, " \t") {
			m[k] = v
		}
	}
	return m
}

// refusedWith fails t unless every named call in res was refused with one of errs. A
// call the program never reached counts as a failure too (the probe did not run).
func refusedWith(t *testing.T, res map[string]string, names []string, errs ...string) string {
	t.Helper()
	var parts []string
	for _, n := range names {
		v, ok := res[n]
		switch {
		case !ok:
			t.Errorf("%s: the probe program did not report it (results %v)", n, res)
		case !contains(errs, v):
			t.Errorf("%s: %s, want it refused with one of %v", n, v, errs)
		}
		parts = append(parts, n+" "+v)
	}
	return strings.Join(parts, ", ")
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// marker returns a fresh random token that nothing but this probe knows.
func marker() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "warren-abuse-" + hex.EncodeToString(b)
}

// hostRead reads a host file, "" if it cannot.
func hostRead(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// hostRestore writes want back to a host file if a probe changed it, so that a
// successful attack does not outlive the test.
func hostRestore(t *testing.T, path, want string) {
	if got := hostRead(path); got != want {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Logf("restoring %s: %v", path, err)
		}
	}
}

func probeMount(t *testing.T, e *env) string {
	// Mounting needs CAP_SYS_ADMIN in the sandbox's own user namespace at most; the
	// host's file systems must stay out of reach either way: its root disk, a fresh
	// proc's view of PID 1, and the host's cgroup and debug file systems.
	m := marker()
	hostFile := filepath.Join("/root", m)
	if err := os.WriteFile(hostFile, []byte(m), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(hostFile)
	r := rootShared(t, e, `mkdir -p /tmp/m /tmp/d /tmp/p
mount -t proc proc /tmp/p 2>&1; ls /tmp/p/1/root/root 2>&1 | head -50
mount /dev/vda /tmp/d 2>&1; mount -t ext4 /dev/vda /tmp/d 2>&1; ls /tmp/d/root 2>&1 | head -50
mknod /tmp/vda b 254 0 2>&1 && mount -t ext4 /tmp/vda /tmp/d 2>&1; ls /tmp/d/root 2>&1 | head -50
mount -t debugfs none /tmp/m 2>&1; mount -t securityfs none /tmp/m 2>&1
mount --bind / /tmp/m 2>&1; mount -o remount,rw / 2>&1
umount /etc/resolv.conf 2>&1; umount -l /.warren/warren-agent 2>&1
umount /tmp/p /tmp/d /tmp/m 2>/dev/null; echo "uid=$(id -u)"; echo end`)
	if strings.Contains(r.Stdout, m) {
		t.Fatalf("a host file is visible from the sandbox after mounting: %s", r.Stdout)
	}
	if !strings.Contains(r.Stdout, "end") || !strings.Contains(r.Stdout, "uid=0") {
		t.Fatalf("the probe did not run to its end as root: %+v", r)
	}
	// The sandbox must still work (an unmounted agent or resolv.conf only hurts itself).
	if r := e.Exec("echo alive"); !strings.Contains(r.Stdout, "alive") {
		e.Replace()
	}
	return "no host file system reachable (marker in the host's /root unseen)"
}

func probeHostFiles(t *testing.T, e *env) string {
	// Plant a secret on the host, in places an escape would look (the host's /root and
	// /tmp, the server's data dir next to admin.key), and hunt for it from the sandbox:
	// direct paths, /proc/*/root, the bind-mounted agent and resolv.conf, a file-system
	// search, and the server's own admin key.
	m := marker()
	var planted []string
	for _, dir := range []string{"/root", "/tmp", e.S.DataDir} {
		p := filepath.Join(dir, m)
		if err := os.WriteFile(p, []byte(m+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		planted = append(planted, p)
	}
	defer func() {
		for _, p := range planted {
			os.Remove(p)
		}
	}()
	adminKey := strings.TrimSpace(hostRead(filepath.Join(e.S.DataDir, "admin.key")))
	script := fmt.Sprintf(`M=%[1]s
for p in /root/$M /tmp/$M %[2]s/$M /proc/1/root/root/$M /proc/*/root/tmp/$M /.warren/../root/$M /etc/resolv.conf/../../root/$M; do cat "$p" 2>/dev/null; done
ls -la /proc/*/cwd/ /proc/*/root/ 2>/dev/null | grep -c . >/dev/null
timeout 20 find / -xdev -name "$M" 2>/dev/null
timeout 20 grep -rls %[3]q /etc /root /home /var /opt /srv /.warren 2>/dev/null | head
cat %[2]s/admin.key 2>/dev/null
echo end`, m, e.S.DataDir, adminKey)
	r := rootShared(t, e, script)
	if strings.Contains(r.Stdout, m) {
		t.Fatalf("a host file was read from the sandbox: %s", r.Stdout)
	}
	if adminKey != "" && strings.Contains(r.Stdout, adminKey) {
		t.Fatalf("the server's admin key was read from the sandbox")
	}
	if !strings.Contains(r.Stdout, "end") {
		t.Fatalf("the probe did not run to its end: %+v", r)
	}
	return "host marker files and the admin key unreadable"
}

func probeHostBinaryWrite(t *testing.T, e *env) string {
	// The agent binary is bind-mounted from the host into every sandbox: writing through
	// that mount would replace the agent of every sandbox on the node. The same for the
	// per-sandbox resolv.conf (a host file).
	agent := filepath.Join(harness.BinDir, "warren-agent")
	before := fileHash(t, agent)
	r := rootShared(t, e, `cp /bin/true /.warren/warren-agent 2>&1; echo pwned >> /.warren/warren-agent 2>&1
mount -o remount,rw /.warren/warren-agent 2>&1; echo pwned >> /.warren/warren-agent 2>&1
truncate -s 0 /.warren/warren-agent 2>&1; chmod 777 /.warren/warren-agent 2>&1
mount -o remount,rw /etc/resolv.conf 2>&1; echo 'nameserver 6.6.6.6' >> /etc/resolv.conf 2>&1
echo end`)
	if after := fileHash(t, agent); after != before {
		t.Fatalf("the host's agent binary was changed from inside a sandbox: %s", r.Stdout)
	}
	fi, _ := os.Stat(agent)
	if fi.Mode().Perm()&0o002 != 0 {
		t.Errorf("the host's agent binary became world-writable: %v", fi.Mode())
	}
	for _, p := range globHost(filepath.Join(e.S.DataDir, "sandboxes", e.Sandbox(), "*resolv*")) {
		if strings.Contains(hostRead(p), "6.6.6.6") {
			t.Errorf("the sandbox rewrote its host-side resolv.conf %s", p)
		}
	}
	if !strings.Contains(r.Stdout, "end") {
		t.Fatalf("the probe did not run to its end: %+v", r)
	}
	return "agent binary and resolv.conf unchanged on the host"
}

func globHost(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	return m
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func probeHostProcesses(t *testing.T, e *env) string {
	// A host process with a unique name must be invisible from the sandbox and survive
	// the sandbox's root killing everything it can see.
	m := marker()
	host := exec.Command("bash", "-c", "exec -a "+m+" sleep 300")
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { host.Process.Kill(); host.Wait() }()
	id := e.Fresh(t, nil)
	r := rootExec(t, e, id, `cat /proc/*/cmdline 2>/dev/null | tr '\0' ' '; echo; ps -eo pid,args 2>/dev/null; ls /proc | grep -c '^[0-9]'`, 30)
	if strings.Contains(r.Stdout, m) {
		t.Fatalf("a host process is visible from the sandbox: %s", r.Stdout)
	}
	visible := strings.TrimSpace(lastLine(r.Stdout))
	// kill -9 -1 as the sandbox's root: everything it can signal.
	rootExec(t, e, id, "kill -9 -1; sleep 1; echo done", 15)
	time.Sleep(300 * time.Millisecond)
	if err := host.Process.Signal(syscallZero); err != nil {
		t.Fatalf("the host process died after the sandbox's kill -9 -1: %v", err)
	}
	if hostRead("/proc/1/status") == "" {
		t.Fatalf("host PID 1 gone")
	}
	// The agent (the sandbox's PID 1) shrugs off kill -1: the sandbox still answers.
	alive := "sandbox survived"
	if r := e.S.Exec(id, "echo alive"); !strings.Contains(r.Stdout, "alive") {
		alive = "sandbox's own processes ended (its own business)"
	}
	return fmt.Sprintf("host process invisible (%s pids visible inside) and alive after kill -9 -1; %s", visible, alive)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// hostValues snapshots host files (a missing file reads as "").
func hostValues(paths []string) map[string]string {
	m := map[string]string{}
	for _, p := range paths {
		m[p] = hostRead(p)
	}
	return m
}

// checkHostValues fails t for every host file whose content changed, restoring it.
func checkHostValues(t *testing.T, before map[string]string, sandboxOut string) {
	t.Helper()
	keys := make([]string, 0, len(before))
	for k := range before {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, p := range keys {
		if got := hostRead(p); got != before[p] {
			t.Errorf("the host's %s changed from inside a sandbox: %q -> %q (sandbox said: %s)", p, before[p], got, sandboxOut)
			hostRestore(t, p, before[p])
		}
	}
}

func probeProcSys(t *testing.T, e *env) string {
	// Global (not namespaced) kernel settings: core_pattern is the classic escape (a pipe
	// to a program the host kernel runs as root), randomize_va_space and max_map_count
	// weaken or bend the host; hostname is per UTS namespace and must stay the host's.
	paths := []string{"/proc/sys/kernel/core_pattern", "/proc/sys/kernel/randomize_va_space",
		"/proc/sys/vm/max_map_count", "/proc/sys/kernel/hostname", "/proc/sys/kernel/panic",
		"/proc/sys/net/ipv4/ip_forward", "/proc/sys/vm/overcommit_memory"}
	before := hostValues(paths)
	r := rootShared(t, e, `w() { (echo "$2" > "$1") 2>/dev/null && echo "$1=written" || echo "$1=refused"; }
try() {
w /proc/sys/kernel/core_pattern '|/tmp/pwn %p'
w /proc/sys/kernel/randomize_va_space 0
w /proc/sys/vm/max_map_count 1234
w /proc/sys/kernel/hostname pwned
w /proc/sys/kernel/panic 1
w /proc/sys/net/ipv4/ip_forward 0
w /proc/sys/vm/overcommit_memory 1
}
try
mount -o remount,rw /proc/sys 2>/dev/null && try
mkdir -p /tmp/p2 && mount -t proc proc /tmp/p2 2>/dev/null && sed 's#/proc/sys#/tmp/p2/sys#' <<'X' | sh
echo '|/tmp/pwn %p' > /proc/sys/kernel/core_pattern
echo 0 > /proc/sys/kernel/randomize_va_space
X
umount /tmp/p2 2>/dev/null; echo end`)
	checkHostValues(t, before, r.Stdout)
	if !strings.Contains(r.Stdout, "end") {
		t.Fatalf("the probe did not run to its end: %+v", r)
	}
	written := strings.Count(r.Stdout, "=written")
	return fmt.Sprintf("host sysctls unchanged (%d writes took effect only inside the sandbox)", written)
}

func probeSysrq(t *testing.T, e *env) string {
	// /proc/sysrq-trigger acts on the host kernel (reboot, crash, OOM kill). "m" only
	// dumps memory info to the kernel log, so it is safe to try; a hit shows in dmesg.
	before := sysrqCount()
	r := rootShared(t, e, `echo m > /proc/sysrq-trigger 2>&1; mount -o remount,rw /proc 2>&1; echo m > /proc/sysrq-trigger 2>&1; echo end`)
	time.Sleep(200 * time.Millisecond)
	if after := sysrqCount(); after != before {
		t.Fatalf("a sandbox triggered a host sysrq (%d -> %d dmesg lines): %s", before, after, r.Stdout)
	}
	return "sysrq-trigger writes never reached the host kernel"
}

func sysrqCount() int {
	out, _ := exec.Command("dmesg").Output()
	return bytes.Count(bytes.ToLower(out), []byte("sysrq"))
}

func probeSysWrite(t *testing.T, e *env) string {
	// /sys is read-only in sandboxes; the host's values must not move even if a fresh
	// sysfs can be mounted.
	paths := []string{"/sys/kernel/mm/transparent_hugepage/enabled", "/sys/kernel/mm/transparent_hugepage/defrag",
		"/sys/module/kernel/parameters/panic", "/sys/kernel/uevent_helper", "/sys/class/net/lo/mtu",
		"/sys/block/vda/queue/scheduler"}
	before := hostValues(paths)
	r := rootShared(t, e, `try() { for p in kernel/mm/transparent_hugepage/enabled kernel/mm/transparent_hugepage/defrag kernel/uevent_helper; do
  v=never; [ $p = kernel/uevent_helper ] && v=/tmp/pwn
  (echo $v > $1/$p) 2>/dev/null && echo "$p=written"; done
  (echo 1280 > $1/class/net/lo/mtu) 2>/dev/null && echo mtu=written
  (echo none > $1/block/vda/queue/scheduler) 2>/dev/null && echo sched=written; }
try /sys
mount -o remount,rw /sys 2>/dev/null && try /sys
mkdir -p /tmp/s && mount -t sysfs sysfs /tmp/s 2>/dev/null && try /tmp/s; umount /tmp/s 2>/dev/null
echo end`)
	checkHostValues(t, before, r.Stdout)
	if !strings.Contains(r.Stdout, "end") {
		t.Fatalf("the probe did not run to its end: %+v", r)
	}
	return fmt.Sprintf("host /sys values unchanged (%d writes inside)", strings.Count(r.Stdout, "=written"))
}

func probeReleaseAgent(t *testing.T, e *env) string {
	// CVE-2022-0492: mount a cgroup v1 hierarchy and set its release_agent, a program
	// the host kernel runs as root when the cgroup empties.
	paths, _ := filepath.Glob("/sys/fs/cgroup/*/release_agent")
	paths = append(paths, "/sys/fs/cgroup/unified/cgroup.subtree_control")
	before := hostValues(paths)
	r := rootShared(t, e, `for c in memory pids cpu devices freezer blkio rdma misc systemd; do
  mkdir -p /tmp/cg-$c
  if mount -t cgroup -o $c cgroup /tmp/cg-$c 2>/dev/null || mount -t cgroup -o none,name=$c cgroup /tmp/cg-$c 2>/dev/null; then
    echo "$c=mounted"
    (echo /tmp/pwn > /tmp/cg-$c/release_agent) 2>/dev/null && echo "$c-release_agent=written"
    mkdir /tmp/cg-$c/x 2>/dev/null && (echo 1 > /tmp/cg-$c/x/notify_on_release) 2>/dev/null && echo "$c-notify=written"
    rmdir /tmp/cg-$c/x 2>/dev/null; umount /tmp/cg-$c
  fi
done
unshare -rmC sh -c 'mkdir -p /tmp/cgu && mount -t cgroup -o memory cgroup /tmp/cgu && echo /tmp/pwn > /tmp/cgu/release_agent && echo userns-release_agent=written' 2>/dev/null
echo end`)
	checkHostValues(t, before, r.Stdout)
	if !strings.Contains(r.Stdout, "end") {
		t.Fatalf("the probe did not run to its end: %+v", r)
	}
	return fmt.Sprintf("host release_agent files untouched (%d cgroup mounts inside)", strings.Count(r.Stdout, "=mounted"))
}

func probeModules(t *testing.T, e *env) string {
	// Loading or unloading kernel modules. EPERM (no CAP_SYS_MODULE, or seccomp) or
	// ENOSYS (gVisor) are the only acceptable answers: anything else (ENOEXEC, EINVAL,
	// ENOENT) means the kernel looked at the module, past the capability check.
	before := hostRead("/proc/modules")
	r := rootShared(t, e, pyScript(`buf = ctypes.create_string_buffer(b"\x7fELF" + b"\0" * 60)
report("init_module", sc(175, buf, 64, b""))
fd = os.open("/bin/true", os.O_RDONLY)
report("finit_module", sc(313, fd, b"", 0))
report("delete_module", sc(176, b"warren_abuse_nonexistent", os.O_NONBLOCK))
report("kexec_load", sc(246, 0, 0, 0, 0))`))
	res := sysResults(r.Stdout)
	out := refusedWith(t, res, []string{"init_module", "finit_module", "delete_module", "kexec_load"}, "EPERM", "ENOSYS")
	if after := hostRead("/proc/modules"); after != before {
		t.Errorf("the host's module list changed during the probe")
	}
	return out
}

func probeDevices(t *testing.T, e *env) string {
	// Device nodes of the host's disk and memory: mknod, then open and read. A read of
	// the host disk's first block (compared with the host's own read) or of /dev/mem
	// is an escape.
	hostDisk, want := "", []byte(nil)
	for _, d := range []string{"/dev/vda", "/dev/sda", "/dev/nvme0n1"} {
		if b, err := readHead(d, 512); err == nil {
			hostDisk, want = d, b
			break
		}
	}
	r := rootShared(t, e, `cd /tmp; rm -f d-*
mknod d-vda b 254 0 2>&1; mknod d-sda b 8 0 2>&1; mknod d-mem c 1 1 2>&1; mknod d-kmem c 1 2 2>&1; mknod d-port c 1 4 2>&1; mknod d-kmsg c 1 11 2>&1
for d in d-vda d-sda /dev/vda; do echo "$d:$(head -c 512 $d 2>/dev/null | od -An -tx1 | tr -d ' \n' | head -c 1024)"; done
for d in d-mem d-kmem d-port; do head -c 16 $d >/dev/null 2>&1 && echo "$d=read"; done
(echo pwned > d-kmsg) 2>/dev/null && echo d-kmsg=written
head -c 64 /proc/kcore >/dev/null 2>&1 && echo kcore=read
ls /dev; echo end`)
	if want != nil {
		hexWant := hex.EncodeToString(want)
		if strings.Contains(r.Stdout, hexWant) && strings.Trim(hexWant, "0") != "" {
			t.Fatalf("the sandbox read the host disk %s's first block", hostDisk)
		}
	}
	for _, hit := range []string{"d-mem=read", "d-kmem=read", "d-port=read", "kcore=read"} {
		if strings.Contains(r.Stdout, hit) {
			t.Errorf("host memory device readable from the sandbox: %s", hit)
		}
	}
	if strings.Contains(r.Stdout, "d-kmsg=written") && strings.Contains(hostDmesg(), "pwned") {
		t.Errorf("the sandbox wrote to the host's kernel log")
	}
	if !strings.Contains(r.Stdout, "end") {
		t.Fatalf("the probe did not run to its end: %+v", r)
	}
	return "host disk, /dev/mem, /dev/kmem, /dev/port, /proc/kcore unreadable; kmsg unwritable"
}

// readHead reads the first n bytes of a host file or device.
func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	_, err = io.ReadFull(f, b)
	return b, err
}

var syscallZero = syscall.Signal(0)

func hostDmesg() string {
	out, _ := exec.Command("dmesg").Output()
	return string(out)
}

func probeOpenByHandle(t *testing.T, e *env) string {
	// "Shocker" (2014): open_by_handle_at with a guessed handle of the host's root
	// directory (ext4 inode 2) bypasses the mount namespace. Needs CAP_DAC_READ_SEARCH.
	r := rootShared(t, e, pyScript(`class FH(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint), ("type", ctypes.c_int), ("f", ctypes.c_ubyte * 8)]
h = FH(8, 1)
h.f[0] = 2
fd = os.open("/", os.O_RDONLY)
report("open_by_handle_at", sc(304, fd, ctypes.byref(h), os.O_RDONLY))
h2 = FH(128, 0)
mid = ctypes.c_int(0)
report("name_to_handle_at", sc(303, fd, b".", ctypes.byref(h2), ctypes.byref(mid), 0))`))
	res := sysResults(r.Stdout)
	return refusedWith(t, res, []string{"open_by_handle_at"}, "EPERM", "ENOSYS", "ENOTSUP", "EOPNOTSUPP") +
		", name_to_handle_at " + res["name_to_handle_at"]
}

func probePtrace(t *testing.T, e *env) string {
	// ptrace of PID 1: in the sandbox, PID 1 is its agent. Attaching must never reach a
	// host process (the host's PID 1 must not gain a tracer); on runc seccomp refuses
	// ptrace outright; on gVisor an attach to the sandbox's own agent stays inside the
	// sentry. The sandbox is a fresh one: a stopped agent would wedge the shared one.
	id := e.Fresh(t, nil)
	hostTracer := func() string {
		for _, l := range strings.Split(hostRead("/proc/1/status"), "\n") {
			if strings.HasPrefix(l, "TracerPid:") {
				return strings.TrimSpace(strings.TrimPrefix(l, "TracerPid:"))
			}
		}
		return "?"
	}
	before := hostTracer()
	r := rootExec(t, e, id, pyScript(`import time
r = report("ptrace_attach_1", sc(101, 16, 1, 0, 0))
if r >= 0:
    os.waitpid(1, 0x40000000)  # __WALL
    print("pid1_tracer=" + [l for l in open("/proc/1/status") if l.startswith("TracerPid")][0].split()[1])
    sc(101, 17, 1, 0, 0)  # PTRACE_DETACH
report("ptrace_seize_1", sc(101, 0x4206, 1, 0, 0))
sc(101, 17, 1, 0, 0)
local = ctypes.create_string_buffer(16)
class IOV(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
l = IOV(ctypes.cast(local, ctypes.c_void_p), 16)
rm = IOV(0x400000, 16)
report("process_vm_readv_1", sc(310, 1, ctypes.byref(l), 1, ctypes.byref(rm), 1, 0))`), 30)
	res := sysResults(r.Stdout)
	if after := hostTracer(); after != before {
		t.Fatalf("the host's PID 1 gained a tracer (%s -> %s)", before, after)
	}
	if e.Runtime == "runc" {
		refusedWith(t, res, []string{"ptrace_attach_1", "ptrace_seize_1", "process_vm_readv_1"}, "EPERM")
	}
	if _, ok := res["ptrace_attach_1"]; !ok {
		t.Fatalf("the probe program did not run: %+v", r)
	}
	// The sandbox's agent must still answer (the tracer detached or died).
	if r := e.S.Exec(id, "echo alive"); !strings.Contains(r.Stdout, "alive") {
		t.Errorf("the sandbox's agent no longer answers after the ptrace probe: %+v", r)
	}
	return fmt.Sprintf("attach %s, seize %s, process_vm_readv %s; host PID 1 untraced; agent alive",
		res["ptrace_attach_1"], res["ptrace_seize_1"], res["process_vm_readv_1"])
}

func probeRawSockets(t *testing.T, e *env) string {
	// Raw and packet sockets forge packets and sniff the link; sandboxes get no
	// CAP_NET_RAW. Spoofing as such is probed in network/spoofed-source.
	r := rootShared(t, e, pyScript(`import socket
for name, fam, typ, proto in [("af_packet_raw", socket.AF_PACKET, socket.SOCK_RAW, 0x0300),
                              ("af_packet_dgram", socket.AF_PACKET, socket.SOCK_DGRAM, 0x0300),
                              ("inet_raw_udp", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP),
                              ("inet_raw_raw", socket.AF_INET, socket.SOCK_RAW, 255),
                              ("inet6_raw", socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_UDP)]:
    try:
        s = socket.socket(fam, typ, proto)
        print(name + "=ok")
        s.close()
    except OSError as e:
        print(name + "=" + errno.errorcode.get(e.errno, str(e.errno)))`))
	res := sysResults(r.Stdout)
	return refusedWith(t, res, []string{"af_packet_raw", "af_packet_dgram", "inet_raw_udp", "inet_raw_raw", "inet6_raw"},
		"EPERM", "EACCES", "EAFNOSUPPORT")
}

func probeKeyring(t *testing.T, e *env) string {
	// The kernel keyring is not namespaced: a key added from a runc sandbox would live
	// in the host kernel (counted in /proc/key-users under the sandbox's host uid).
	m := marker()
	usersBefore := hostRead("/proc/key-users")
	r := rootShared(t, e, pyScript(fmt.Sprintf(`payload = b"secret"
report("add_key", sc(248, b"user", b"%s", payload, len(payload), -4))
report("keyctl_get_keyring", sc(250, 0, -4, 1))
report("keyctl_join_session", sc(250, 1, b"%s"))
report("request_key", sc(249, b"user", b"%s", 0, 0))`, m, m, m)))
	res := sysResults(r.Stdout)
	if strings.Contains(hostRead("/proc/keys"), m) {
		t.Fatalf("a key added in the sandbox is in the host's keyring")
	}
	if e.Runtime == "runc" {
		refusedWith(t, res, []string{"add_key", "keyctl_get_keyring", "keyctl_join_session", "request_key"}, "EPERM")
		if after := hostRead("/proc/key-users"); keyUsers(after) != keyUsers(usersBefore) {
			t.Errorf("the host's key users changed: %q -> %q", usersBefore, after)
		}
	}
	if _, ok := res["add_key"]; !ok {
		t.Fatalf("the probe program did not run: %+v", r)
	}
	return fmt.Sprintf("add_key %s, keyctl %s, join_session %s, request_key %s; nothing in the host's keyring",
		res["add_key"], res["keyctl_get_keyring"], res["keyctl_join_session"], res["request_key"])
}

// keyUsers is the set of uids in /proc/key-users (counts change with the host's own use).
func keyUsers(s string) string {
	var uids []string
	for _, l := range strings.Split(s, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			uids = append(uids, f[0])
		}
	}
	sort.Strings(uids)
	return strings.Join(uids, " ")
}

func probeIOUring(t *testing.T, e *env) string {
	// io_uring has been the source of many kernel exploits; runc's seccomp profile
	// refuses it and gVisor does not offer it by default.
	r := rootShared(t, e, pyScript(`params = ctypes.create_string_buffer(120)
report("io_uring_setup", sc(425, 8, params))
report("io_uring_register", sc(427, 0, 0, 0, 0))
report("io_uring_enter", sc(426, 0, 0, 0, 0, 0, 0))`))
	res := sysResults(r.Stdout)
	return refusedWith(t, res, []string{"io_uring_setup", "io_uring_register", "io_uring_enter"}, "EPERM", "ENOSYS")
}

func probeBPF(t *testing.T, e *env) string {
	// bpf(2): a map create and a program load (socket filter "return 0").
	r := rootShared(t, e, pyScript(`attr = ctypes.create_string_buffer(128)
ctypes.memmove(attr, (ctypes.c_uint * 4)(2, 4, 4, 1), 16)  # BPF_MAP_TYPE_ARRAY, key 4, value 4, 1 entry
report("bpf_map_create", sc(321, 0, attr, 128))
insns = (ctypes.c_ubyte * 16)(0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0)  # r0 = 0; exit
lic = ctypes.create_string_buffer(b"GPL")
prog = ctypes.create_string_buffer(128)
class P(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint), ("cnt", ctypes.c_uint), ("insns", ctypes.c_ulonglong), ("lic", ctypes.c_ulonglong)]
p = P(1, 2, ctypes.addressof(insns), ctypes.addressof(lic))
ctypes.memmove(prog, ctypes.byref(p), ctypes.sizeof(p))
report("bpf_prog_load", sc(321, 5, prog, 128))`))
	res := sysResults(r.Stdout)
	return refusedWith(t, res, []string{"bpf_map_create", "bpf_prog_load"}, "EPERM", "ENOSYS")
}

func probeUserfaultfd(t *testing.T, e *env) string {
	// userfaultfd stalls kernel page faults at a moment of the attacker's choosing, the
	// usual way to win kernel races; UFFD_USER_MODE_ONLY (1) is allowed unprivileged on
	// the host kernel, so only the sandbox's own policy refuses it.
	r := rootShared(t, e, pyScript(`report("userfaultfd", sc(323, os.O_CLOEXEC | os.O_NONBLOCK))
report("userfaultfd_user_mode_only", sc(323, os.O_CLOEXEC | 1))
try:
    os.open("/dev/userfaultfd", os.O_RDWR); print("dev_userfaultfd=ok")
except OSError as e:
    print("dev_userfaultfd=" + errno.errorcode.get(e.errno, str(e.errno)))`))
	res := sysResults(r.Stdout)
	return refusedWith(t, res, []string{"userfaultfd", "userfaultfd_user_mode_only", "dev_userfaultfd"}, "EPERM", "ENOSYS", "ENOENT", "EACCES")
}

func probeUnshare(t *testing.T, e *env) string {
	// New namespaces. On runc seccomp refuses unshare and clone with namespace flags; on
	// gVisor the sentry makes its own (never the host kernel's). Either way, what a
	// tenant can do from a fresh user+mount namespace must not reach the host: a host
	// marker stays unseen and the host gains no network namespace from the sandbox.
	m := marker()
	hostFile := filepath.Join("/root", m)
	os.WriteFile(hostFile, []byte(m), 0o600)
	defer os.Remove(hostFile)
	nsBefore := hostNetnsCount()
	r := rootShared(t, e, pyScript(`for name, flags in [("newuser", 0x10000000), ("newns", 0x20000), ("newnet", 0x40000000),
                    ("newpid", 0x20000000), ("newcgroup", 0x02000000), ("newuser_newns", 0x10020000)]:
    pid = os.fork()
    if pid == 0:
        r = sc(272, flags)
        report("unshare_" + name, r)
        os._exit(0)
    os.waitpid(pid, 0)
report("clone_newuser", sc(56, 0x10000000 | 17, 0, 0, 0, 0))
`)+"\n"+`unshare -rm sh -c 'mount -t proc proc /proc 2>/dev/null; ls /proc/1/root/root/ 2>/dev/null; cat /proc/1/root/root/`+m+` 2>/dev/null; mount --bind / /mnt 2>/dev/null; ls /mnt/root' 2>&1; echo end`)
	res := sysResults(r.Stdout)
	if strings.Contains(r.Stdout, m+"\n") || strings.Contains(r.Stdout, m) && !strings.Contains(r.Stdout, "cat /proc/1/root/root/"+m) {
		t.Fatalf("a host file is visible from a namespace the sandbox made: %s", r.Stdout)
	}
	if e.Runtime == "runc" {
		refusedWith(t, res, []string{"unshare_newuser", "unshare_newns", "unshare_newnet", "unshare_newpid", "unshare_newcgroup"}, "EPERM")
	}
	if _, ok := res["unshare_newuser"]; !ok {
		t.Fatalf("the probe program did not run: %+v", r)
	}
	if d := hostNetnsCount() - nsBefore; d > 2 { // other suites may make a namespace meanwhile
		t.Errorf("the host gained %d network namespaces during the probe", d)
	}
	var parts []string
	for _, n := range []string{"newuser", "newns", "newnet", "newpid", "newcgroup"} {
		parts = append(parts, n+" "+res["unshare_"+n])
	}
	return "unshare: " + strings.Join(parts, ", ") + "; host untouched"
}

// hostNetnsCount counts the distinct network namespaces of the host's processes.
func hostNetnsCount() int {
	seen := map[string]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/net"); err == nil {
			seen[l] = true
		}
	}
	return len(seen)
}

func probeSetns(t *testing.T, e *env) string {
	// setns into every namespace file the sandbox can open (its own PID 1's, the agent's)
	// and look around: the host's interfaces, hostname and files must stay out of sight.
	m := marker()
	hostFile := filepath.Join("/root", m)
	os.WriteFile(hostFile, []byte(m), 0o600)
	defer os.Remove(hostFile)
	hostname, _ := os.Hostname()
	r := rootShared(t, e, pyScript(fmt.Sprintf(`import socket
for ns, flag in [("net", 0x40000000), ("mnt", 0x20000), ("uts", 0x4000000), ("ipc", 0x8000000), ("pid", 0x20000000), ("user", 0x10000000), ("cgroup", 0x2000000)]:
    try:
        fd = os.open("/proc/1/ns/" + ns, os.O_RDONLY)
    except OSError as e:  # the agent is not dumpable on runc: the sandbox's own then
        print("open_" + ns + "=" + errno.errorcode.get(e.errno, str(e.errno)))
        try:
            fd = os.open("/proc/self/ns/" + ns, os.O_RDONLY)
        except OSError:
            continue  # gVisor has no cgroup namespace file
    report("setns_" + ns, sc(308, fd, flag))
print("ifaces=" + ",".join(n for _, n in socket.if_nameindex()))
print("hostname_seen=" + socket.gethostname())
try:
    print("marker=" + open("/root/%s").read())
except OSError:
    print("marker=unreadable")`, m)))
	res := sysResults(r.Stdout)
	if _, ok := res["ifaces"]; !ok {
		t.Fatalf("the probe program did not run: %+v", r)
	}
	if res["marker"] != "unreadable" {
		t.Fatalf("a host file was read after setns: %s", res["marker"])
	}
	hostIfs, _ := os.ReadDir("/sys/class/net")
	for _, hi := range hostIfs {
		if n := hi.Name(); n != "lo" && n != "eth0" && contains(strings.Split(res["ifaces"], ","), n) {
			t.Errorf("the host's interface %s is visible after setns", n)
		}
	}
	if res["hostname_seen"] == hostname {
		t.Errorf("the sandbox sees the host's hostname %q after setns", hostname)
	}
	if e.Runtime == "runc" {
		refusedWith(t, res, []string{"setns_net", "setns_mnt", "setns_uts", "setns_ipc", "setns_pid", "setns_user", "setns_cgroup"}, "EPERM")
	} else {
		// Joining one's own namespace is harmless, but none may succeed here either:
		// the agent's are the sandbox's only ones, and CAP_SYS_ADMIN is not granted.
		refusedWith(t, res, []string{"setns_net", "setns_mnt", "setns_uts", "setns_ipc"}, "EPERM", "EINVAL")
	}
	return fmt.Sprintf("setns net %s, mnt %s, user %s; interfaces inside: %s; host files unseen",
		res["setns_net"], res["setns_mnt"], res["setns_user"], res["ifaces"])
}
