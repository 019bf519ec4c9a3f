//go:build ignore

// runsc-seccomp precompiles runsc's seccomp-bpf programs into the runsc source tree it
// runs in, as gVisor's own (Bazel) release builds do. scripts/install-deps.sh copies
// this file into a writable copy of the gvisor.dev/gvisor module at the pinned version
// and runs it there (go run ./warren-seccomp.go) before building runsc from that copy.
//
// Why: a runsc built with plain `go install` has no precompiled programs, so every
// sandbox start and restore builds the sentry's filter (~2100 rules) and the gofer's
// from scratch ("No precompiled program found ... This slows down sandbox startup"):
// 15-25 ms of CPU per start on an idle 2-core host, far more when starts overlap.
//
// It fills registerPrograms in runsc/boot/filter/filter_precompiled.go and
// runsc/fsgofer/filter/filter_precompiled.go with every program gVisor lists for
// precompilation (config.PrecompiledPrograms), leaving out the GPU, TPU and RDMA proxy
// variants Warren never runs (a runsc started with them builds its filter as before).
package main

import (
	"fmt"
	"os"
	"strings"

	"gvisor.dev/gvisor/pkg/seccomp/precompiledseccomp"
	bootcfg "gvisor.dev/gvisor/runsc/boot/filter/config"
	gofercfg "gvisor.dev/gvisor/runsc/fsgofer/filter/config"
)

const (
	disabled     = "const PrecompilationDisabledAtBuildTime = true"
	enabled      = "const PrecompilationDisabledAtBuildTime = false"
	registration = "\tprecompiledPrograms = programs\n"
)

func main() {
	for _, f := range []struct {
		path string
		list func() ([]precompiledseccomp.Program, error)
	}{
		{"runsc/boot/filter/filter_precompiled.go", bootcfg.PrecompiledPrograms},
		{"runsc/fsgofer/filter/filter_precompiled.go", gofercfg.PrecompiledPrograms},
	} {
		n, err := fill(f.path, f.list)
		if err != nil {
			fmt.Fprintf(os.Stderr, "runsc-seccomp: %s: %v\n", f.path, err)
			os.Exit(1)
		}
		fmt.Printf("runsc-seccomp: %d programs precompiled into %s\n", n, f.path)
	}
}

// fill writes the programs list returns into the registration file at path.
func fill(path string, list func() ([]precompiledseccomp.Program, error)) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	src := string(b)
	if !strings.Contains(src, disabled) || strings.Count(src, registration) != 1 {
		return 0, fmt.Errorf("not the registration file this tool knows (no %q, or not one %q): check it against the pinned gVisor", disabled, strings.TrimSpace(registration))
	}
	programs, err := list()
	if err != nil {
		return 0, err
	}
	var reg strings.Builder
	n := 0
	for _, p := range programs {
		if strings.Contains(p.Name, "NVProxy=true") || strings.Contains(p.Name, "TPUProxy=true") || strings.Contains(p.Name, "RDMAProxy=true") {
			continue
		}
		fmt.Fprintf(&reg, "\tprograms[%q] = %s\n", p.Name, p.Expr("\t", "precompiledseccomp"))
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("no programs to precompile")
	}
	src = strings.Replace(src, disabled, enabled, 1)
	src = strings.Replace(src, registration, reg.String()+registration, 1)
	return n, os.WriteFile(path, []byte(src), 0o644)
}
