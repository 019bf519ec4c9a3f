package domain

import (
	"context"
	"io"
	"net/url"
	"path"
	"strings"
	"time"
)

// StepKind is what one step of a template build does. The kinds are those of E2B's
// Template API (RUN, COPY, ENV, WORKDIR, USER); apt, pip and npm installs and git clone
// are RUN steps that the API layers write for the client.
type StepKind string

// Step kinds.
const (
	StepRun     StepKind = "RUN"     // Args[0]: a shell command (run with /bin/sh -c)
	StepCopy    StepKind = "COPY"    // Args: src (relative to the build context), dst[, owner[, mode]] (owner may be "" with a mode; mode is octal, e.g. 0755, and applies to every copied file and directory)
	StepEnv     StepKind = "ENV"     // Args: key, value[, key, value...]
	StepWorkdir StepKind = "WORKDIR" // Args[0]: an absolute directory, made if missing
	StepUser    StepKind = "USER"    // Args[0]: a user name or uid that exists in the image
)

// BuildStep is one step of a template build.
type BuildStep struct {
	Kind StepKind
	Args []string
	// FilesHash names, for a COPY, the tar archive (BuildFiles) that Args[0] is read
	// from; src is a path inside it.
	FilesHash string
	// Force reruns the step (and so every later one) even when its layer is cached.
	Force bool
}

// ReadyCheck says when a template's start command is ready. At most one of Port, URL,
// Process, File and Cmd is set; none means the start command is ready once started.
type ReadyCheck struct {
	Port    int    // a TCP port inside the sandbox accepts connections
	URL     string // an http URL inside the sandbox answers 2xx
	Process string // a process of this name runs
	File    string // this file exists
	Cmd     string // this shell command exits 0
	// Timeout bounds the wait (0 = the builder's default).
	Timeout time.Duration
}

// BuildSpec is a template build: a parent (one of FromTemplate and FromImage), steps run
// in order on it, and the start command of the finished template's sandboxes.
type BuildSpec struct {
	// Name is the template's id (and E2B alias), unique among the team's and built-in
	// templates.
	Name string
	// FromTemplate is a Warren template id (a built-in or one of the team's).
	FromTemplate string
	// FromImage is an OCI image reference, pulled through the node's registry settings.
	FromImage string
	Steps     []BuildStep
	StartCmd  string
	Ready     ReadyCheck
	// Env and Workdir and User are the defaults the template's sandboxes start with;
	// a builder fills them from the steps' ENV, WORKDIR and USER.
	Env     map[string]string
	Workdir string
	User    string
	// Timeout bounds the whole build (0 = the builder's default).
	Timeout time.Duration
	// Limits are the finished template's sandbox defaults (CPUCores and MemoryMB; zero:
	// the server's). They do not bound the build's own steps.
	Limits Limits
}

// BuildFiles holds the files a build's COPY steps read, as tar archives stored by the
// sha256 (hex) of their bytes: E2B's SDK uploads one per COPY step, the native API one
// build context that every COPY step of the build names.
type BuildFiles interface {
	// Open returns the tar archive stored under hash, or a KindNotFound *Error.
	Open(ctx context.Context, hash string) (io.ReadCloser, error)
}

// BuildState is where a template build stands.
type BuildState string

// Build states.
const (
	BuildWaiting  BuildState = "waiting"
	BuildBuilding BuildState = "building"
	BuildReady    BuildState = "ready"
	BuildError    BuildState = "error"
)

// BuildLogLine is one line of a build's log.
type BuildLogLine struct {
	Time    time.Time
	Level   string // "info", "warn" or "error"
	Message string
}

// StepResult is what became of one step of a build.
type StepResult struct {
	Index int
	// Key is the cache key of the step's layer: a hash of its parent's key, the step
	// and its inputs (a COPY's files).
	Key    string
	Cached bool
	// ExitCode is a RUN step's exit code (only meaningful when it ran).
	ExitCode int
	Duration time.Duration
}

// Build is one template build.
type Build struct {
	ID         string
	TemplateID string
	TeamID     string
	State      BuildState
	// Reason says why an errored build failed: the step, its exit code and what to do.
	Reason string
	// Limits were asked for when the build was created (E2B's cpuCount and memoryMB);
	// a spec without limits of its own takes them. Tags are the tags the build gets once
	// ready (none: DefaultTag).
	Limits     Limits
	Tags       []string
	Steps      []StepResult
	CreatedAt  time.Time
	FinishedAt time.Time
}

// StepBuilder runs a build's steps on a node and leaves a root filesystem. It is the seam
// between the template service (state, logs, storage, quotas) and the layer engine.
type StepBuilder interface {
	// Build runs spec on parentRootFS (a built template's root filesystem or an unpacked
	// image), writing log lines to logs as they come and a StepResult per step to steps,
	// and returns the finished root filesystem directory and its size. A failed step is
	// a KindInvalid *Error naming the step, its exit code and its last log lines.
	Build(ctx context.Context, spec BuildSpec, parentRootFS string, files BuildFiles,
		logs func(BuildLogLine), steps func(StepResult)) (rootfs string, size int64, err error)
}

// BuildOptions are what a build gives its template besides its steps: the sandbox
// defaults Limits (CPUCores, MemoryMB; zero: the server's) unless its spec names others,
// and the Tags the build is known by once ready (none: DefaultTag).
type BuildOptions struct {
	Limits Limits
	Tags   []string
}

// Tags name a template's builds, E2B's way: "app:v2" is the build of template app tagged
// v2, and "app" (or "app:default") the one tagged DefaultTag, which is the template's own
// row. A tagged build is stored as a template of the team whose id is the name, the
// separator and the tag; lists of templates leave such rows out.
const (
	TagSeparator = ":"
	DefaultTag   = "default"
)

