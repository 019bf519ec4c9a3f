package e2b

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// E2B's template builder as the SDK's Template class speaks it (docs/e2b-protocol.md
// §2.5): the JSON shapes, and the translation of a build into a domain.BuildSpec.

// requestBuildBody is POST /v3/templates (TemplateBuildRequestV3).
type requestBuildBody struct {
	Name          string   `json:"name"`
	Alias         string   `json:"alias"` // deprecated name of Name
	Tags          []string `json:"tags"`
	CPUCount      *int     `json:"cpuCount"`
	MemoryMB      *int     `json:"memoryMB"`
	MinFreeDiskMB *int     `json:"minFreeDiskMb"`
	TeamID        string   `json:"teamID"` // deprecated; must be the caller's
}

// requestBuildJSON is TemplateRequestResponseV3.
type requestBuildJSON struct {
	TemplateID string   `json:"templateID"`
	BuildID    string   `json:"buildID"`
	Names      []string `json:"names"`
	Aliases    []string `json:"aliases"`
	Tags       []string `json:"tags"`
	Public     bool     `json:"public"`
}

// fileUploadJSON is TemplateBuildFileUpload: the SDK PUTs the files' tar archive to URL
// with Headers when Present is false.
type fileUploadJSON struct {
	Present bool              `json:"present"`
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// startBuildBody is POST /v2/templates/{id}/builds/{buildID} (TemplateBuildStartV2).
type startBuildBody struct {
	Force             bool       `json:"force"`
	FromImage         string     `json:"fromImage"`
	FromTemplate      string     `json:"fromTemplate"`
	FromImageRegistry *struct{}  `json:"fromImageRegistry"`
	StartCmd          string     `json:"startCmd"`
	ReadyCmd          string     `json:"readyCmd"`
	Steps             []stepJSON `json:"steps"`
}

// stepJSON is TemplateStep. Args by type, as the SDK writes them: RUN [cmd, user?],
// COPY [src, dest, user, mode], ENV [k, v, ...], WORKDIR [dir], USER [user].
type stepJSON struct {
	Type      string   `json:"type"`
	Args      []string `json:"args"`
	FilesHash string   `json:"filesHash"`
	Force     bool     `json:"force"`
	// The SDK's own fields, which it sends along (JSON.stringify of its instruction).
	ForceUpload     *bool `json:"forceUpload"`
	ResolveSymlinks *bool `json:"resolveSymlinks"`
	Gzip            *bool `json:"gzip"`
}

// buildStatusJSON is TemplateBuildInfo.
type buildStatusJSON struct {
	TemplateID string         `json:"templateID"`
	BuildID    string         `json:"buildID"`
	Status     string         `json:"status"`
	Logs       []string       `json:"logs"`
	LogEntries []buildLogJSON `json:"logEntries"`
	Reason     *reasonJSON    `json:"reason,omitempty"`
}

// buildLogJSON is BuildLogEntry.
type buildLogJSON struct {
	Timestamp string `json:"timestamp"`
	Level     string `json:"level"`
	Message   string `json:"message"`
}

// reasonJSON is BuildStatusReason. Step is the failed instruction as the SDK counts its
// stack traces: "1" is the first step (0 would be the FROM).
type reasonJSON struct {
	Message    string         `json:"message"`
	Step       string         `json:"step,omitempty"`
	LogEntries []buildLogJSON `json:"logEntries"`
}

// maxBuildSteps bounds the steps of one build.
const maxBuildSteps = 1000

var (
	filesHashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	octalModeRE = regexp.MustCompile(`^0?[0-7]{3,4}$`)
)

// translated is a build in Warren's terms, and for each of its steps the index of the
// E2B step it came from (a RUN with a user of its own becomes USER, RUN, USER).
type translated struct {
	spec   domain.BuildSpec
	origin []int
}

// toSpec translates the SDK's build of template id into a BuildSpec. resolveFiles maps
// a COPY step's filesHash (the SDK's hash of the files) to the sha256 of the archive
// stored for it, or "" when none was uploaded. Errors are KindInvalid naming the field.
func toSpec(id string, b startBuildBody, resolveFiles func(hash string) string) (translated, error) {
	t := translated{spec: domain.BuildSpec{Name: id}}
	switch {
	case b.FromImageRegistry != nil:
		return t, domain.Invalid("fromImageRegistry", "registry credentials in the build are not supported by this Warren server; "+
			"put them in the Docker config of the Warren host (docker login), which image pulls use")
	case b.FromImage != "" && b.FromTemplate != "":
		return t, domain.Invalid("fromImage", "give one of fromImage and fromTemplate, not both")
	case b.FromImage == "" && b.FromTemplate == "":
		return t, domain.Invalid("fromTemplate", "give the parent: fromTemplate (e.g. base) or fromImage (e.g. debian:bookworm)")
	case len(b.Steps) > maxBuildSteps:
		return t, domain.Invalid("steps", "a build has at most %d steps, got %d", maxBuildSteps, len(b.Steps))
	}
	switch {
	case b.FromTemplate != "":
		t.spec.FromTemplate = resolveTemplate(b.FromTemplate)
	case imageAsTemplate(b.FromImage) != "":
		t.spec.FromTemplate = imageAsTemplate(b.FromImage)
	default:
		t.spec.FromImage = b.FromImage
	}
	t.spec.StartCmd = b.StartCmd
	t.spec.Ready = readyCheck(b.ReadyCmd)
	user := ""                 // the build's user so far; "" is the builder's default, root
	var own []domain.BuildStep // the ENV, WORKDIR and USER steps the SDK sent
	for i, st := range b.Steps {
		steps, err := toSteps(i, st, &user, resolveFiles)
		if err != nil {
			return t, err
		}
		for range steps {
			t.origin = append(t.origin, i)
		}
		if k := steps[0].Kind; len(steps) == 1 && (k == domain.StepEnv || k == domain.StepWorkdir || k == domain.StepUser) {
			own = append(own, steps[0])
		}
		t.spec.Steps = append(t.spec.Steps, steps...)
	}
	// What the build leaves is its sandboxes' default env, workdir and user, not the
	// users of single RUN steps.
	t.spec.Env, t.spec.Workdir, t.spec.User = domain.StepDefaults(own)
	if b.Force && len(t.spec.Steps) > 0 {
		t.spec.Steps[0].Force = true // forcing the first step reruns every later one
	}
	return t, nil
}

// imageAsTemplate returns the Warren template an SDK image parent means, or "": E2B's
// base image (e2bdev/base, what fromBaseImage() and a Dockerfile without a FROM image
// name) is Warren's base template, and a bare name without '/', ':', '.' or '@' (what
// fromDockerfile sends for "FROM base") is a Warren template, by the rule Warren's
// Dockerfiles follow (internal/template/dockerfile).
func imageAsTemplate(ref string) string {
	switch {
	case ref == "e2bdev/base" || ref == "e2bdev/base:latest" || ref == "docker.io/e2bdev/base" || ref == "docker.io/e2bdev/base:latest":
		return "base"
	case ref != "" && !strings.ContainsAny(ref, "/:.@"):
		return resolveTemplate(ref)
	}
	return ""
}

// toSteps translates step i. user is the build's current user, kept up to date.
func toSteps(i int, st stepJSON, user *string, resolveFiles func(string) string) ([]domain.BuildStep, error) {
	field := fmt.Sprintf("steps[%d]", i)
	bad := func(format string, args ...any) error {
		return domain.Invalid(field, "step %d (%s): %s", i+1, st.Type, fmt.Sprintf(format, args...))
	}
	a := st.Args
	one := func(kind domain.StepKind, args ...string) []domain.BuildStep {
		return []domain.BuildStep{{Kind: kind, Args: args, Force: st.Force}}
	}
	switch domain.StepKind(strings.ToUpper(st.Type)) {
	case domain.StepRun:
		if len(a) < 1 || len(a) > 2 || strings.TrimSpace(a[0]) == "" {
			return nil, bad("want args [command] or [command, user]")
		}
		as := ""
		if len(a) == 2 {
			as = a[1]
		}
		if as == "" || as == *user || as == "root" && *user == "" {
			return one(domain.StepRun, a[0]), nil
		}
		// The SDK runs this one command as another user (apt and global pip and npm
		// installs as root) and leaves the build's user as it was.
		back := *user
		if back == "" {
			back = "root"
		}
		return []domain.BuildStep{
			{Kind: domain.StepUser, Args: []string{as}, Force: st.Force},
			{Kind: domain.StepRun, Args: []string{a[0]}},
			{Kind: domain.StepUser, Args: []string{back}},
		}, nil
	case domain.StepCopy:
		if len(a) < 2 || len(a) > 4 || a[0] == "" || a[1] == "" {
			return nil, bad("want args [src, dest, user, mode]")
		}
		src := path.Clean(a[0])
		if path.IsAbs(src) || src == ".." || strings.HasPrefix(src, "../") {
			return nil, bad("source %q is outside the build's files; give a path relative to the template's directory", a[0])
		}
		if len(a) == 4 && a[3] != "" {
			if !octalModeRE.MatchString(a[3]) {
				return nil, bad("mode %q is not an octal file mode", a[3])
			}
		}
		if !filesHashRE.MatchString(st.FilesHash) {
			return nil, bad("filesHash %q is not a sha256 (64 lowercase hex digits)", st.FilesHash)
		}
		stored := resolveFiles(st.FilesHash)
		if stored == "" {
			return nil, bad("the files of %q (hash %s) were not uploaded for this template: build again, which uploads them first", a[0], st.FilesHash)
		}
		args := []string{a[0], a[1]}
		switch {
		case len(a) == 4 && a[3] != "":
			args = append(args, a[2], a[3]) // a[2] "" is root
		case len(a) >= 3 && a[2] != "":
			args = append(args, a[2])
		}
		return []domain.BuildStep{{Kind: domain.StepCopy, Args: args, FilesHash: stored, Force: st.Force}}, nil
	case domain.StepEnv:
		if len(a) == 0 || len(a)%2 != 0 {
			return nil, bad("want args [name, value, ...] in pairs")
		}
		for k := 0; k < len(a); k += 2 {
			if a[k] == "" || strings.ContainsAny(a[k], "= \t\n\x00") {
				return nil, bad("%q is not an environment variable name", a[k])
			}
		}
		return one(domain.StepEnv, a...), nil
	case domain.StepWorkdir:
		if len(a) != 1 || a[0] == "" {
			return nil, bad("want args [directory]")
		}
		return one(domain.StepWorkdir, a[0]), nil
	case domain.StepUser:
		if len(a) != 1 || a[0] == "" {
			return nil, bad("want args [user]")
		}
		*user = a[0]
		return one(domain.StepUser, a[0]), nil
	default:
		return nil, domain.Invalid(field+".type", "step %d: type %q is not supported; the steps are RUN, COPY, ENV, WORKDIR and USER", i+1, st.Type)
	}
}

// The ready commands the SDK's waitFor* helpers write (src/template/readycmd.ts), read
// back into the ReadyCheck they mean; any other command is run as is.
const shellWord = `('(?:[^']|'"'"')*'|[^\s']+)` // a word as the SDK's shellQuote writes it

var (
	readyPortRE    = regexp.MustCompile(`^\[ -n "\$\(ss -Htuln sport = :(\d{1,5})\)" \]$`)
	readyURLRE     = regexp.MustCompile(`^curl -s -o /dev/null -w "%\{http_code\}" ` + shellWord + ` \| grep -q "200"$`)
	readyProcessRE = regexp.MustCompile(`^pgrep ` + shellWord + ` > /dev/null$`)
	readyFileRE    = regexp.MustCompile(`^\[ -f ` + shellWord + ` \]$`)
)

// readyCheck reads the SDK's readyCmd. waitForPort, waitForURL (status 200),
// waitForProcess and waitForFile become their ReadyCheck field; waitForTimeout and
// anything else stay a command (sleep N is one).
func readyCheck(cmd string) domain.ReadyCheck {
	cmd = strings.TrimSpace(cmd)
	if m := readyPortRE.FindStringSubmatch(cmd); m != nil {
		if port, err := strconv.Atoi(m[1]); err == nil && port > 0 && port < 65536 {
			return domain.ReadyCheck{Port: port}
		}
	}
	if m := readyURLRE.FindStringSubmatch(cmd); m != nil {
		return domain.ReadyCheck{URL: unquoteShell(m[1])}
	}
	if m := readyProcessRE.FindStringSubmatch(cmd); m != nil {
		return domain.ReadyCheck{Process: unquoteShell(m[1])}
	}
	if m := readyFileRE.FindStringSubmatch(cmd); m != nil {
		return domain.ReadyCheck{File: unquoteShell(m[1])}
	}
	return domain.ReadyCheck{Cmd: cmd}
}

// unquoteShell undoes the SDK's shellQuote: 'a'"'"'b' is a'b.
func unquoteShell(s string) string {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return strings.ReplaceAll(s[1:len(s)-1], `'"'"'`, "'")
	}
	return s
}

