package node

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
)

// fakeELF returns a minimal ELF executable for machine: one PT_LOAD program header,
// and a PT_INTERP one when dynamic.
func fakeELF(machine elf.Machine, typ elf.Type, dynamic bool) []byte {
	progs := []elf.Prog64{{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Align: 4096}}
	if dynamic {
		progs = append(progs, elf.Prog64{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Align: 1})
	}
	h := elf.Header64{
		Type: uint16(typ), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT),
		Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: uint16(len(progs)),
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, h)
	for _, p := range progs {
		_ = binary.Write(&b, binary.LittleEndian, p)
	}
	return b.Bytes()
}

// writeFakeAgent writes a static ELF for this machine, as warren-agent, into a temp dir.
func writeFakeAgent(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "warren-agent")
	if err := os.WriteFile(p, fakeELF(elfMachines[goruntime.GOARCH], elf.ET_EXEC, false), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCheckAgentBinary: a static executable for this machine passes; a dynamic one, one
// for another machine, a shared-object-less relocatable file, a script, an empty file
// and a missing one fail, each saying what to do.
func TestCheckAgentBinary(t *testing.T) {
	here := elfMachines[goruntime.GOARCH]
	other := elf.EM_AARCH64
	if here == elf.EM_AARCH64 {
		other = elf.EM_X86_64
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name    string
		content []byte
		want    string // "" passes
	}{
		{"static", fakeELF(here, elf.ET_EXEC, false), ""},
		{"static-pie", fakeELF(here, elf.ET_DYN, false), ""},
		{"dynamic", fakeELF(here, elf.ET_EXEC, true), "dynamically linked; sandboxes need a static one: build it with CGO_ENABLED=0"},
		{"other-arch", fakeELF(other, elf.ET_EXEC, false), "is built for " + other.String()},
		{"relocatable", fakeELF(here, elf.ET_REL, false), "not an executable"},
		{"script", []byte("#!/bin/sh\nexit 0\n"), "is not an ELF executable"},
		{"empty", nil, "warren-agent binary"},
	} {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, c.content, 0o755); err != nil {
			t.Fatal(err)
		}
		err := checkAgentBinary(p)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "build it")):
			t.Errorf("%s: %v, want it to say %q and what to do", c.name, err, c.want)
		}
	}
	if err := checkAgentBinary(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "no such file") || !strings.Contains(err.Error(), "WARREN_AGENT_PATH") {
		t.Errorf("missing: %v", err)
	}
	// The real agent, as make builds it, passes (when it has been built).
	if p := os.Getenv("WARREN_BIN_DIR"); p != "" {
		if err := checkAgentBinary(filepath.Join(p, "warren-agent")); err != nil {
			t.Errorf("make's warren-agent: %v", err)
		}
	}
}
