package server

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/sandbox"
	"github.com/warren-sh/warren/internal/template"
)

func TestParseFlagsAptMirror(t *testing.T) {
	defer template.SetMirror("")
	for _, tc := range []struct {
		arg     string
		wantErr string
		mirror  string
	}{
		{"--apt-mirror=http://local:3142/debian/", "", "http://local:3142/debian"},
		{"--apt-mirror=file:///srv/debian", "", "file:///srv/debian"},
		{"--apt-mirror=ftp://old/debian", "use an http://, https:// or file:/// URL", ""},
		{"--apt-mirror=deb.debian.org", "use an http://", ""},
	} {
		_, err := ParseFlags([]string{tc.arg})
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one saying %q", tc.arg, err, tc.wantErr)
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.arg, err)
		case tc.wantErr == "" && template.Base().Mirror != tc.mirror:
			t.Errorf("%s: base template mirror %q, want %q", tc.arg, template.Base().Mirror, tc.mirror)
		}
	}
}

func TestParseRuntimes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  string
		want []string
		err  string
	}{
		{"none: only the default", nil, "", nil, ""},
		{"flag", []string{"--runtimes", "gvisor,runc"}, "", []string{"gvisor", "runc"}, ""},
		{"env, spaces, case and repeats", nil, " gVisor , runc,gvisor,", []string{"gvisor", "runc"}, ""},
		{"flag wins", []string{"--runtimes=gvisor"}, "gvisor,runc", []string{"gvisor"}, ""},
		{"unknown", []string{"--runtimes", "gvisor,kata"}, "", nil, `--runtimes names "kata"`},
		{"explicit default not listed", []string{"--runtime", "gvisor", "--runtimes", "runc"}, "", nil, "--runtime gvisor is not among --runtimes runc"},
		{"explicit default listed", []string{"--runtime", "runc", "--runtimes", "gvisor,runc"}, "", []string{"gvisor", "runc"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WARREN_RUNTIMES", tc.env)
			c, err := ParseFlags(tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(c.Runtimes, tc.want) {
				t.Fatalf("Runtimes = %q, %v; want %q", c.Runtimes, err, tc.want)
			}
		})
	}
}

func TestParseWarmPool(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want []sandbox.PoolSize
		err  string
	}{
		{"none", nil, "", nil, ""},
		{"flag", []string{"--warm-pool", "base=4,code-interpreter=2"}, "", []sandbox.PoolSize{{TemplateID: "base", Size: 4}, {TemplateID: "code-interpreter", Size: 2}}, ""},
		{"env", nil, "base=2", []sandbox.PoolSize{{TemplateID: "base", Size: 2}}, ""},
		{"flag wins", []string{"--warm-pool=base=1"}, "base=2", []sandbox.PoolSize{{TemplateID: "base", Size: 1}}, ""},
		{"unknown template", []string{"--warm-pool", "python=2"}, "", nil, `--warm-pool: warm pool: template "python" does not exist; templates: base, code-interpreter`},
		{"bad syntax", nil, "base:2", nil, "--warm-pool: warm pool \"base:2\": write TEMPLATE=SIZE pairs"},
		{"bad size", []string{"--warm-pool", "base=lots"}, "", nil, "the size must be a whole number from 0 to 64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WARREN_WARM_POOL", tc.env)
			c, err := ParseFlags(tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(c.WarmPool, tc.want) {
				t.Errorf("warm pool %v, %v; want %v", c.WarmPool, err, tc.want)
			}
		})
	}
}

