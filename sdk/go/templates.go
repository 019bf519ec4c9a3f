package warren

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/url"
	"strconv"
	"time"
)

// BuildStep is one step of a template build: Type is RUN, COPY, ENV, WORKDIR or USER.
type BuildStep struct {
	Type string `json:"type"` // RUN, COPY, ENV, WORKDIR or USER
	// Args are RUN: [command]; COPY: [src, dst, owner?]; ENV: [key, value, ...];
	// WORKDIR: [dir]; USER: [user].
	Args []string `json:"args"`
	// FilesHash names, for a COPY, the tar archive src is read from (default: the
	// build's context).
	FilesHash string `json:"files_hash,omitempty"`
	// Force reruns the step, and every later one, even when its layer is cached.
	Force bool `json:"force,omitempty"`
}

// ReadyCheck says when a template's start command is ready: at most one of Port, URL,
// Process, File and Cmd; Timeout in seconds.
type ReadyCheck struct {
	Port    int    `json:"port,omitempty"`    // a TCP port accepts connections
	URL     string `json:"url,omitempty"`     // an http URL answers 2xx
	Process string `json:"process,omitempty"` // a process of this name runs
	File    string `json:"file,omitempty"`    // this file exists
	Cmd     string `json:"cmd,omitempty"`     // this shell command exits 0
	Timeout int64  `json:"timeout,omitempty"` // seconds
}

// BuildRequest is a template build. Name is required; give FromTemplate or FromImage
// and Steps, or a Dockerfile (BuildOptions.Dockerfile) instead of both.
type BuildRequest struct {
	Name         string            `json:"name"`                    // the template's id
	FromTemplate string            `json:"from_template,omitempty"` // a template to build on
	FromImage    string            `json:"from_image,omitempty"`    // or an OCI image
	Steps        []BuildStep       `json:"steps,omitempty"`         // run in order
	StartCmd     string            `json:"start_cmd,omitempty"`     // started in every sandbox
	Ready        *ReadyCheck       `json:"ready,omitempty"`         // when StartCmd is ready
	Env          map[string]string `json:"env,omitempty"`           // default environment
	Workdir      string            `json:"workdir,omitempty"`       // default directory
	User         string            `json:"user,omitempty"`          // default user
	// Timeout bounds the build in seconds (0: the server's limit).
	Timeout int64 `json:"timeout,omitempty"`
	// BuildArgs are the Dockerfile's --build-arg values.
	BuildArgs map[string]string `json:"build_args,omitempty"`
	// CPUCores and MemoryMB are what the template's sandboxes get when they ask for
	// none (0: the server's defaults).
	CPUCores float64 `json:"cpu_cores,omitempty"`
	MemoryMB int64   `json:"memory_mb,omitempty"`
}

// BuildOptions are the files of a build: a Dockerfile (instead of steps) and the build
// context, a tar archive COPY steps read from. Either may be nil.
type BuildOptions struct {
	Dockerfile io.Reader // a Dockerfile, instead of BuildRequest's parent and steps
	Context    io.Reader // a tar archive
}

// BuildStepResult is what became of one step of a build.
type BuildStepResult struct {
	Index      int    `json:"index"`       // from 0
	Key        string `json:"key"`         // the layer's cache key
	Cached     bool   `json:"cached"`      // the layer came from the cache
	ExitCode   int    `json:"exit_code"`   // a RUN's exit code
	DurationMS int64  `json:"duration_ms"` // how long the step took
}

// Build is a template build: State is waiting, building, ready or error (Reason says
// why: the step, its exit code and its last log lines).
type Build struct {
	ID         string            `json:"id"`                   // bld_...
	TemplateID string            `json:"template_id"`          // the template built
	State      string            `json:"state"`                // waiting, building, ready or error
	Reason     string            `json:"reason,omitempty"`     // why it failed
	Steps      []BuildStepResult `json:"steps"`                // the steps done so far
	CreatedAt  time.Time         `json:"created_at"`           // when it was created
	FinishedAt time.Time         `json:"finished_at,omitzero"` // when it ended
}

// Done says whether the build has ended (ready or error).
func (b *Build) Done() bool { return b.State == "ready" || b.State == "error" }

// BuildStarted is the answer to BuildTemplate.
type BuildStarted struct {
	Template Template `json:"template"` // the template being built
	Build    Build    `json:"build"`    // its new build
}

// BuildLogLine is one line of a build's log.
type BuildLogLine struct {
	Offset  int       `json:"offset"`  // the line's number, from 0
	Time    time.Time `json:"time"`    // when it was written
	Level   string    `json:"level"`   // info, warn or error
	Message string    `json:"message"` // the line
}

// BuildLogs is a page of a build's log.
type BuildLogs struct {
	Lines      []BuildLogLine `json:"lines"`       // at most 1000
	NextOffset int            `json:"next_offset"` // where the next page starts
	State      string         `json:"state"`       // the build's state
}

// buildList is the answer of GET /v1/templates/{id}/builds.
type buildList struct {
	Builds []Build `json:"builds"`
}

var buildLogEvents = map[string]any{"log": BuildLogLine{}, "end": Build{}, "error": errorWire{}}

