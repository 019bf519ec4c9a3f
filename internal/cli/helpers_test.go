package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// testEnv is a real /v1 handler over memService, served by httptest, and the
// environment the CLI sees.
type testEnv struct {
	t    *testing.T
	svc  *memService
	url  string
	vars map[string]string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	svc := newMemService()
	srv := httptest.NewServer(restServer(svc))
	t.Cleanup(srv.Close)
	return &testEnv{t: t, svc: svc, url: srv.URL, vars: map[string]string{
		"WARREN_API_URL": srv.URL, "WARREN_API_KEY": keyA,
	}}
}

type runResult struct {
	code   int
	stdout string
	stderr string
}

// run runs the CLI with empty stdin.
func (e *testEnv) run(args ...string) runResult {
	e.t.Helper()
	return e.runIn(strings.NewReader(""), args...)
}

func (e *testEnv) runIn(stdin io.Reader, args ...string) runResult {
	e.t.Helper()
	var out, errb bytes.Buffer
	code := RunIO(context.Background(), args, stdin, &out, &errb, func(k string) string { return e.vars[k] })
	return runResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// ok runs the CLI and fails the test unless it exits 0.
func (e *testEnv) ok(args ...string) runResult {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("warren %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// createSandbox makes a sandbox through the CLI and returns its id.
func (e *testEnv) createSandbox(args ...string) string {
	e.t.Helper()
	r := e.ok(append([]string{"sandbox", "create", "-o", "json"}, args...)...)
	var sb map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &sb); err != nil {
		e.t.Fatalf("sandbox create -o json: %v\n%s", err, r.stdout)
	}
	id, _ := sb["id"].(string)
	if id == "" {
		e.t.Fatalf("sandbox create -o json has no id: %s", r.stdout)
	}
	return id
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not the JSON expected: %v\n%s", err, s)
	}
	return v
}
