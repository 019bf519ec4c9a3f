package agent

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestPlainRoutes(t *testing.T) {
	e := newTestEnv(t, Config{Env: map[string]string{"FOO": "bar"}})
	tests := []struct {
		name, method, path string
		body               string
		status             int
		check              func(t *testing.T, body []byte)
	}{
		{name: "health", method: "GET", path: "/health", status: 204, check: func(t *testing.T, b []byte) {
			if len(b) != 0 {
				t.Errorf("body %q", b)
			}
		}},
		{name: "envs", method: "GET", path: "/envs", status: 200, check: func(t *testing.T, b []byte) {
			var env map[string]string
			if err := json.Unmarshal(b, &env); err != nil || env["FOO"] != "bar" {
				t.Errorf("envs %s (%v)", b, err)
			}
		}},
		{name: "metrics", method: "GET", path: "/metrics", status: 200, check: func(t *testing.T, b []byte) {
			var m map[string]float64
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("metrics %s: %v", b, err)
			}
			for _, k := range []string{"ts", "cpu_count", "mem_total", "mem_used", "mem_total_mib", "mem_used_mib", "disk_used", "disk_total"} {
				if m[k] <= 0 {
					t.Errorf("%s = %v in %s", k, m[k], b)
				}
			}
			if _, ok := m["cpu_used_pct"]; !ok || m["cpu_used_pct"] < 0 || m["cpu_used_pct"] > 100 {
				t.Errorf("cpu_used_pct in %s", b)
			}
			if m["mem_used"] > m["mem_total"] || m["disk_used"] > m["disk_total"] {
				t.Errorf("used > total in %s", b)
			}
		}},
		{name: "unknown route", method: "GET", path: "/nope", status: 404},
		{name: "wrong method", method: "DELETE", path: "/files", status: 405},
		{name: "bad init body", method: "POST", path: "/init", body: "{", status: 400},
		{name: "init with unknown user", method: "POST", path: "/init", body: `{"defaultUser":"no-such-user-xyz"}`, status: 400},
		{name: "init with relative workdir", method: "POST", path: "/init", body: `{"defaultWorkdir":"rel"}`, status: 400},
		{name: "init with a bad hostname", method: "POST", path: "/init", body: `{"hostname":"a b"}`, status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.httpDo(t, tc.method, tc.path, []byte(tc.body), nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Error("no CORS header")
			}
			if tc.status >= 400 {
				if eb := decodeError(t, body); eb.Code != tc.status || eb.Message == "" {
					t.Fatalf("error body %s", body)
				}
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
	t.Run("CORS preflight", func(t *testing.T) {
		resp, _ := e.httpDo(t, "OPTIONS", "/process.Process/Start", nil, map[string]string{
			"Origin": "https://example.com", "Access-Control-Request-Method": "POST",
		})
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("preflight %d %v", resp.StatusCode, resp.Header)
		}
	})
}

func TestInit(t *testing.T) {
	e := newTestEnv(t, Config{})
	resp, body := e.httpDo(t, "POST", "/init", []byte(`{"envVars":{"X":"1"},"accessToken":"tok","defaultUser":"nobody","defaultWorkdir":"/tmp","timestamp":"2026-01-01T00:00:00Z"}`), nil)
	if resp.StatusCode != 204 || len(body) != 0 {
		t.Fatalf("/init: %d %s", resp.StatusCode, body)
	}
	if u, w := e.a.settings.defaults(); u != "nobody" || w != "/tmp" {
		t.Fatalf("defaults %s %s", u, w)
	}
	// The token now applies.
	if resp, _ := e.httpDo(t, "GET", "/envs", nil, nil); resp.StatusCode != 401 {
		t.Fatalf("/envs without token: %d", resp.StatusCode)
	}
	resp, body = e.httpDo(t, "GET", "/envs", nil, map[string]string{"X-Access-Token": "tok"})
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"X":"1"`) {
		t.Fatalf("/envs: %d %s", resp.StatusCode, body)
	}
	// Re-initialising needs the current token in the header; the body's token is the
	// new one, not a proof.
	tests := []struct {
		name, body string
		hdr        map[string]string
		status     int
	}{
		{"no proof", `{"accessToken":"other"}`, nil, 401},
		{"wrong header", `{}`, map[string]string{"X-Access-Token": "bad"}, 401},
		{"same token in body is no proof", `{"accessToken":"tok","envVars":{"Y":"2"}}`, nil, 401},
		{"header, same token", `{"accessToken":"tok","envVars":{"Y":"2"}}`, map[string]string{"X-Access-Token": "tok"}, 204},
		{"empty token keeps the token", `{"accessToken":""}`, map[string]string{"X-Access-Token": "tok"}, 204},
		{"header, rotate token", `{"accessToken":"tok2"}`, map[string]string{"X-Access-Token": "tok"}, 204},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.httpDo(t, "POST", "/init", []byte(tc.body), tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
		})
	}
	if e.a.settings.accessToken() != "tok2" {
		t.Fatalf("token not rotated")
	}
}

// TestInitHostname: /init renames the sandbox through sethostname (faked here: the test
// agent is not a sandbox's init and must never rename the host) and keeps the name; a
// refused rename changes nothing else.
func TestInitHostname(t *testing.T) {
	e := newTestEnv(t, Config{AccessToken: "old", Hostname: "parent"})
	var set []string
	fail := false
	e.a.sethostname = func(name string) error {
		if fail {
			return errors.New("operation not permitted")
		}
		set = append(set, name)
		return nil
	}
	old := map[string]string{"X-Access-Token": "old"}
	resp, body := e.httpDo(t, "POST", "/init", []byte(`{"hostname":"child1","accessToken":"new","envVars":{"K":"v"}}`), old)
	if resp.StatusCode != 204 {
		t.Fatalf("/init: %d %s", resp.StatusCode, body)
	}
	if len(set) != 1 || set[0] != "child1" || e.a.settings.hostnameValue() != "child1" || e.a.settings.accessToken() != "new" {
		t.Fatalf("after /init: sethostname %v, hostname %q, token %q", set, e.a.settings.hostnameValue(), e.a.settings.accessToken())
	}
	fail = true
	resp, body = e.httpDo(t, "POST", "/init", []byte(`{"hostname":"child2","accessToken":"newer"}`), map[string]string{"X-Access-Token": "new"})
	if resp.StatusCode != 500 || !strings.Contains(string(body), "operation not permitted") {
		t.Fatalf("/init with a failing sethostname: %d %s", resp.StatusCode, body)
	}
	if e.a.settings.hostnameValue() != "child1" || e.a.settings.accessToken() != "new" {
		t.Fatalf("a failed /init changed settings: hostname %q token %q", e.a.settings.hostnameValue(), e.a.settings.accessToken())
	}
	for _, name := range []string{"", strings.Repeat("a", 65), "-x", "a_b"} {
		if validHostname(name) {
			t.Errorf("validHostname(%q) = true", name)
		}
	}
}

func TestAccessToken(t *testing.T) {
	const token = "secret-token"
	e := newTestEnv(t, Config{AccessToken: token})
	ok := map[string]string{"X-Access-Token": token}
	bad := map[string]string{"X-Access-Token": "wrong"}
	unary := func(h map[string]string) map[string]string {
		out := map[string]string{"Content-Type": "application/json"}
		for k, v := range h {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
	}{
		{"health is open", "GET", "/health", "", nil, 204},
		{"init without token", "POST", "/init", `{"accessToken":"taken-over"}`, nil, 401},
		{"init with wrong token", "POST", "/init", `{"accessToken":"taken-over"}`, bad, 401},
		{"init with token", "POST", "/init", `{"accessToken":"` + token + `"}`, ok, 204},
		{"envs without token", "GET", "/envs", "", nil, 401},
		{"envs with wrong token", "GET", "/envs", "", bad, 401},
		{"envs with token", "GET", "/envs", "", ok, 200},
		{"metrics without token", "GET", "/metrics", "", nil, 401},
		{"rpc without token", "POST", "/process.Process/List", "{}", unary(nil), 401},
		{"rpc with wrong token", "POST", "/filesystem.Filesystem/Stat", `{"path":"/"}`, unary(bad), 401},
		{"rpc with token", "POST", "/process.Process/List", "{}", unary(ok), 200},
		{"files without token or signature", "GET", "/files?path=/etc/hostname", "", nil, 401},
		{"files with token", "GET", "/files?path=/etc/hostname", "", ok, 200},
		{"unknown route without token", "GET", "/nope", "", nil, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.httpDo(t, tc.method, tc.path, []byte(tc.body), tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status == 401 {
				if eb := decodeError(t, body); eb.Code != 401 {
					t.Fatalf("401 body %s", body)
				}
			}
		})
	}
}

// TestConnectWire checks the bytes the JS SDK depends on (Connect protocol, JSON).
func TestConnectWire(t *testing.T) {
	e := newTestEnv(t, Config{})
	t.Run("unary error is JSON with a string code", func(t *testing.T) {
		resp, body := e.httpDo(t, "POST", "/filesystem.Filesystem/Stat", []byte(`{"path":"/no/such/path"}`),
			map[string]string{"Content-Type": "application/json", "Connect-Protocol-Version": "1"})
		var got struct{ Code, Message string }
		if resp.StatusCode != 404 || json.Unmarshal(body, &got) != nil || got.Code != "not_found" ||
			got.Message != "path '/no/such/path' does not exist" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("status %d body %s", resp.StatusCode, body)
		}
	})
	t.Run("unary already_exists", func(t *testing.T) {
		resp, body := e.httpDo(t, "POST", "/filesystem.Filesystem/MakeDir", []byte(`{"path":"`+e.dir+`"}`),
			map[string]string{"Content-Type": "application/json"})
		if resp.StatusCode != 409 || !strings.Contains(string(body), `"code":"already_exists"`) {
			t.Fatalf("status %d body %s", resp.StatusCode, body)
		}
	})
	t.Run("server stream frames", func(t *testing.T) {
		payload := []byte(`{"process":{"cmd":"/bin/bash","args":["-l","-c","echo hi; exit 2"]},"stdin":false}`)
		var env bytes.Buffer
		env.WriteByte(0)
		_ = binary.Write(&env, binary.BigEndian, uint32(len(payload)))
		env.Write(payload)
		req, _ := http.NewRequest("POST", e.url+"/process.Process/Start", &env)
		req.Header.Set("Content-Type", "application/connect+json")
		req.Header.Set("Connect-Protocol-Version", "1")
		req.Header.Set("Keepalive-Ping-Interval", "50")
		req.Header.Set("Connect-Timeout-Ms", "60000")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/connect+json" {
			t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var frames []string
		var flags []byte
		for {
			var hdr [5]byte
			if _, err := io.ReadFull(resp.Body, hdr[:]); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
			if _, err := io.ReadFull(resp.Body, buf); err != nil {
				t.Fatal(err)
			}
			flags = append(flags, hdr[0])
			frames = append(frames, string(bytes.ReplaceAll(buf, []byte(" "), nil)))
		}
		n := len(frames)
		if n < 3 || !strings.HasPrefix(frames[0], `{"event":{"start":{"pid":`) ||
			frames[n-2] != `{"event":{"end":{"exitCode":2,"exited":true,"status":"exitstatus2","error":"exitstatus2"}}}` ||
			frames[n-1] != `{}` || flags[n-1] != 2 || bytes.Count(flags, []byte{2}) != 1 {
			t.Fatalf("frames %q flags %v", frames, flags)
		}
		if !strings.Contains(strings.Join(frames, ""), `{"event":{"data":{"stdout":"aGkK"}}}`) {
			t.Fatalf("no stdout frame in %q", frames)
		}
	})
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name, in string
		want     Config
		wantErr  bool
	}{
		{name: "empty", in: "", want: Config{Listen: ":49983"}},
		{name: "full", in: `{"listen":"127.0.0.1:1","access_token":"t","env":{"A":"b"},"default_user":"root","default_workdir":"/w","hostname":"h","future":1}`,
			want: Config{Listen: "127.0.0.1:1", AccessToken: "t", Env: map[string]string{"A": "b"}, DefaultUser: "root", DefaultWorkdir: "/w", Hostname: "h"}},
		{name: "not json", in: "listen=:1", wantErr: true},
		{name: "bad listen", in: `{"listen":"49983"}`, wantErr: true},
		{name: "relative workdir", in: `{"default_workdir":"w"}`, wantErr: true},
		{name: "bad env key", in: `{"env":{"A=B":"c"}}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && (got.Listen != tc.want.Listen || got.AccessToken != tc.want.AccessToken || got.DefaultUser != tc.want.DefaultUser ||
				got.DefaultWorkdir != tc.want.DefaultWorkdir || got.Hostname != tc.want.Hostname || len(got.Env) != len(tc.want.Env)) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