func TestParseMetricsFlags(t *testing.T) {
	for _, tc := range []struct {
		env     *string
		args    []string
		listen  string
		team    bool
		wantErr string
	}{
		{args: nil, listen: "127.0.0.1:9464"},
		{args: []string{"--metrics-listen", ""}, listen: ""},
		{args: []string{"--metrics-listen=0.0.0.0:9100", "--metrics-team-labels"}, listen: "0.0.0.0:9100", team: true},
		{env: ptr(""), listen: ""},
		{env: ptr("127.0.0.1:9999"), listen: "127.0.0.1:9999"},
		{env: ptr("127.0.0.1:9999"), args: []string{"--metrics-listen=:1"}, listen: ":1"},
		{args: []string{"--metrics-listen=9464"}, wantErr: "want host:port"},
	} {
		if tc.env != nil {
			t.Setenv("WARREN_METRICS_LISTEN", *tc.env)
		}
		c, err := ParseFlags(tc.args)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want one saying %q", tc.args, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case c.MetricsListen != tc.listen || c.MetricsTeamLabels != tc.team:
			t.Errorf("%q (env %v): listen %q team %v, want %q %v", tc.args, tc.env, c.MetricsListen, c.MetricsTeamLabels, tc.listen, tc.team)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestParseFlagsRegistryMirrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want []string
		err  string
	}{
		{"none", nil, "", nil, ""},
		{"env", nil, "mirror.local:5000, http://10.0.0.5:5000", []string{"mirror.local:5000", "http://10.0.0.5:5000"}, ""},
		{"repeated flag replaces env", []string{"--registry-mirror", "a.local", "--registry-mirror=https://b.local,c.local"}, "env.local", []string{"a.local", "https://b.local", "c.local"}, ""},
		{"bad flag", []string{"--registry-mirror", "a.local/path"}, "", nil, "without a path"},
		{"bad env", nil, "not a host", nil, "WARREN_REGISTRY_MIRRORS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WARREN_REGISTRY_MIRRORS", tc.env)
			c, err := ParseFlags(tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.RegistryMirrors, tc.want) {
				t.Errorf("mirrors %q, want %q", c.RegistryMirrors, tc.want)
			}
			if p := NewImagePuller(c, nil, nil); !slices.Equal(p.Mirrors, tc.want) || p.CacheDir != DefaultImageCache {
				t.Errorf("puller mirrors %q cache %s", p.Mirrors, p.CacheDir)
			}
		})
	}
}

func TestParseLayerCacheFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		envKeep   string
		wantKeep  time.Duration
		wantBytes int64
		err       string
	}{
		{"defaults", nil, "", 14 * 24 * time.Hour, 0, ""},
		{"image keep", []string{"--image-cache-keep", "-1h"}, "", 0, 0, "must not be negative"},
		{"flags", []string{"--layer-cache-keep", "72h", "--layer-cache-max-gb", "1.5"}, "", 72 * time.Hour, 3 << 29, ""},
		{"env, and 0 keeps for ever", nil, "0", 0, 0, ""},
		{"bad env", nil, "a week", 0, 0, "WARREN_LAYER_CACHE_KEEP"},
		{"negative", []string{"--layer-cache-max-gb", "-1"}, "", 0, 0, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WARREN_LAYER_CACHE_KEEP", tc.envKeep)
			c, err := ParseFlags(tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil || c.LayerCacheKeep != tc.wantKeep || c.LayerCacheMaxBytes != tc.wantBytes {
				t.Errorf("keep %s, max %d, err %v; want %s, %d", c.LayerCacheKeep, c.LayerCacheMaxBytes, err, tc.wantKeep, tc.wantBytes)
			}
		})
	}
}

func TestParsePublicURL(t *testing.T) {
	for _, tc := range []struct{ arg, err string }{
		{"https://api.example.com", ""},
		{"http://10.0.0.5:3000/", ""},
		{"api.example.com", "give an http:// or https:// URL"},
		{"ftp://api.example.com", "give an http://"},
		{"https://api.example.com/?x=1", "no query"},
		{"https://user:pw@api.example.com", "give an http://"},
	} {
		c, err := ParseFlags([]string{"--public-url", tc.arg})
		switch {
		case tc.err == "" && (err != nil || c.PublicURL != tc.arg):
			t.Errorf("%s: %v, PublicURL %q", tc.arg, err, c.PublicURL)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one saying %q", tc.arg, err, tc.err)
		}
	}
}

