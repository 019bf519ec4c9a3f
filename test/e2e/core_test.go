package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSandboxLifecycle(t *testing.T) {
	s := startServer(t, serverOpts{})
	sb := s.Create(map[string]any{"template": "base", "metadata": map[string]string{"suite": "lifecycle"}, "env": map[string]string{"GREETING": "hej"}})
	if sb.State != "running" || sb.Template != "base" {
		t.Fatalf("created sandbox: %+v", sb)
	}

	t.Run("exec", func(t *testing.T) {
		cases := []struct {
			cmd, stdout string
			code        int
		}{
			{"python3 -c 'print(6*7)'", "42\n", 0},
			{"echo $GREETING", "hej\n", 0},
			{"id -un; pwd", "user\n/home/user\n", 0},
			{"exit 3", "", 3},
			{"echo out; echo err >&2", "out\n", 0},
		}
		for _, c := range cases {
			r := s.Exec(sb.ID, c.cmd)
			if r.ExitCode != c.code || r.Stdout != c.stdout {
				t.Errorf("%q: got exit %d stdout %q stderr %q, want exit %d stdout %q", c.cmd, r.ExitCode, r.Stdout, r.Stderr, c.code, c.stdout)
			}
		}
		var r execJSON
		s.API("POST", "/v1/sandboxes/"+sb.ID+"/commands", map[string]any{"args": []string{"id", "-u"}, "user": "root"}, &r)
		if r.Stdout != "0\n" {
			t.Errorf("exec as root: %+v", r)
		}
		s.API("POST", "/v1/sandboxes/"+sb.ID+"/commands", map[string]any{"cmd": "tr a-z A-Z", "stdin": "hello stdin"}, &r)
		if r.Stdout != "HELLO STDIN" {
			t.Errorf("stdin: %+v", r)
		}
		s.API("POST", "/v1/sandboxes/"+sb.ID+"/commands", map[string]any{"cmd": "pwd; echo $X", "cwd": "/tmp", "env": map[string]string{"X": "y"}}, &r)
		if r.Stdout != "/tmp\ny\n" {
			t.Errorf("cwd/env: %+v", r)
		}
	})

	t.Run("exec streams", func(t *testing.T) {
		body, _ := json.Marshal(map[string]any{"cmd": "for i in 1 2 3; do echo line$i; sleep 0.4; done; exit 5", "stream": true})
		req, _ := http.NewRequest("POST", s.URL+"/v1/sandboxes/"+sb.ID+"/commands", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.Key)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("content type %q", ct)
		}
		type ev struct {
			name string
			data map[string]any
			at   time.Duration
		}
		var evs []ev
		sc := bufio.NewScanner(resp.Body)
		var name string
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				name = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				var d map[string]any
				json.Unmarshal([]byte(v), &d)
				evs = append(evs, ev{name, d, time.Since(start)})
			}
		}
		var out []string
		var firstOut, end time.Duration
		for _, e := range evs {
			switch e.name {
			case "stdout":
				b, _ := base64.StdEncoding.DecodeString(e.data["data"].(string))
				out = append(out, string(b))
				if firstOut == 0 {
					firstOut = e.at
				}
			case "end":
				end = e.at
				if code := e.data["exit_code"].(float64); code != 5 {
					t.Errorf("end exit code %v", code)
				}
			}
		}
		if strings.Join(out, "") != "line1\nline2\nline3\n" {
			t.Errorf("streamed stdout %q", out)
		}
		if evs[0].name != "start" || evs[len(evs)-1].name != "end" {
			t.Errorf("event order: first %q last %q", evs[0].name, evs[len(evs)-1].name)
		}
		// The first line must arrive while the command still runs (it sleeps 1.2 s in all).
		if end-firstOut < 600*time.Millisecond {
			t.Errorf("output was not streamed: first stdout at %v, end at %v", firstOut, end)
		}
	})

	t.Run("files", func(t *testing.T) {
		content := bytes.Repeat([]byte("warren\x00\xff"), 1000)
		req, _ := http.NewRequest("PUT", s.URL+"/v1/sandboxes/"+sb.ID+"/files/content?path=/home/user/dir/a.bin", bytes.NewReader(content))
		req.Header.Set("Authorization", "Bearer "+s.Key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("upload: %d %s", resp.StatusCode, b)
		}
		req, _ = http.NewRequest("GET", s.URL+"/v1/sandboxes/"+sb.ID+"/files/content?path=/home/user/dir/a.bin", nil)
		req.Header.Set("Authorization", "Bearer "+s.Key)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(got, content) {
			t.Fatalf("download differs: %d bytes, want %d", len(got), len(content))
		}
		var list struct {
			Entries []struct {
				Name, Path, Type, Owner string
				Size                    int64
			} `json:"entries"`
		}
		code, raw := s.API("GET", "/v1/sandboxes/"+sb.ID+"/files?path=/home/user/dir", nil, &list)
		if code != 200 || len(list.Entries) != 1 || list.Entries[0].Name != "a.bin" || list.Entries[0].Size != int64(len(content)) || list.Entries[0].Owner != "user" {
			t.Fatalf("list: %d %s", code, raw)
		}
		if r := s.Exec(sb.ID, "sha256sum /home/user/dir/a.bin | cut -c1-8; stat -c %U /home/user/dir"); !strings.HasSuffix(r.Stdout, "user\n") {
			t.Errorf("uploaded file as seen in the sandbox: %+v", r)
		}
		if code, raw := s.API("GET", "/v1/sandboxes/"+sb.ID+"/files/content?path=/nope", nil, nil); code != 404 || !bytes.Contains(raw, []byte(`"code"`)) {
			t.Errorf("missing file: %d %s", code, raw)
		}
	})

	t.Run("list and get", func(t *testing.T) {
		var l struct {
			Sandboxes []sandboxJSON `json:"sandboxes"`
		}
		s.API("GET", "/v1/sandboxes?metadata.suite=lifecycle&state=running", nil, &l)
		if len(l.Sandboxes) != 1 || l.Sandboxes[0].ID != sb.ID {
			t.Errorf("list by metadata: %+v", l)
		}
		s.API("GET", "/v1/sandboxes?metadata.suite=other", nil, &l)
		if len(l.Sandboxes) != 0 {
			t.Errorf("list by other metadata: %+v", l)
		}
	})

	t.Run("errors", func(t *testing.T) {
		cases := []struct {
			method, path, key string
			body              any
			code              int
			mention           string
		}{
			{"GET", "/v1/sandboxes/" + sb.ID, "", nil, 401, "API key"},
			{"GET", "/v1/sandboxes/" + sb.ID, "sk_wrong", nil, 401, ""},
			{"GET", "/v1/sandboxes/aaaaaaaaaaaaaaaaaaaa", s.Key, nil, 404, ""},
			{"GET", "/v1/sandboxes/../../etc", s.Key, nil, 404, ""},
			{"POST", "/v1/sandboxes", s.Key, map[string]any{"template": "nope"}, 400, "template"},
			{"POST", "/v1/sandboxes", s.Key, map[string]any{"timeout": "long"}, 400, "timeout"},
			{"POST", "/v1/sandboxes", s.Key, map[string]any{"limits": map[string]any{"memory_mb": 1 << 30}}, 400, "memory_mb"},
			{"POST", "/v1/sandboxes", s.Key, map[string]any{"limits": map[string]any{"cpu_cores": 512}}, 400, "cpu_cores"},
			{"POST", "/v1/sandboxes", s.Key, map[string]any{"bogus": 1}, 400, "bogus"},
			{"POST", "/v1/sandboxes/" + sb.ID + "/commands", s.Key, map[string]any{}, 400, "cmd"},
			{"POST", "/v1/sandboxes/" + sb.ID + "/commands", s.Key, map[string]any{"cmd": "true", "user": "mallory"}, 400, "user"},
		}
		for _, c := range cases {
			code, raw := s.APIKey(c.key, c.method, c.path, c.body, nil)
			// A path with ".." is cleaned and redirected out of /v1 (here to /etc, which
			// is not a page of the console either): a 404, but not the API's JSON.
			apiBody := !strings.Contains(c.path, "..")
			if code != c.code || apiBody && !bytes.Contains(raw, []byte(`"request_id"`)) || !strings.Contains(string(raw), c.mention) {
				t.Errorf("%s %s %v: got %d %s, want %d mentioning %q", c.method, c.path, c.body, code, raw, c.code, c.mention)
			}
		}
	})

	t.Run("kill", func(t *testing.T) {
		s.Kill(sb.ID)
		var got sandboxJSON
		s.API("GET", "/v1/sandboxes/"+sb.ID, nil, &got)
		if got.State != "stopped" || got.EndReason != "killed" {
			t.Errorf("after kill: %+v", got)
		}
		if code, raw := s.API("POST", "/v1/sandboxes/"+sb.ID+"/commands", map[string]any{"cmd": "true"}, nil); code != 409 {
			t.Errorf("exec in killed sandbox: %d %s", code, raw)
		}
		if code, _ := s.API("DELETE", "/v1/sandboxes/"+sb.ID, nil, nil); code != 404 {
			t.Errorf("second kill: %d, want 404", code)
		}
	})
}

func TestTimeoutExpiry(t *testing.T) {
	s := startServer(t, serverOpts{})
	sb := s.Create(map[string]any{"timeout": 2})
	ext := s.Create(map[string]any{"timeout": 2})
	var got sandboxJSON
	if code, raw := s.API("POST", "/v1/sandboxes/"+ext.ID+"/timeout", map[string]any{"timeout": 60}, &got); code != 200 || time.Until(got.EndsAt) < 50*time.Second {
		t.Fatalf("set timeout: %d %s", code, raw)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		s.API("GET", "/v1/sandboxes/"+sb.ID, nil, &got)
		if got.State == "stopped" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandbox still %s 15 s after a 2 s timeout", got.State)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got.EndReason != "timeout" {
		t.Errorf("end reason %q, want timeout", got.EndReason)
	}
	if r := s.Exec(ext.ID, "echo still here"); r.Stdout != "still here\n" {
		t.Errorf("extended sandbox: %+v", r)
	}
	s.Kill(ext.ID)
}