// toBuildLog converts a log line.
func toBuildLog(l domain.BuildLogLine) buildLogJSON {
	level := l.Level
	if level == "" {
		level = "info"
	}
	return buildLogJSON{Timestamp: l.Time.UTC().Format(time.RFC3339Nano), Level: level, Message: l.Message}
}

// logLevels ranks E2B's log levels for the status route's level filter.
var logLevels = map[string]int{"debug": 0, "info": 1, "warn": 2, "error": 3}

// buildState is E2B's name of a build state.
func buildState(s domain.BuildState) string {
	switch s {
	case domain.BuildWaiting, domain.BuildBuilding, domain.BuildReady, domain.BuildError:
		return string(s)
	}
	return string(domain.BuildBuilding)
}

// failedStep names, for an errored build, the E2B step that failed as the SDK counts
// them (1-based), or "" when it is not known. origin maps Warren's steps to E2B's.
func failedStep(b *domain.Build, origin []int) string {
	if b.State != domain.BuildError || origin == nil {
		return ""
	}
	idx := -1
	for _, st := range b.Steps {
		if st.ExitCode != 0 {
			idx = st.Index
			break
		}
	}
	if idx < 0 && len(b.Steps) < len(origin) {
		idx = len(b.Steps) // the steps before it finished, in order
	}
	if idx < 0 || idx >= len(origin) {
		return ""
	}
	return strconv.Itoa(origin[idx] + 1)
}