var (
	routeBuildTemplate   = &route{method: "POST", path: "/v1/templates", status: 202, request: BuildRequest{}, response: BuildStarted{}}
	routeGetTemplate     = &route{method: "GET", path: "/v1/templates/{id}", status: 200, response: Template{}}
	routeDeleteTemplate  = &route{method: "DELETE", path: "/v1/templates/{id}", status: 204}
	routeListBuilds      = &route{method: "GET", path: "/v1/templates/{id}/builds", status: 200, response: buildList{}}
	routeGetBuild        = &route{method: "GET", path: "/v1/templates/{id}/builds/{build}", status: 200, response: Build{}}
	routeBuildLogs       = &route{method: "GET", path: "/v1/templates/{id}/builds/{build}/logs", status: 200, query: []string{"offset"}, response: BuildLogs{}}
	routeBuildLogsStream = &route{method: "GET", path: "/v1/templates/{id}/builds/{build}/logs", status: 200, query: []string{"offset"},
		contentType: "text/event-stream", events: buildLogEvents}
)

// BuildTemplate starts a build of the team's template req.Name. With a Dockerfile or a
// context in opts the request is sent as multipart/form-data (the context streamed
// once: it is not retried), else as JSON.
func (c *Client) BuildTemplate(ctx context.Context, req BuildRequest, opts BuildOptions) (*BuildStarted, error) {
	var out BuildStarted
	if opts.Dockerfile == nil && opts.Context == nil {
		if err := c.call(ctx, request{route: routeBuildTemplate, json: req}, &out); err != nil {
			return nil, err
		}
		return &out, nil
	}
	spec, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("warren: encoding the build: %w", err)
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			w, err := mw.CreateFormField("spec")
			if err == nil {
				_, err = w.Write(spec)
			}
			for _, part := range []struct {
				name string
				r    io.Reader
			}{{"dockerfile", opts.Dockerfile}, {"context", opts.Context}} {
				if err != nil || part.r == nil {
					continue
				}
				if w, err = mw.CreateFormFile(part.name, part.name); err == nil {
					_, err = io.Copy(w, part.r)
				}
			}
			if err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	err = c.call(ctx, request{route: routeBuildTemplate, body: pr, contentType: mw.FormDataContentType()}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// GetTemplate returns a built-in template or one of the team's own.
func (c *Client) GetTemplate(ctx context.Context, id string) (*Template, error) {
	var t Template
	if err := c.call(ctx, request{route: routeGetTemplate, params: []string{id}}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// DeleteTemplate deletes one of the team's own templates.
func (c *Client) DeleteTemplate(ctx context.Context, id string) error {
	return c.call(ctx, request{route: routeDeleteTemplate, params: []string{id}}, nil)
}

// GetBuild returns a build of the team's template.
func (c *Client) GetBuild(ctx context.Context, templateID, buildID string) (*Build, error) {
	var b Build
	if err := c.call(ctx, request{route: routeGetBuild, params: []string{templateID, buildID}}, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// ListBuilds returns the builds of a template, newest first (none for a built-in).
func (c *Client) ListBuilds(ctx context.Context, templateID string) ([]Build, error) {
	var l buildList
	if err := c.call(ctx, request{route: routeListBuilds, params: []string{templateID}}, &l); err != nil {
		return nil, err
	}
	return l.Builds, nil
}

// BuildLogs returns a page of a build's log from line offset on.
func (c *Client) BuildLogs(ctx context.Context, templateID, buildID string, offset int) (*BuildLogs, error) {
	var l BuildLogs
	q := url.Values{"offset": {strconv.Itoa(offset)}}
	if err := c.call(ctx, request{route: routeBuildLogs, params: []string{templateID, buildID}, query: q}, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// FollowBuild calls each for every log line of the build from offset on, as it comes,
// until the build ends, and returns the ended build.
func (c *Client) FollowBuild(ctx context.Context, templateID, buildID string, offset int, each func(BuildLogLine)) (*Build, error) {
	q := url.Values{"offset": {strconv.Itoa(offset)}}
	resp, err := c.send(ctx, request{route: routeBuildLogsStream, params: []string{templateID, buildID}, query: q, accept: "text/event-stream"})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	sse := newSSEReader(resp.Body)
	for {
		ev, err := sse.next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("warren: the log stream of build %s ended before the build", buildID)
		}
		if err != nil {
			return nil, transportError(ctx, err)
		}
		switch ev.name {
		case "log":
			var l BuildLogLine
			if err := json.Unmarshal(ev.data, &l); err != nil {
				return nil, fmt.Errorf("warren: bad log event %q", ev.data)
			}
			if each != nil {
				each(l)
			}
		case "end":
			var b Build
			if err := json.Unmarshal(ev.data, &b); err != nil {
				return nil, fmt.Errorf("warren: bad end event %q", ev.data)
			}
			return &b, nil
		case "error":
			var w errorWire
			if err := json.Unmarshal(ev.data, &w); err != nil || w.Code == "" {
				return nil, fmt.Errorf("warren: bad error event %q", ev.data)
			}
			return nil, newAPIError(w, 0, resp.Header.Get("X-Request-Id"), 0, false)
		}
	}
}