// TemplateTag is one tag of a template: the build it names.
type TemplateTag struct {
	Tag       string
	BuildID   string
	CreatedAt time.Time
}

// TemplateTagService manages the tags of the caller's team's templates.
type TemplateTagService interface {
	// AssignTags gives tags to the build that target ("app" or "app:tag") names, and
	// returns that build's id.
	AssignTags(ctx context.Context, p Principal, target string, tags []string) (buildID string, err error)
	// RemoveTags removes tags from template name; DefaultTag cannot be removed.
	RemoveTags(ctx context.Context, p Principal, name string, tags []string) error
	// ListTags returns the template's tags, DefaultTag first when it is built.
	ListTags(ctx context.Context, p Principal, name string) ([]TemplateTag, error)
}

// TemplateService is templates as a team's property: built-ins (a nil team) and the
// team's own, built from a BuildSpec. Another team's template is KindNotFound.
type TemplateService interface {
	// CreateBuild registers a template (or a new build of the caller's template of
	// that name) in state waiting, before its files are uploaded (E2B's POST /v3/templates),
	// with the options its build gives the template (see BuildOptions).
	CreateBuild(ctx context.Context, p Principal, name string, o BuildOptions) (*Template, *Build, error)
	// PutFiles stores a build's tar archive under its sha256 (hex), refusing one whose
	// bytes do not hash to it; HasFiles says whether it is stored already.
	PutFiles(ctx context.Context, p Principal, templateID, hash string, r io.Reader) error
	HasFiles(ctx context.Context, p Principal, templateID, hash string) (bool, error)
	// StartBuild runs spec as the build buildID (from CreateBuild) in the background.
	StartBuild(ctx context.Context, p Principal, templateID, buildID string, spec BuildSpec) (*Build, error)
	GetBuild(ctx context.Context, p Principal, templateID, buildID string) (*Build, error)
	// ListBuilds returns the builds of a template the caller sees, newest first (the
	// service keeps a bounded number per template; a built-in has none of the team's).
	ListBuilds(ctx context.Context, p Principal, templateID string) ([]*Build, error)
	// BuildLogs returns the build's log lines from offset on; follow waits (until ctx
	// ends) for more while the build runs.
	BuildLogs(ctx context.Context, p Principal, templateID, buildID string, offset int, follow bool, each func(BuildLogLine) error) error
	ListTemplates(ctx context.Context, p Principal) ([]*Template, error)
	GetTemplate(ctx context.Context, p Principal, id string) (*Template, error)
	DeleteTemplate(ctx context.Context, p Principal, id string) error
}

// StepDefaults returns what steps leave for a template's sandboxes, as a container keeps
// its image's ENV, WORKDIR and USER: the environment their ENV steps set (a later value
// wins), the last WORKDIR (a relative one taken from the one before it) and the last USER.
// Each is empty (nil) when no step sets it. API edges fill BuildSpec.Env, Workdir and User
// with it.
func StepDefaults(steps []BuildStep) (env map[string]string, workdir, user string) {
	for _, s := range steps {
		switch s.Kind {
		case StepEnv:
			for i := 0; i+1 < len(s.Args); i += 2 {
				if env == nil {
					env = map[string]string{}
				}
				env[s.Args[i]] = s.Args[i+1]
			}
		case StepWorkdir:
			if len(s.Args) == 1 {
				if dir := s.Args[0]; path.IsAbs(dir) || workdir == "" {
					workdir = path.Clean(dir)
				} else {
					workdir = path.Join(workdir, dir)
				}
			}
		case StepUser:
			if len(s.Args) == 1 {
				user = s.Args[0]
			}
		}
	}
	return env, workdir, user
}

// MaxReadyTimeout bounds a ready check's Timeout.
const MaxReadyTimeout = time.Hour

// IsZero reports whether r checks nothing.
func (r ReadyCheck) IsZero() bool {
	return r.Port == 0 && r.URL == "" && r.Process == "" && r.File == "" && r.Cmd == ""
}

// Validate reports the first problem of r as a KindInvalid *Error on the field
// "ready.<kind>": more than one kind, a port outside 1-65535, a URL that is not an
// absolute http(s) URL, an empty-looking or oversized check, or a timeout outside
// 0-MaxReadyTimeout.
func (r ReadyCheck) Validate() error {
	kinds := 0
	for _, set := range []bool{r.Port != 0, r.URL != "", r.Process != "", r.File != "", r.Cmd != ""} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds > 1:
		return Invalid("ready", "a ready check is one of port, url, process, file or cmd; this one sets %d of them", kinds)
	case r.Port < 0 || r.Port > 65535:
		return Invalid("ready.port", "port %d is not a TCP port (1-65535)", r.Port)
	case r.Timeout < 0 || r.Timeout > MaxReadyTimeout:
		return Invalid("ready.timeout", "a ready check waits between 0 (the default, 60 s) and %s, not %s", MaxReadyTimeout, r.Timeout)
	}
	for _, f := range []struct{ name, v string }{{"url", r.URL}, {"process", r.Process}, {"file", r.File}, {"cmd", r.Cmd}} {
		if len(f.v) > 4096 || strings.ContainsAny(f.v, "\x00\n\r") && f.name != "cmd" || strings.ContainsRune(f.v, 0) {
			return Invalid("ready."+f.name, "ready.%s must be one line of at most 4096 bytes", f.name)
		}
		if f.v != "" && strings.TrimSpace(f.v) == "" {
			return Invalid("ready."+f.name, "ready.%s is blank", f.name)
		}
	}
	if r.URL != "" {
		u, err := url.Parse(r.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Invalid("ready.url", "ready.url %q is not an http(s) URL (such as http://localhost:8080/health)", r.URL)
		}
	}
	return nil
}
