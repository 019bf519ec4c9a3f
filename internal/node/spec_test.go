package node

import (
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

// TestSpecOfTemplateDefaults: a built template's USER (by name) and WORKDIR become the
// agent's defaults; a uid or user:group keeps "user" (the agent looks users up by name).
func TestSpecOfTemplateDefaults(t *testing.T) {
	sb := &domain.Sandbox{ID: "sb", AccessToken: "t"}
	for _, tc := range []struct {
		tpl               domain.Template
		wantUser, wantDir string
	}{
		{domain.Template{}, "user", ""},
		{domain.Template{User: "app", Workdir: "/srv"}, "app", "/srv"},
		{domain.Template{User: "1000"}, "user", ""},
		{domain.Template{User: "app:app"}, "user", ""},
		{domain.Template{User: "root", Workdir: "/"}, "root", "/"},
	} {
		a := specOf(sb, &tc.tpl).Agent
		if a.DefaultUser != tc.wantUser || a.DefaultWorkdir != tc.wantDir {
			t.Errorf("template user %q workdir %q: agent defaults %q, %q; want %q, %q", tc.tpl.User, tc.tpl.Workdir,
				a.DefaultUser, a.DefaultWorkdir, tc.wantUser, tc.wantDir)
		}
	}
}
