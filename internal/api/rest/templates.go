package rest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/template/dockerfile"
)

// DefaultMaxBuildContext bounds a build context uploaded with POST /v1/templates.
const DefaultMaxBuildContext = 512 << 20

// WithTemplates serves template builds (POST /v1/templates, /v1/templates/{id}...) and
// lists the team's own templates with the built-ins from ts; maxContext bounds an
// uploaded build context (<= 0: DefaultMaxBuildContext). Without it GET /v1/templates
// lists the built-ins and the other template routes answer 503.
func WithTemplates(ts domain.TemplateService, maxContext int64) Option {
	return func(o *options) { o.templates, o.maxContext = ts, maxContext }
}

// WithUploadDir is where uploaded build contexts are spooled while they are hashed and
// stored ("" = the system's temporary directory, which may be a RAM-backed tmpfs).
func WithUploadDir(dir string) Option {
	return func(o *options) { o.uploadDir = dir }
}

// templateCall returns the caller, the template service (a 503 without one) and the
// path's template id.
func (s *Server) templateCall(r *http.Request) (domain.Principal, domain.TemplateService, string, error) {
	p, err := edge.Principal(r)
	if err != nil {
		return p, nil, "", err
	}
	if s.opts.templates == nil {
		return p, nil, "", domain.Errorf(domain.KindUnavailable, "template builds are not supported by this server")
	}
	return p, s.opts.templates, r.PathValue("id"), nil
}

func (s *Server) getTemplate(w http.ResponseWriter, r *http.Request) error {
	p, ts, id, err := s.templateCall(r)
	if err != nil {
		return err
	}
	tpl, err := ts.GetTemplate(r.Context(), p, id)
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, toTemplateJSON(tpl))
	return nil
}

func (s *Server) deleteTemplate(w http.ResponseWriter, r *http.Request) error {
	p, ts, id, err := s.templateCall(r)
	if err != nil {
		return err
	}
	edge.SetTarget(r, id)
	if err := ts.DeleteTemplate(r.Context(), p, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getBuild(w http.ResponseWriter, r *http.Request) error {
	p, ts, id, err := s.templateCall(r)
	if err != nil {
		return err
	}
	b, err := ts.GetBuild(r.Context(), p, id, r.PathValue("build"))
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, toBuildJSON(b))
	return nil
}

func (s *Server) listBuilds(w http.ResponseWriter, r *http.Request) error {
	p, ts, id, err := s.templateCall(r)
	if err != nil {
		return err
	}
	bs, err := ts.ListBuilds(r.Context(), p, id)
	if err != nil {
		return err
	}
	resp := buildListResponse{Builds: make([]buildJSON, 0, len(bs))}
	for _, b := range bs {
		resp.Builds = append(resp.Builds, toBuildJSON(b))
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}

// maxLogPage is how many lines one JSON answer of build logs carries.
const maxLogPage = 1000

var errPageFull = errors.New("page full")

// buildLogs answers a build's log lines from ?offset= on: as JSON (a page of at most
// maxLogPage lines and the offset to go on from), or, for Accept: text/event-stream,
// as "log" events followed until the build ends, then an "end" event with the build.
func (s *Server) buildLogs(w http.ResponseWriter, r *http.Request) error {
	p, ts, id, err := s.templateCall(r)
	if err != nil {
		return err
	}
	buildID := r.PathValue("build")
	offset := 0
	if v := r.URL.Query().Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return domain.Invalid("offset", "offset %q is not a line number (0 or more)", v)
		}
	}
	if acceptsEventStream(r) {
		return streamBuildLogs(s, w, r, p, ts, id, buildID, offset)
	}
	resp := buildLogsResponse{Lines: []buildLogLineJSON{}, NextOffset: offset}
	err = ts.BuildLogs(r.Context(), p, id, buildID, offset, false, func(l domain.BuildLogLine) error {
		if len(resp.Lines) == maxLogPage {
			return errPageFull
		}
		resp.Lines = append(resp.Lines, buildLogLineJSON{Offset: resp.NextOffset, Time: l.Time, Level: l.Level, Message: l.Message})
		resp.NextOffset++
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		return err
	}
	b, err := ts.GetBuild(r.Context(), p, id, buildID)
	if err != nil {
		return err
	}
	resp.State = string(b.State)
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}

// streamBuildLogs is buildLogs as SSE.
func streamBuildLogs(s *Server, w http.ResponseWriter, r *http.Request, p domain.Principal, ts domain.TemplateService, id, buildID string, offset int) error {
	// Unknown builds are a JSON 404 before the stream starts.
	if _, err := ts.GetBuild(r.Context(), p, id, buildID); err != nil {
		return err
	}
	sse := &sseWriter{w: w}
	if err := sse.comment("build " + buildID); err != nil {
		return nil // the client went away
	}
	stop := s.keepStreamAlive(sse)
	err := ts.BuildLogs(r.Context(), p, id, buildID, offset, true, func(l domain.BuildLogLine) error {
		err := sse.send("log", buildLogLineJSON{Offset: offset, Time: l.Time, Level: l.Level, Message: l.Message})
		offset++
		return err
	})
	stop()
	if sse.writeErr() != nil || r.Context().Err() != nil {
		return nil
	}
	if err == nil {
		var b *domain.Build
		if b, err = ts.GetBuild(r.Context(), p, id, buildID); err == nil {
			_ = sse.send("end", toBuildJSON(b))
			return nil
		}
	}
	_ = sse.send("error", s.errorEvent(r, err))
	return nil
}

// buildTemplate starts a build of the caller's template: a JSON body (buildRequest),
// or a multipart/form-data body with a "dockerfile" or a "spec" (JSON) part, an
// optional "name" and an optional "context" part (a tar archive that every COPY reads
// from), bounded by maxContext (413 beyond).
func (s *Server) buildTemplate(w http.ResponseWriter, r *http.Request) error {
	p, ts, _, err := s.templateCall(r)
	if err != nil {
		return err
	}
	var req buildRequest
	var df []byte
	var upload *contextUpload
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		if upload, df, err = readBuildForm(r, &req, s.opts.maxContext, s.opts.uploadDir); upload != nil {
			defer upload.remove()
		}
	} else {
		err = s.decodeJSON(w, r, &req)
	}
	if err != nil {
		return err
	}
	hash := ""
	if upload != nil {
		hash = upload.hash
	}
	spec, err := toBuildSpec(req, df, hash)
	if err != nil {
		return err
	}
	tpl, b, err := ts.CreateBuild(r.Context(), p, req.Name, domain.BuildOptions{Limits: spec.Limits})
	if err != nil {
		return err
	}
	edge.SetTarget(r, tpl.ID)
	if upload != nil {
		if _, err := upload.f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rereading the build context: %w", err)
		}
		if err := ts.PutFiles(r.Context(), p, tpl.ID, hash, upload.f); err != nil {
			return err
		}
	}
	if b, err = ts.StartBuild(r.Context(), p, tpl.ID, b.ID, spec); err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusAccepted, buildResponse{Template: toTemplateJSON(tpl), Build: toBuildJSON(b)})
	return nil
}

