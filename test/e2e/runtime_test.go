package e2e

import (
	"strings"
	"testing"
)

// TestRuntimeSelection: the default runtime on this host is gVisor (auto); a request
// may ask for runc or for a minimum isolation; what the node cannot give is refused.
func TestRuntimeSelection(t *testing.T) {
	s := startServer(t, serverOpts{})
	var def, rc struct {
		ID      string `json:"id"`
		Runtime string `json:"runtime"`
	}
	if code, raw := s.API("POST", "/v1/sandboxes", map[string]any{}, &def); code != 201 || def.Runtime != "gvisor" {
		t.Fatalf("default create: %d %s", code, raw)
	}
	defer s.Kill(def.ID)
	if code, raw := s.API("POST", "/v1/sandboxes", map[string]any{"runtime": "runc"}, &rc); code != 201 || rc.Runtime != "runc" {
		t.Fatalf("runc create: %d %s", code, raw)
	}
	defer s.Kill(rc.ID)
	// runc: root in the sandbox is an unprivileged id on the host (user namespace).
	if r := s.Exec(rc.ID, "cat /proc/self/uid_map"); !strings.Contains(r.Stdout, "100000") {
		t.Errorf("runc uid_map: %+v", r)
	}
	if r := s.Exec(rc.ID, "echo $(id -un) on runc"); r.Stdout != "user on runc\n" {
		t.Errorf("exec in runc: %+v", r)
	}
	cases := []struct {
		body    map[string]any
		field   string
		mention string
	}{
		{map[string]any{"min_isolation": "microvm"}, "min_isolation", "hardware virtualization"},
		{map[string]any{"runtime": "runc", "min_isolation": "sandbox"}, "min_isolation", "less than"},
		{map[string]any{"runtime": "firecracker"}, "runtime", "not available"},
	}
	for _, c := range cases {
		code, raw := s.API("POST", "/v1/sandboxes", c.body, nil)
		if code != 400 || !strings.Contains(string(raw), c.field) || !strings.Contains(string(raw), c.mention) {
			t.Errorf("%v: %d %s", c.body, code, raw)
		}
	}
	var ok struct {
		ID      string `json:"id"`
		Runtime string `json:"runtime"`
	}
	code, raw := s.API("POST", "/v1/sandboxes", map[string]any{"min_isolation": "sandbox"}, &ok)
	if code != 201 || ok.Runtime != "gvisor" {
		t.Fatalf("min_isolation sandbox: %d %s", code, raw)
	}
	s.Kill(ok.ID)
}
