package abuse

import (
	"strconv"
	"strings"
	"testing"
)

// compatABI runs i386's getpid (eax=20) through int 0x80 from a 64-bit process: machine
// code on an executable page, called through ctypes. It prints the result, or nothing if
// the process was killed for the attempt.
const compatABI = `python3 - <<'PY'
import ctypes, mmap, os
code = bytes([0xb8, 0x14, 0, 0, 0, 0xcd, 0x80, 0xc3])  # mov eax,20; int 0x80; ret
buf = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
buf.write(code)
addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
fn = ctypes.CFUNCTYPE(ctypes.c_int)(addr)
print("pid", os.getpid(), "compat", fn(), flush=True)
PY
echo "exit $?"`

func init() {
	register(probe{name: "escape/compat-abi", run: func(t *testing.T, e *env) string {
		r := e.Exec(compatABI)
		for _, line := range strings.Split(r.Stdout, "\n") {
			f := strings.Fields(line)
			if len(f) != 4 || f[0] != "pid" {
				continue
			}
			if f[1] == f[3] {
				t.Fatalf("the i386 ABI answered a syscall from the sandbox (int 0x80 getpid = %s)", f[3])
			}
			if n, err := strconv.Atoi(f[3]); err != nil || n >= 0 {
				t.Fatalf("int 0x80 getpid returned %q, not an error", f[3])
			}
			return "int 0x80 refused with errno " + strings.TrimPrefix(f[3], "-")
		}
		if strings.Contains(r.Stdout, "exit 159") {
			return "int 0x80 killed the process (SIGSYS)"
		}
		if strings.Contains(r.Stdout, "exit 139") {
			return "int 0x80 killed the process (SIGSEGV)"
		}
		t.Fatalf("unexpected result: stdout %q stderr %q", r.Stdout, r.Stderr)
		return ""
	}})
}
