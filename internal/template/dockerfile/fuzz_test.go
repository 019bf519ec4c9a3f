package dockerfile

import (
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

// FuzzParse feeds arbitrary Dockerfiles and build args to Parse. Whatever arrives:
// nothing panics or hangs, a refusal is a KindInvalid error that names the Dockerfile,
// and an accepted file has exactly one parent, steps of the five kinds with their
// arguments, and COPY steps that read only relative paths inside the context.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"FROM base\nRUN echo hi\n",
		"# escape=`\nARG T=bookworm\nFROM debian:${T}\nARG T\nENV A=1 B=\"x y\"\nCOPY --chown=u a b/ /app/\nWORKDIR /app\nUSER 1000\nCMD [\"srv\", \"$A\"]\n",
		"FROM base\nRUN [\"a\", \"b c\"]\nENTRYPOINT [\"x\"]\nCMD y\nADD [\"f\", \"/g\"]\nENV X ${A:-${B}}\n",
		"FROM base AS x\nCOPY --from=x / /\nEXPOSE 80\n",
		"FROM base\nRUN a \\\n# c\n b\nWORKDIR rel\n",
	} {
		f.Add(s, "T", "trixie")
	}
	f.Fuzz(func(t *testing.T, in, argName, argValue string) {
		var args map[string]string
		if argName != "" {
			args = map[string]string{argName: argValue}
		}
		spec, err := Parse(strings.NewReader(in), Options{BuildArgs: args, ContextHash: "h"})
		if err != nil {
			if !domain.IsKind(err, domain.KindInvalid) || !strings.HasPrefix(domain.PublicMessage(err), "Dockerfile") {
				t.Fatalf("refusal %v (%v) is not an invalid Dockerfile error", err, domain.KindOf(err))
			}
			return
		}
		if (spec.FromTemplate == "") == (spec.FromImage == "") {
			t.Fatalf("want exactly one parent: template %q, image %q", spec.FromTemplate, spec.FromImage)
		}
		for i, s := range spec.Steps {
			switch s.Kind {
			case domain.StepRun, domain.StepUser:
				if len(s.Args) != 1 || s.Args[0] == "" {
					t.Fatalf("step %d: %s with args %q", i, s.Kind, s.Args)
				}
			case domain.StepWorkdir:
				if len(s.Args) != 1 || !strings.HasPrefix(s.Args[0], "/") {
					t.Fatalf("step %d: WORKDIR %q is not absolute", i, s.Args)
				}
			case domain.StepEnv:
				if len(s.Args) == 0 || len(s.Args)%2 != 0 {
					t.Fatalf("step %d: ENV with args %q", i, s.Args)
				}
			case domain.StepCopy:
				if len(s.Args) < 2 || s.FilesHash != "h" {
					t.Fatalf("step %d: COPY %q hash %q", i, s.Args, s.FilesHash)
				}
				src := s.Args[0]
				if strings.HasPrefix(src, "/") || src == ".." || strings.HasPrefix(src, "../") {
					t.Fatalf("step %d: COPY source %q leaves the context", i, src)
				}
			default:
				t.Fatalf("step %d: kind %q", i, s.Kind)
			}
		}
	})
}