// toBuildSpec turns a request (and its Dockerfile, if any) into a spec; hash names the
// uploaded context, which COPY steps without files_hash read.
func toBuildSpec(req buildRequest, df []byte, hash string) (domain.BuildSpec, error) {
	if req.Name == "" {
		return domain.BuildSpec{}, domain.Invalid("name", "name the template (name): the id sandboxes are created from")
	}
	if req.Timeout < 0 {
		return domain.BuildSpec{}, domain.Invalid("timeout", "timeout must not be negative (seconds; 0 = the server's limit)")
	}
	var spec domain.BuildSpec
	if df != nil {
		if req.FromTemplate != "" || req.FromImage != "" || len(req.Steps) > 0 {
			return spec, domain.Invalid("dockerfile", "give a Dockerfile or from_template/from_image and steps, not both")
		}
		var err error
		if spec, err = dockerfile.Parse(bytes.NewReader(df), dockerfile.Options{BuildArgs: req.BuildArgs, ContextHash: hash}); err != nil {
			return spec, err
		}
	} else {
		if len(req.BuildArgs) > 0 {
			return spec, domain.Invalid("build_args", "build_args are for a Dockerfile; this build has none")
		}
		spec.FromTemplate, spec.FromImage = req.FromTemplate, req.FromImage
		for _, st := range req.Steps {
			step := domain.BuildStep{Kind: domain.StepKind(strings.ToUpper(st.Type)), Args: st.Args, FilesHash: st.FilesHash, Force: st.Force}
			if step.Kind == domain.StepCopy && step.FilesHash == "" {
				step.FilesHash = hash
			}
			spec.Steps = append(spec.Steps, step)
		}
	}
	spec.Name = req.Name
	if req.StartCmd != "" {
		spec.StartCmd = req.StartCmd
	}
	spec.Env = mergeMaps(spec.Env, req.Env)
	if req.Workdir != "" {
		spec.Workdir = req.Workdir
	}
	if req.User != "" {
		spec.User = req.User
	}
	spec.Timeout = time.Duration(req.Timeout) * time.Second
	spec.Limits = domain.Limits{CPUCores: req.CPUCores, MemoryMB: req.MemoryMB}
	if rc := req.Ready; rc != nil {
		spec.Ready = domain.ReadyCheck{Port: rc.Port, URL: rc.URL, Process: rc.Process, File: rc.File, Cmd: rc.Cmd,
			Timeout: time.Duration(rc.Timeout) * time.Second}
		set := 0
		for _, v := range []bool{rc.Port != 0, rc.URL != "", rc.Process != "", rc.File != "", rc.Cmd != ""} {
			if v {
				set++
			}
		}
		if set > 1 || rc.Port < 0 || rc.Port > 65535 || rc.Timeout < 0 {
			return spec, domain.Invalid("ready", "ready takes one of port (1-65535), url, process, file and cmd, and a timeout in seconds")
		}
	}
	return spec, nil
}

