package server

import (
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
