package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// PSS is the proportional set size of one sandbox's host processes: gVisor's sandbox
// process (the Sentry), its gofer, and their children (systrap's stub processes).
// Shared pages count in proportion to how many processes map them, so the sum over
// sandboxes is what they cost the host together. Each address space counts once:
// systrap's stub processes share one (clone with CLONE_VM, each its own thread group),
// and smaps_rollup shows each of them the whole of it. Summed per process, an idle
// pool member's stubs (three sharing one address space of 6.4 MB of PSS) counted
// 19.3 MB where they hold 6.4.
type PSS struct {
	Bytes int64 `json:"bytes"`
	// SandboxBytes is the Sentry and its children; GoferBytes the gofer and its.
	SandboxBytes int64 `json:"sandbox_bytes"`
	GoferBytes   int64 `json:"gofer_bytes"`
	// USSBytes is the memory only this sandbox's processes map (Private_Clean plus
	// Private_Dirty): at least what one more such sandbox costs, once the runsc and
	// agent binaries' pages are shared with others.
	USSBytes int64 `json:"uss_bytes"`
	// Processes is how many host processes were counted, AddressSpaces how many
	// address spaces they have between them.
	Processes     int `json:"processes"`
	AddressSpaces int `json:"address_spaces"`
}

// procTable is what the PSS measurement reads of /proc; tests give it a fake tree.
type procTable struct {
	root string // "/proc"
	// sameVM reports whether two processes share one address space; nil: never.
	sameVM func(a, b int) bool
}

// hostProcTable is /proc with kcmp(2) telling shared address spaces apart; any other
// root (a test's fake tree) has no such test.
func hostProcTable(root string) procTable {
	if root == "/proc" {
		return procTable{root: root, sameVM: kcmpSameVM}
	}
	return procTable{root: root}
}

// kcmpVM is kcmp(2)'s KCMP_VM.
const kcmpVM = 1

// kcmpSameVM reports whether processes a and b share one address space. An error
// (a process gone, no permission) is "no": its memory is then counted on its own.
func kcmpSameVM(a, b int) bool {
	r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(a), uintptr(b), kcmpVM, 0, 0, 0)
	return e == 0 && r == 0
}

// cmdline returns a process's arguments.
func (t procTable) cmdline(pid int) []string {
	b, err := os.ReadFile(filepath.Join(t.root, strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// ppid returns a process's parent, from its stat line (the field after the ")" that
// closes its name, which may itself hold spaces or parentheses).
func (t procTable) ppid(pid int) int {
	b, err := os.ReadFile(filepath.Join(t.root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return -1
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return -1
	}
	p, err := strconv.Atoi(f[1])
	if err != nil {
		return -1
	}
	return p
}

// memory returns a process's Pss and its private memory (Private_Clean plus
// Private_Dirty) from smaps_rollup, in bytes.
func (t procTable) memory(pid int) (pss, uss int64, err error) {
	f, err := os.Open(filepath.Join(t.root, strconv.Itoa(pid), "smaps_rollup"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "Pss" && key != "Private_Clean" && key != "Private_Dirty") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("pid %d smaps_rollup: %q: %w", pid, sc.Text(), err)
		}
		if key == "Pss" {
			pss, found = kb<<10, true
		} else {
			uss += kb << 10
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("pid %d smaps_rollup has no Pss line", pid)
	}
	return pss, uss, nil
}

func (t procTable) pids() ([]int, error) {
	ents, err := os.ReadDir(t.root)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		if p, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// sandboxPSS sums the PSS of sandbox id's host processes: the runsc processes whose
// last argument is the id (runsc names the sandbox and gofer processes
// "runsc-sandbox" and "runsc-gofer"), and all their descendants.
func (t procTable) sandboxPSS(id string) (PSS, error) {
	pids, err := t.pids()
	if err != nil {
		return PSS{}, fmt.Errorf("reading %s: %w", t.root, err)
	}
	children := map[int][]int{}
	roots := map[int]string{} // pid -> "sandbox" or "gofer"
	for _, p := range pids {
		parent := t.ppid(p)
		children[parent] = append(children[parent], p)
		args := t.cmdline(p)
		if len(args) < 2 || args[len(args)-1] != id {
			continue
		}
		switch filepath.Base(args[0]) {
		case "runsc-sandbox":
			roots[p] = "sandbox"
		case "runsc-gofer":
			roots[p] = "gofer"
		}
	}
	if len(roots) == 0 {
		return PSS{}, fmt.Errorf("no runsc-sandbox or runsc-gofer process of sandbox %s on this host (is it a gVisor sandbox of a server on this machine?)", id)
	}
	var out PSS
	var spaces []int // a process of each address space counted
	shared := func(p int) bool {
		for _, q := range spaces {
			if t.sameVM != nil && t.sameVM(q, p) {
				return true
			}
		}
		return false
	}
	for root, kind := range roots {
		stack := []int{root}
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			stack = append(stack, children[p]...)
			n, private, err := t.memory(p)
			if err != nil {
				if os.IsNotExist(err) {
					continue // exited meanwhile
				}
				return PSS{}, err
			}
			out.Processes++
			if shared(p) {
				continue // its address space is counted already
			}
			spaces = append(spaces, p)
			out.AddressSpaces++
			out.Bytes += n
			out.USSBytes += private
			if kind == "sandbox" {
				out.SandboxBytes += n
			} else {
				out.GoferBytes += n
			}
		}
	}
	return out, nil
}
