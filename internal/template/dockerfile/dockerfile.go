// Package dockerfile turns a Dockerfile into a domain.BuildSpec: the subset of
// Dockerfile that maps onto Warren's template build steps.
//
// Supported: FROM (once, no AS, no --platform), RUN (shell and JSON exec form), COPY and
// ADD of local files (--chown and --chmod; sources may be wildcard patterns), ENV (both forms), ARG (with defaults and --build-arg
// values), WORKDIR, USER, CMD and ENTRYPOINT (the template's start command), line
// continuations, comments and parser directives (escape is honoured, the others are
// ignored). Anything else is a KindInvalid error naming the line and the instruction.
//
// FROM names a Warren template or an OCI image by one rule: a bare name made only of
// letters, digits, '-' and '_' (base, code-interpreter, my-template) is a Warren
// template; anything with a '/', ':', '.' or '@' (debian:bookworm,
// docker.io/library/debian, ghcr.io/org/img@sha256:...) is an image reference. A Docker
// Hub image is therefore written with its tag (debian:bookworm, not debian).
//
// Variables: ARG and ENV values are substituted ($NAME, ${NAME}, ${NAME:-default},
// ${NAME:+alternative}) in FROM (ARGs declared before it), ENV, ARG, COPY, ADD, WORKDIR
// and USER; in the shell form of RUN, CMD and ENTRYPOINT only ARG values are substituted
// (outside '...'): the shell itself expands the ENV variables, which the build sets in
// its environment, as it does in Docker.
package dockerfile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
)

// DefaultMaxBytes bounds a Dockerfile when Options.MaxBytes is 0.
const DefaultMaxBytes = 1 << 20

// Supported lists the instructions Parse accepts, for error messages.
const Supported = "FROM, RUN, COPY, ADD (local files), ENV, ARG, WORKDIR, USER, CMD and ENTRYPOINT"

// Options configures Parse.
type Options struct {
	// BuildArgs are the --build-arg values. Each must be declared by an ARG.
	BuildArgs map[string]string
	// ContextHash is the FilesHash of every COPY and ADD step: the sha256 of the build
	// context's tar archive, stored with domain.TemplateService.PutFiles.
	ContextHash string
	// MaxBytes bounds the Dockerfile (0 = DefaultMaxBytes).
	MaxBytes int64
}

// Parse reads a Dockerfile from r and returns the build it describes. The spec's Name is
// left for the caller to set; its Env, Workdir and User are what the ENV, WORKDIR and USER
// instructions leave (the defaults of the template's sandboxes, as a container's are).
// Every error is a KindInvalid *domain.Error with field "dockerfile".
func Parse(r io.Reader, opts Options) (domain.BuildSpec, error) {
	limit := opts.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return domain.BuildSpec{}, fmt.Errorf("reading the Dockerfile: %w", err)
	}
	if int64(len(data)) > limit {
		return domain.BuildSpec{}, invalid(0, "the Dockerfile is larger than %d bytes", limit)
	}
	lines, esc, err := logicalLines(data)
	if err != nil {
		return domain.BuildSpec{}, err
	}
	p := &parser{opts: opts, esc: esc, args: map[string]string{}, preFrom: map[string]string{},
		env: map[string]string{}, used: map[string]bool{}}
	for _, l := range lines {
		if err := p.instruction(l); err != nil {
			return domain.BuildSpec{}, err
		}
	}
	return p.finish()
}

// line is one logical line: an instruction with its continuations joined.
type line struct {
	num  int // the line number of its first physical line (1-based)
	text string
}

