package server

import (
	"slices"
	"strings"
	"testing"

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