func mergeMaps(a, b map[string]string) map[string]string {
	if len(b) == 0 {
		return a
	}
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// contextUpload is a build context spooled to a temporary file while it is hashed.
type contextUpload struct {
	f    *os.File
	hash string
}

func (u *contextUpload) remove() {
	u.f.Close()
	os.Remove(u.f.Name())
}

// maxFormPart bounds the small parts of a build form (name, spec, dockerfile).
const maxFormPart = 1 << 20

// readBuildForm reads a multipart build: "name", "spec" (JSON), "dockerfile" and
// "context" (within limit bytes; <= 0: DefaultMaxBuildContext). It returns the spooled context (nil without one) and the Dockerfile
// (nil without one).
func readBuildForm(r *http.Request, req *buildRequest, limit int64, dir string) (*contextUpload, []byte, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, domain.Invalid("body", "the multipart body cannot be read: %v", err)
	}
	if limit <= 0 {
		limit = DefaultMaxBuildContext
	}
	var upload *contextUpload
	var df []byte
	name := ""
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return upload, nil, domain.Invalid("body", "the multipart body cannot be read: %v", err)
		}
		field := part.FormName()
		switch field {
		case "context":
			if upload != nil {
				return upload, nil, domain.Invalid("context", "give one build context")
			}
			if upload, err = spool(part, limit, dir); err != nil {
				return upload, nil, err
			}
		case "name", "spec", "dockerfile":
			b, err := io.ReadAll(io.LimitReader(part, maxFormPart+1))
			if err != nil {
				return upload, nil, domain.Invalid(field, "the %s part cannot be read: %v", field, err)
			}
			if len(b) > maxFormPart {
				return upload, nil, &domain.Error{Kind: domain.KindInvalid, Field: field, Err: &domain.TooLargeError{Limit: maxFormPart},
					Message: fmt.Sprintf("the %s part is larger than %d bytes", field, maxFormPart)}
			}
			switch field {
			case "name":
				name = strings.TrimSpace(string(b))
			case "dockerfile":
				df = b
			default:
				dec := json.NewDecoder(bytes.NewReader(b))
				dec.DisallowUnknownFields()
				if err := dec.Decode(req); err != nil {
					return upload, nil, domain.Invalid("spec", "the spec part is not a valid build request: %v", err)
				}
			}
		default:
			return upload, nil, domain.Invalid(field, "unknown form part %q: use name, spec, dockerfile and context", field)
		}
	}
	if name != "" {
		req.Name = name
	}
	return upload, df, nil
}

// spool copies a build context to a temporary file, hashing it, within limit.
func spool(r io.Reader, limit int64, dir string) (*contextUpload, error) {
	f, err := os.CreateTemp(dir, "warren-context-*.tar")
	if err != nil {
		return nil, fmt.Errorf("spooling the build context: %w", err)
	}
	u := &contextUpload{f: f}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, limit+1))
	if err != nil {
		return u, domain.Invalid("context", "the build context cannot be read: %v", err)
	}
	if n > limit {
		return u, &domain.Error{Kind: domain.KindInvalid, Field: "context", Err: &domain.TooLargeError{Limit: limit},
			Message: fmt.Sprintf("the build context is larger than the limit of %d bytes; leave out what the build does not need (.dockerignore)", limit)}
	}
	u.hash = hex.EncodeToString(h.Sum(nil))
	return u, nil
}
