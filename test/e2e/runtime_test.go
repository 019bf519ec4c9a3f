package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestRuntimeSelection: on a server that offers gVisor and runc (WARREN_RUNTIMES), the
// default is gVisor; a request may ask for runc or for a minimum isolation; what the node
// cannot give is refused; a team limited to some runtimes gets a 403 for the others,
// on /v1 and the E2B API alike, and only platform admins may change the limit.
func TestRuntimeSelection(t *testing.T) {
	s := startServer(t, serverOpts{ExtraEnv: []string{"WARREN_RUNTIMES=gvisor,runc"}})
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
	// runc: root in the sandbox is an unprivileged id on the host (user namespace), in a
	// range of the sandbox's own: past 100000..165535, the host's first subuid range.
	if r := s.Exec(rc.ID, "cat /proc/self/uid_map"); !ownIDRange(r.Stdout) {
		t.Errorf("runc uid_map: %+v, want 0 <host id ≥ 165536> 65536", r)
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
		{map[string]any{"runtime": "firecracker"}, "runtime", "not enabled on this server; enabled: gvisor, runc"},
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

	t.Run("team limited to gvisor", func(t *testing.T) {
		team, key := s.newTeam(map[string]any{"name": "gvisor only", "allowed_runtimes": []string{"gvisor"}})
		var got struct {
			AllowedRuntimes []string `json:"allowed_runtimes"`
		}
		if code, raw := s.API("GET", "/v1/teams/"+team.ID, nil, &got); code != 200 || !reflect.DeepEqual(got.AllowedRuntimes, []string{"gvisor"}) {
			t.Errorf("GET team: %d %s; want allowed_runtimes [gvisor]", code, raw)
		}
		code, raw := s.APIKey(key, "POST", "/v1/sandboxes", map[string]any{"runtime": "runc"}, nil)
		if e := decodeErr(t, raw); code != 403 || e.Code != "forbidden" || !strings.Contains(e.Message, "may not use runtime runc") {
			t.Errorf("runc for a team limited to gvisor: %d %s; want 403 forbidden naming the reason", code, raw)
		}
		var sb struct {
			ID      string `json:"id"`
			Runtime string `json:"runtime"`
		}
		if code, raw := s.APIKey(key, "POST", "/v1/sandboxes", map[string]any{}, &sb); code != 201 || sb.Runtime != "gvisor" {
			t.Errorf("default create for the team: %d %s", code, raw)
		} else {
			s.APIKey(key, "DELETE", "/v1/sandboxes/"+sb.ID, nil, nil)
		}
		// The team's own owner key may not lift the limit.
		code, raw = s.APIKey(key, "PATCH", "/v1/teams/"+team.ID, map[string]any{"allowed_runtimes": []string{}}, nil)
		if e := decodeErr(t, raw); code != 403 || e.Code != "forbidden" {
			t.Errorf("team key PATCH allowed_runtimes: %d %s; want 403", code, raw)
		}
		code, raw = s.API("PATCH", "/v1/teams/"+team.ID, map[string]any{"allowed_runtimes": []string{"gvisor", "kata"}}, nil)
		if e := decodeErr(t, raw); code != 400 || !strings.Contains(e.Message, `"kata" is not enabled`) {
			t.Errorf("PATCH with an unknown runtime: %d %s; want 400", code, raw)
		}
	})

	t.Run("team limited to runc is never given it silently", func(t *testing.T) {
		_, key := s.newTeam(map[string]any{"name": "runc only", "allowed_runtimes": []string{"runc"}})
		code, raw := s.APIKey(key, "POST", "/v1/sandboxes", map[string]any{}, nil)
		if e := decodeErr(t, raw); code != 403 || !strings.Contains(e.Message, "may not use this server's default runtime gvisor") {
			t.Errorf("default create for a team limited to runc: %d %s; want 403", code, raw)
		}
		// The E2B API creates through the same service and obeys the same rule.
		b, _ := json.Marshal(map[string]any{"templateID": "base"})
		req, _ := http.NewRequest("POST", s.URL+"/sandboxes", bytes.NewReader(b))
		req.Header.Set("X-API-Key", key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(body), "default runtime gvisor") {
			t.Errorf("E2B create for a team limited to runc: %d %s; want 403", resp.StatusCode, body)
		}
	})
}

// TestRuntimeNotEnabled: a server started without WARREN_RUNTIMES offers only its
// default, even though runc runs on this host.
func TestRuntimeNotEnabled(t *testing.T) {
	s := startServer(t, serverOpts{})
	code, raw := s.API("POST", "/v1/sandboxes", map[string]any{"runtime": "runc"}, nil)
	want := "runtime runc is not enabled on this server; enabled: gvisor (the operator enables more with --runtimes)"
	if e := decodeErr(t, raw); code != 400 || e.Code != "invalid" || e.Message != want {
		t.Errorf("runc create: %d %s; want 400 invalid %q", code, raw, want)
	}
	team, _ := s.newTeam(map[string]any{"name": "t"})
	code, raw = s.API("PATCH", "/v1/teams/"+team.ID, map[string]any{"allowed_runtimes": []string{"runc"}}, nil)
	if e := decodeErr(t, raw); code != 400 || !strings.Contains(e.Message, `"runc" is not enabled on this server; enabled: gvisor`) {
		t.Errorf("allowing a runtime the server does not enable: %d %s; want 400", code, raw)
	}
}

// ownIDRange reports whether uidMap (a /proc/self/uid_map) maps ids 0..65535 to one host
// range at or past 165536, where Warren's per-sandbox ranges lie.
func ownIDRange(uidMap string) bool {
	f := strings.Fields(uidMap)
	if len(f) != 3 || f[0] != "0" || f[2] != "65536" {
		return false
	}
	host, err := strconv.ParseUint(f[1], 10, 32)
	return err == nil && host >= 165536
}