func TestParseFlagsNode(t *testing.T) {
	host, _ := os.Hostname()
	for _, tc := range []struct {
		name                 string
		args, env            []string
		node, advertise, err string
		timeout              time.Duration
	}{
		{name: "defaults", node: host, advertise: "127.0.0.1:3000", timeout: 15 * time.Second},
		{name: "advertise follows listen", args: []string{"--listen", "0.0.0.0:4000"}, node: host, advertise: "0.0.0.0:4000", timeout: 15 * time.Second},
		{name: "flags", args: []string{"--node-name", "n7", "--advertise", "10.0.0.7:3000", "--node-timeout", "30s"},
			node: "n7", advertise: "10.0.0.7:3000", timeout: 30 * time.Second},
		{name: "env", env: []string{"WARREN_NODE_NAME=n8", "WARREN_ADVERTISE=10.0.0.8:3000", "WARREN_NODE_TIMEOUT=20s"},
			node: "n8", advertise: "10.0.0.8:3000", timeout: 20 * time.Second},
		{name: "name with a space", args: []string{"--node-name", "a b"}, err: "--node-name"},
		{name: "empty name", args: []string{"--node-name", " "}, err: "--node-name"},
		{name: "advertise without a port", args: []string{"--advertise", "10.0.0.7"}, err: "--advertise"},
		{name: "timeout too short", args: []string{"--node-timeout", "1s"}, err: "--node-timeout 1s is too short"},
		{name: "bad env timeout", env: []string{"WARREN_NODE_TIMEOUT=soon"}, err: "WARREN_NODE_TIMEOUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"WARREN_LISTEN", "WARREN_NODE_NAME", "WARREN_ADVERTISE", "WARREN_NODE_TIMEOUT"} {
				t.Setenv(k, "") // the environment of the test run must not leak in
			}
			for _, kv := range tc.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			c, err := ParseFlags(tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.NodeName != tc.node || c.Advertise != tc.advertise || c.NodeTimeout != tc.timeout {
				t.Errorf("node %q advertise %q timeout %s; want %q %q %s", c.NodeName, c.Advertise, c.NodeTimeout, tc.node, tc.advertise, tc.timeout)
			}
		})
	}
}

func TestParseFlagsRole(t *testing.T) {
	sec := strings.Repeat("s", 40)
	file := t.TempDir() + "/secret"
	if err := os.WriteFile(file, []byte(sec+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pg := "--database-url=postgres://u:p@db:5432/warren"
	for _, tc := range []struct {
		name      string
		args      []string
		envSecret string
		err       string
		role      string
		internal  string
		advertise string
	}{
		{"the default: one host, no cluster", nil, "", "", RoleAll, "", "127.0.0.1:3000"},
		{"an unknown role", []string{"--role=worker"}, "", "use all (one host), control or node", "", "", ""},
		{"a control needs the secret", []string{"--role=control", pg}, "", "at least 32 characters", "", "", ""},
		{"a short secret", []string{"--role=node", pg}, "short", "openssl rand", "", "", ""},
		{"a control needs PostgreSQL", []string{"--role=control"}, sec, "postgres:// URL", "", "", ""},
		{"a control", []string{"--role=control", pg}, sec, "", RoleControl, "", "127.0.0.1:3000"},
		{"a node listens for the controls by default", []string{"--role=node", pg}, sec, "", RoleNode, "127.0.0.1:3100", "127.0.0.1:3100"},
		{"a node's secret from a file, advertised elsewhere", []string{"--role=node", pg, "--cluster-secret-file=" + file,
			"--internal-listen=0.0.0.0:3100", "--advertise=10.0.0.5:3100"}, "", "", RoleNode, "0.0.0.0:3100", "10.0.0.5:3100"},
		{"the secret twice", []string{"--role=node", pg, "--cluster-secret-file=" + file}, sec, "given twice (WARREN_CLUSTER_SECRET and --cluster-secret-file)", "", "", ""},
		{"a missing secret file", []string{"--role=node", pg, "--cluster-secret-file=/nonexistent/x"}, "", "--cluster-secret-file", "", "", ""},
		{"a bad internal address", []string{"--role=node", pg, "--internal-listen=3100"}, sec, "want host:port", "", "", ""},
		{"an internal listener needs the secret", []string{"--internal-listen=127.0.0.1:3100"}, "", "needs the cluster secret", "", "", ""},
		{"one host of a cluster needs an internal listener", nil, sec, "give --internal-listen", "", "", ""},
		{"one host of a cluster", []string{"--internal-listen=127.0.0.1:3100"}, sec, "", RoleAll, "127.0.0.1:3100", "127.0.0.1:3100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WARREN_CLUSTER_SECRET", tc.envSecret)
			c, err := ParseFlags(tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Role != tc.role || c.InternalListen != tc.internal || c.Advertise != tc.advertise {
				t.Errorf("role %q internal %q advertise %q, want %q %q %q", c.Role, c.InternalListen, c.Advertise, tc.role, tc.internal, tc.advertise)
			}
			if tc.envSecret == "" && strings.Contains(strings.Join(tc.args, " "), "secret-file") && c.ClusterSecret != sec {
				t.Errorf("the secret from the file: %q", c.ClusterSecret)
			}
		})
	}
}