// logicalLines splits data into instructions: parser directives at the top are read
// (escape) and dropped, comment and blank lines are dropped (also inside a continued
// instruction, as Docker does), and a line ending with the escape character continues
// on the next.
func logicalLines(data []byte) ([]line, rune, error) {
	esc := '\\'
	var out []line
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), len(data)+1)
	directives := true
	var cur *line
	var text strings.Builder // cur's text so far
	for n := 1; sc.Scan(); n++ {
		raw := strings.TrimSuffix(sc.Text(), "\r")
		if n == 1 {
			raw = strings.TrimPrefix(raw, "\ufeff")
		}
		trimmed := strings.TrimSpace(raw)
		if directives {
			if m := directiveRE.FindStringSubmatch(trimmed); m != nil {
				if strings.EqualFold(m[1], "escape") {
					switch m[2] {
					case `\`:
						esc = '\\'
					case "`":
						esc = '`'
					default:
						return nil, 0, invalid(n, "the escape directive must be \\ or `, not %q", m[2])
					}
				}
				continue
			}
			directives = false
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		body := strings.TrimRight(raw, " \t")
		cont := strings.HasSuffix(body, string(esc))
		if cont {
			body = strings.TrimSuffix(body, string(esc))
		}
		if cur == nil {
			cur = &line{num: n}
			body = strings.TrimLeft(body, " \t")
		}
		text.WriteString(body)
		if !cont {
			cur.text = text.String()
			out = append(out, *cur)
			cur, text = nil, strings.Builder{}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, 0, invalid(0, "reading the Dockerfile: %v", err)
	}
	if cur != nil {
		cur.text = text.String()
		out = append(out, *cur)
	}
	return out, esc, nil
}

var directiveRE = regexp.MustCompile(`^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(\S+)\s*$`)

// parser holds what the instructions so far have set.
type parser struct {
	opts    Options
	esc     rune
	spec    domain.BuildSpec
	from    bool
	args    map[string]string // ARGs in scope after FROM
	preFrom map[string]string // ARGs declared before FROM (usable in FROM, and as defaults)
	env     map[string]string
	used    map[string]bool // build args some ARG declared
	workdir string
	// entry and cmd are the last ENTRYPOINT and CMD: an exec-form list, or one shell
	// command with shell set.
	entry, cmd           []string
	entryShell, cmdShell bool
}

// instruction applies one logical line.
func (p *parser) instruction(l line) error {
	kw, rest := l.text, ""
	if i := strings.IndexAny(l.text, " \t"); i >= 0 {
		kw, rest = l.text[:i], l.text[i+1:]
	}
	kw = strings.ToUpper(kw)
	rest = strings.TrimSpace(rest)
	if !p.from && kw != "FROM" && kw != "ARG" {
		return invalid(l.num, "%s before FROM: a Dockerfile starts with FROM (only ARG may come before it)", kw)
	}
	var err error
	switch kw {
	case "FROM":
		err = p.fromInstr(rest)
	case "ARG":
		err = p.argInstr(rest)
	case "RUN":
		err = p.runInstr(rest)
	case "COPY", "ADD":
		err = p.copyInstr(kw, rest)
	case "ENV":
		err = p.envInstr(rest)
	case "WORKDIR":
		err = p.workdirInstr(rest)
	case "USER":
		err = p.userInstr(rest)
	case "CMD":
		p.cmd, p.cmdShell, err = p.command(rest)
	case "ENTRYPOINT":
		p.entry, p.entryShell, err = p.command(rest)
	default:
		return invalid(l.num, "%s is not supported: Warren builds templates from %s", kw, Supported)
	}
	if err != nil {
		return invalid(l.num, "%s: %v", kw, err)
	}
	return nil
}

func (p *parser) fromInstr(rest string) error {
	if p.from {
		return fmt.Errorf("a second FROM: multi-stage builds are not supported; build from one parent")
	}
	p.from = true
	if strings.HasPrefix(rest, "--") {
		return fmt.Errorf("flag %s is not supported", strings.Fields(rest)[0])
	}
	ws, err := words(rest, p.esc, lookupIn(p.preFrom), true)
	if err != nil {
		return err
	}
	switch {
	case len(ws) == 3 && strings.EqualFold(ws[1], "AS"):
		return fmt.Errorf("FROM ... AS %s: multi-stage builds are not supported; build from one parent", ws[2])
	case len(ws) != 1:
		return fmt.Errorf("want one template name or image reference, got %d words", len(ws))
	}
	ref := ws[0]
	switch {
	case ref == "scratch":
		return fmt.Errorf("FROM scratch is not supported: build from a template (base) or an image")
	case templateNameRE.MatchString(ref):
		p.spec.FromTemplate = ref
	case imageRefRE.MatchString(ref):
		p.spec.FromImage = ref
	default:
		return fmt.Errorf("%q is neither a template name (letters, digits, - and _) nor an image reference (e.g. debian:bookworm)", ref)
	}
	return nil
}

var (
	templateNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)
	octalMode      = regexp.MustCompile(`^0?[0-7]{3,4}$`)
	imageRefRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}$`)
)

func (p *parser) argInstr(rest string) error {
	scope := p.args
	if !p.from {
		scope = p.preFrom
	}
	ws, err := words(rest, p.esc, lookupIn(p.env, p.args), true)
	if err != nil {
		return err
	}
	if len(ws) == 0 {
		return fmt.Errorf("want NAME or NAME=default")
	}
	for _, w := range ws {
		name, def, hasDef := strings.Cut(w, "=")
		if !validName(name) {
			return fmt.Errorf("%q is not a variable name", name)
		}
		if !hasDef && p.from {
			def, hasDef = p.preFrom[name] // a redeclared global ARG keeps its default
		}
		v, given := p.opts.BuildArgs[name]
		if given {
			p.used[name] = true
		} else {
			v = def
		}
		scope[name] = v
	}
	return nil
}

func (p *parser) runInstr(rest string) error {
	if strings.HasPrefix(rest, "--") {
		return fmt.Errorf("flag %s is not supported", strings.Fields(rest)[0])
	}
	if strings.HasPrefix(rest, "<<") {
		return fmt.Errorf("here-documents are not supported; write the command on the line")
	}
	cmd, shell, err := p.command(rest)
	if err != nil {
		return err
	}
	run := shellJoin(cmd)
	if shell {
		run = cmd[0]
	}
	if strings.TrimSpace(run) == "" {
		return fmt.Errorf("want a command")
	}
	p.spec.Steps = append(p.spec.Steps, domain.BuildStep{Kind: domain.StepRun, Args: []string{run}})
	return nil
}

// command reads RUN, CMD and ENTRYPOINT arguments: a JSON array of strings is the exec
// form (returned as is), anything else the shell form (one command, ARGs substituted).
func (p *parser) command(rest string) ([]string, bool, error) {
	if strings.HasPrefix(rest, "[") {
		var exec []string
		if json.Unmarshal([]byte(rest), &exec) == nil {
			if len(exec) == 0 {
				return nil, false, fmt.Errorf("the exec form needs a program: [\"prog\", \"arg\"...]")
			}
			return exec, false, nil
		}
	}
	s, err := expandShell(rest, p.esc, lookupIn(p.args))
	if err != nil {
		return nil, false, err
	}
	return []string{s}, true, nil
}

func (p *parser) copyInstr(kw, rest string) error {
	var owner, mode string
	for strings.HasPrefix(rest, "--") {
		flag, after, _ := strings.Cut(rest, " ")
		rest = strings.TrimSpace(after)
		name, val, _ := strings.Cut(flag, "=")
		switch name {
		case "--chown":
			ws, err := words(val, p.esc, lookupIn(p.env, p.args), false)
			if err != nil {
				return err
			}
			if len(ws) != 1 || ws[0] == "" {
				return fmt.Errorf("--chown wants user[:group]")
			}
			owner = ws[0]
		case "--chmod":
			if !octalMode.MatchString(val) {
				return fmt.Errorf("--chmod wants an octal mode such as 0755, not %q", val)
			}
			mode = val
		case "--from":
			return fmt.Errorf("--from is not supported: multi-stage builds are not supported; copy from the build context")
		default:
			return fmt.Errorf("flag %s is not supported (only --chown and --chmod are)", name)
		}
	}
	var ws []string
	var jsonForm []string
	if strings.HasPrefix(rest, "[") && json.Unmarshal([]byte(rest), &jsonForm) == nil {
		for _, w := range jsonForm {
			x, err := words(w, p.esc, lookupIn(p.env, p.args), false)
			if err != nil {
				return err
			}
			ws = append(ws, strings.Join(x, ""))
		}
	} else {
		var err error
		if ws, err = words(rest, p.esc, lookupIn(p.env, p.args), true); err != nil {
			return err
		}
	}
	if len(ws) < 2 {
		return fmt.Errorf("want one or more sources and a destination")
	}
	srcs, dst := ws[:len(ws)-1], ws[len(ws)-1]
	if len(srcs) > 1 && !strings.HasSuffix(dst, "/") {
		return fmt.Errorf("with several sources the destination must be a directory ending in /, not %q", dst)
	}
	if dst == "" {
		return fmt.Errorf("the destination is empty")
	}
	for _, src := range srcs {
		if err := checkSource(kw, src); err != nil {
			return err
		}
		args := []string{path.Clean(src), dst}
		switch {
		case mode != "":
			args = append(args, owner, mode) // owner "" is root
		case owner != "":
			args = append(args, owner)
		}
		p.spec.Steps = append(p.spec.Steps, domain.BuildStep{Kind: domain.StepCopy, Args: args, FilesHash: p.opts.ContextHash})
	}
	return nil
}

// checkSource refuses what COPY and ADD cannot read from the build context.
func checkSource(kw, src string) error {
	lower := strings.ToLower(src)
	switch {
	case strings.Contains(src, "://") || strings.HasPrefix(lower, "git@"):
		return fmt.Errorf("%q: only local files of the build context can be copied; download with RUN instead", src)
	case path.IsAbs(src):
		return fmt.Errorf("%q: sources are paths inside the build context, not absolute paths", src)
	case path.Clean(src) == ".." || strings.HasPrefix(path.Clean(src), "../"):
		return fmt.Errorf("%q: the source is outside the build context", src)
	case strings.ContainsAny(src, "*?[") && !validPattern(src):
		return fmt.Errorf("%q is not a valid wildcard pattern (*, ? and [...] as in Go's path.Match)", src)
	case kw == "ADD" && isArchive(lower):
		return fmt.Errorf("%q: ADD would unpack this archive, which Warren does not do; COPY it and unpack it with RUN tar", src)
	}
	return nil
}

// validPattern reports whether a COPY source with wildcards is a well-formed pattern.
func validPattern(src string) bool {
	_, err := path.Match(src, "")
	return err == nil
}

func isArchive(name string) bool {
	for _, ext := range []string{".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

func (p *parser) envInstr(rest string) error {
	ws, err := words(rest, p.esc, lookupIn(p.env, p.args), true)
	if err != nil {
		return err
	}
	if len(ws) == 0 {
		return fmt.Errorf("want NAME=value")
	}
	var kv []string
	if !strings.Contains(ws[0], "=") {
		// Legacy form: ENV NAME value with spaces.
		name, value, _ := strings.Cut(strings.TrimSpace(rest), " ")
		vs, err := words(strings.TrimSpace(value), p.esc, lookupIn(p.env, p.args), false)
		if err != nil {
			return err
		}
		kv = []string{name, strings.Join(vs, "")}
	} else {
		for _, w := range ws {
			name, value, ok := strings.Cut(w, "=")
			if !ok {
				return fmt.Errorf("%q: want NAME=value", w)
			}
			kv = append(kv, name, value)
		}
	}
	for i := 0; i < len(kv); i += 2 {
		if !validName(kv[i]) {
			return fmt.Errorf("%q is not a variable name", kv[i])
		}
		p.env[kv[i]] = kv[i+1]
	}
	p.spec.Steps = append(p.spec.Steps, domain.BuildStep{Kind: domain.StepEnv, Args: kv})
	return nil
}

func (p *parser) workdirInstr(rest string) error {
	ws, err := words(rest, p.esc, lookupIn(p.env, p.args), false)
	if err != nil {
		return err
	}
	if len(ws) != 1 || ws[0] == "" {
		return fmt.Errorf("want a directory")
	}
	dir := ws[0]
	if !path.IsAbs(dir) {
		if p.workdir == "" {
			return fmt.Errorf("%q is relative and no WORKDIR came before it; use an absolute path", dir)
		}
		dir = path.Join(p.workdir, dir)
	}
	p.workdir = path.Clean(dir)
	p.spec.Steps = append(p.spec.Steps, domain.BuildStep{Kind: domain.StepWorkdir, Args: []string{p.workdir}})
	return nil
}

func (p *parser) userInstr(rest string) error {
	ws, err := words(rest, p.esc, lookupIn(p.env, p.args), false)
	if err != nil {
		return err
	}
	if len(ws) != 1 || ws[0] == "" || strings.ContainsAny(ws[0], " \t") {
		return fmt.Errorf("want one user name or uid")
	}
	if strings.Contains(ws[0], ":") {
		return fmt.Errorf("%q: a group is not supported; name the user only", ws[0])
	}
	p.spec.Steps = append(p.spec.Steps, domain.BuildStep{Kind: domain.StepUser, Args: ws})
	return nil
}

// finish checks the whole file and sets the start command: ENTRYPOINT, followed by CMD
// as its arguments when both are exec form, else the one that is set.
func (p *parser) finish() (domain.BuildSpec, error) {
	if !p.from {
		return domain.BuildSpec{}, invalid(0, "no FROM: name the parent template (FROM base) or image (FROM debian:bookworm)")
	}
	var unused []string
	for name := range p.opts.BuildArgs {
		if !p.used[name] {
			unused = append(unused, name)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		return domain.BuildSpec{}, invalid(0, "build args %s were given but no ARG declares them", strings.Join(unused, ", "))
	}
	p.spec.Env, p.spec.Workdir, p.spec.User = domain.StepDefaults(p.spec.Steps)
	switch {
	case p.entry != nil && p.entryShell:
		p.spec.StartCmd = p.entry[0]
	case p.entry != nil && p.cmd != nil && !p.cmdShell:
		p.spec.StartCmd = shellJoin(append(append([]string{}, p.entry...), p.cmd...))
	case p.entry != nil && p.cmd != nil:
		p.spec.StartCmd = shellJoin(append(append([]string{}, p.entry...), "/bin/sh", "-c", p.cmd[0]))
	case p.entry != nil:
		p.spec.StartCmd = shellJoin(p.entry)
	case p.cmd != nil && p.cmdShell:
		p.spec.StartCmd = p.cmd[0]
	case p.cmd != nil:
		p.spec.StartCmd = shellJoin(p.cmd)
	}
	return p.spec, nil
}

// lookupIn looks a name up in maps, the first that has it winning.
func lookupIn(ms ...map[string]string) lookupFunc {
	return func(name string) (string, bool) {
		for _, m := range ms {
			if v, ok := m[name]; ok {
				return v, true
			}
		}
		return "", false
	}
}

// invalid is a KindInvalid error about the Dockerfile, at line n (0 = the whole file).
func invalid(n int, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if n > 0 {
		msg = fmt.Sprintf("Dockerfile line %d: %s", n, msg)
	} else {
		msg = "Dockerfile: " + msg
	}
	return domain.Invalid("dockerfile", "%s", msg)
}
