package layers

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"path"
	"regexp"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
)

// Meta is the metadata steps run with, and that a finished template's sandboxes start
// with: the environment, working directory and user the ENV, WORKDIR and USER steps
// so far have set. An empty Workdir means "/", an empty User root.
type Meta struct {
	Env     map[string]string `json:"env,omitempty"`
	Workdir string            `json:"workdir,omitempty"`
	User    string            `json:"user,omitempty"`
}

// FinalMeta is the metadata after all of steps (which must be valid).
func FinalMeta(steps []domain.BuildStep) Meta {
	var m Meta
	for _, s := range steps {
		m = m.after(s)
	}
	return m
}

// after is m changed by step s.
func (m Meta) after(s domain.BuildStep) Meta {
	switch s.Kind {
	case domain.StepEnv:
		m.Env = maps.Clone(m.Env)
		if m.Env == nil {
			m.Env = map[string]string{}
		}
		for i := 0; i+1 < len(s.Args); i += 2 {
			m.Env[s.Args[i]] = s.Args[i+1]
		}
	case domain.StepWorkdir:
		m.Workdir = m.abs(s.Args[0])
	case domain.StepUser:
		m.User = s.Args[0]
	}
	return m
}

// abs is p made absolute against the working directory.
func (m Meta) abs(p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join("/", m.Workdir, p)
}

// workdir is the directory steps run in.
func (m Meta) workdir() string { return or(m.Workdir, "/") }

// user is the user steps run as.
func (m Meta) user() string { return or(m.User, "root") }

var (
	envKey    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	userName  = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}\$?$|^[0-9]{1,9}$`)
	filesHash = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// maxArg bounds one step argument (a RUN's script included).
const maxArg = 64 << 10

// validate checks every step before anything runs; the error names the step.
func validate(spec domain.BuildSpec) error {
	for i, s := range spec.Steps {
		if err := validStep(s); err != nil {
			return domain.Invalid(fmt.Sprintf("steps[%d]", i), "step %d (%s): %v", i+1, s.Kind, err)
		}
	}
	return nil
}

func validStep(s domain.BuildStep) error {
	for _, a := range s.Args {
		if len(a) > maxArg || strings.ContainsRune(a, 0) {
			return fmt.Errorf("an argument is longer than %d bytes or holds a NUL byte", maxArg)
		}
	}
	n := len(s.Args)
	switch s.Kind {
	case domain.StepRun:
		if n != 1 || strings.TrimSpace(s.Args[0]) == "" {
			return fmt.Errorf("give one non-empty shell command")
		}
	case domain.StepCopy:
		if n < 2 || n > 4 || s.Args[0] == "" || s.Args[1] == "" {
			return fmt.Errorf("give a source, a destination and optionally an owner (user[:group]) and a mode (octal)")
		}
		if !filesHash.MatchString(s.FilesHash) {
			return fmt.Errorf("files hash %q is not the sha256 (64 lowercase hex digits) of an uploaded tar archive", s.FilesHash)
		}
		if _, err := cleanSrc(s.Args[0]); err != nil {
			return err
		}
		if n == 4 {
			if _, err := copyMode(s.Args[3]); err != nil {
				return err
			}
		}
		if n >= 3 && (n == 3 || s.Args[2] != "") {
			u, g, _ := strings.Cut(s.Args[2], ":")
			if !userName.MatchString(u) || (g != "" && !userName.MatchString(g)) {
				return fmt.Errorf("owner %q: give user[:group], names or numeric ids", s.Args[2])
			}
		}
	case domain.StepEnv:
		if n == 0 || n%2 != 0 {
			return fmt.Errorf("give key, value pairs")
		}
		for i := 0; i < n; i += 2 {
			if !envKey.MatchString(s.Args[i]) {
				return fmt.Errorf("%q is not a variable name ([A-Za-z_][A-Za-z0-9_]*)", s.Args[i])
			}
		}
	case domain.StepWorkdir:
		if n != 1 || s.Args[0] == "" {
			return fmt.Errorf("give one directory")
		}
	case domain.StepUser:
		if n != 1 || !userName.MatchString(s.Args[0]) {
			return fmt.Errorf("give one user name or numeric uid that exists in the image")
		}
	default:
		return fmt.Errorf("unknown step kind; use RUN, COPY, ENV, WORKDIR or USER")
	}
	return nil
}

// parentKey is the first key of a build on parent p.
func parentKey(p Parent) string {
	h := sha256.New()
	writeField(h, "warren-layers-v1 parent")
	writeField(h, p.ID)
	return hex.EncodeToString(h.Sum(nil))
}

// stepKey is the key of step s on the layer keyed prev; selection is the digest of
// the files a COPY selects ("" for other steps).
func stepKey(prev string, s domain.BuildStep, selection string) string {
	h := sha256.New()
	writeField(h, "warren-layers-v1 step")
	writeField(h, prev)
	writeField(h, string(s.Kind))
	for _, a := range s.Args {
		writeField(h, a)
	}
	writeField(h, selection)
	return hex.EncodeToString(h.Sum(nil))
}

// writeField writes s length-prefixed, so that no two field lists hash alike.
func writeField(h interface{ Write([]byte) (int, error) }, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}

// describe is a step as a log line shows it.
func describe(s domain.BuildStep) string {
	out := string(s.Kind) + " " + strings.Join(s.Args, " ")
	if len(out) > 200 {
		out = out[:200] + "..."
	}
	return out
}
