package node

import (
	"debug/elf"
	"errors"
	"fmt"
	goruntime "runtime"
)

// checkAgentBinary returns why the file at path cannot be the warren-agent every
// sandbox runs as PID 1, or nil. It must be an executable ELF for this machine and
// statically linked: a sandbox's root filesystem is a tenant's image, which may lack
// the C library a dynamically linked agent asks for (or have another one). Caught here,
// a wrong binary is one clear error at startup instead of every sandbox failing to
// start.
func checkAgentBinary(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return fmt.Errorf("warren-agent binary %s is not an ELF executable (%v): build it with 'make build' or set WARREN_AGENT_PATH", path, err)
		}
		return fmt.Errorf("warren-agent binary: %w (build it with 'make build' or set WARREN_AGENT_PATH)", err)
	}
	defer f.Close()
	if want, ok := elfMachines[goruntime.GOARCH]; ok && f.Machine != want {
		return fmt.Errorf("warren-agent binary %s is built for %s, not this machine's %s: build it with 'make build'", path, f.Machine, want)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("warren-agent binary %s is an ELF %s, not an executable: build it with 'make build'", path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("warren-agent binary %s is dynamically linked; sandboxes need a static one: build it with CGO_ENABLED=0 ('make build' does)", path)
		}
	}
	return nil
}

// elfMachines maps the architectures Warren builds for to their ELF machine.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
