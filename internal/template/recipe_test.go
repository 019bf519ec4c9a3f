package template

import (
	"reflect"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

// Golden hashes: if one changes, every host rebuilds that template. Update them only on
// purpose (a changed Base recipe, or a bumped hashFormat).
func TestHashGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Recipe
		want string
	}{
		{"base", Base(), "c7d322ea141f51e2"},
		{"tiny", Recipe{Name: "tiny", Suite: "bookworm", Packages: []string{"b", "a"}}, "ff71bc127746eb29"},
		{"no packages", Recipe{Name: "tiny", Suite: "bookworm"}, "a410ecc31aeb220c"},
		// Empty new fields leave the hash alone, so existing cache entries stay valid.
		{"empty new fields", Recipe{Name: "tiny", Suite: "bookworm", AptPackages: []string{}, Files: map[string]string{}}, "a410ecc31aeb220c"},
		{"files and start", Recipe{Name: "tiny", Suite: "bookworm", AptPackages: []string{"b", "a", "b"},
			Files: map[string]string{"/usr/local/bin/x": "#!/bin/sh\n", "/etc/y": "y"}, StartCmd: "/usr/local/bin/x"}, "f079e42105a4a96f"},
	} {
		if got := tc.r.Hash(); got != tc.want {
			t.Errorf("%s: Hash() = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestHashCanonical(t *testing.T) {
	a := Recipe{Name: "x", Suite: "bookworm", Packages: []string{"git", "curl", "git"}}
	b := Recipe{Name: "x", Suite: "bookworm", Mirror: DefaultMirror, Packages: []string{"curl", "git"}}
	if a.Hash() != b.Hash() {
		t.Error("package order, duplicates or the default mirror changed the hash")
	}
	if len(a.Hash()) != 16 || strings.Trim(a.Hash(), "0123456789abcdef") != "" {
		t.Errorf("hash %q is not 16 hex digits", a.Hash())
	}
	if a.Packages[0] != "git" {
		t.Error("Hash reordered the caller's slice")
	}
	if a.ID() != "x-"+a.Hash() {
		t.Errorf("ID() = %q", a.ID())
	}
}

// Every field takes part in the hash: changing any one of them changes it.
func TestHashCoversEveryField(t *testing.T) {
	base := Base()
	changes := map[string]func(*Recipe){
		"Name":     func(r *Recipe) { r.Name = "other" },
		"Suite":    func(r *Recipe) { r.Suite = "trixie" },
		"Variant":  func(r *Recipe) { r.Variant = "buildd" },
		"Mirror":   func(r *Recipe) { r.Mirror = "http://mirror.example/debian" },
		"Packages": func(r *Recipe) { r.Packages = append(r.Packages, "vim") },
		"AptPackages": func(r *Recipe) {
			r.AptPackages = append(r.AptPackages, "vim")
		},
		"Files": func(r *Recipe) {
			r.Files = map[string]string{"/etc/motd": "hello\n"}
		},
		"Script":   func(r *Recipe) { r.Script += "\ntrue\n" },
		"StartCmd": func(r *Recipe) { r.StartCmd = "/usr/local/bin/server" },
		"Version":  func(r *Recipe) { r.Version++ },
	}
	if n := reflect.TypeOf(Recipe{}).NumField(); n != len(changes) {
		t.Fatalf("Recipe has %d fields but the test changes %d: cover the new field", n, len(changes))
	}
	seen := map[string]string{base.Hash(): "original"}
	for field, change := range changes {
		r := Base()
		r.Packages = append([]string(nil), r.Packages...)
		change(&r)
		h := r.Hash()
		if prev, dup := seen[h]; dup {
			t.Errorf("changing %s gives the same hash as %s", field, prev)
		}
		seen[h] = field
	}
}

func TestValidate(t *testing.T) {
	if err := Base().Validate(); err != nil {
		t.Fatalf("Base() invalid: %v", err)
	}
	for _, tc := range []struct {
		field  string
		change func(*Recipe)
	}{
		{"name", func(r *Recipe) { r.Name = "" }},
		{"name", func(r *Recipe) { r.Name = "../etc" }},
		{"suite", func(r *Recipe) { r.Suite = "" }},
		{"variant", func(r *Recipe) { r.Variant = "--foo" }},
		{"mirror", func(r *Recipe) { r.Mirror = "ftp://x" }},
		{"packages", func(r *Recipe) { r.Packages = []string{"a,b"} }},
		{"packages", func(r *Recipe) { r.Packages = []string{"-x"} }},
		{"apt_packages", func(r *Recipe) { r.AptPackages = []string{"a b"} }},
		{"files", func(r *Recipe) { r.Files = map[string]string{"etc/x": ""} }},
		{"files", func(r *Recipe) { r.Files = map[string]string{"/etc/../x": ""} }},
		{"files", func(r *Recipe) { r.Files = map[string]string{"/": ""} }},
		{"start_cmd", func(r *Recipe) { r.StartCmd = "server --port 1" }},
	} {
		r := Base()
		tc.change(&r)
		err := r.Validate()
		if !domain.IsKind(err, domain.KindInvalid) || domain.FieldOf(err) != tc.field {
			t.Errorf("%+v: Validate() = %v, want invalid %s", r, err, tc.field)
		}
	}
}

func TestBaseRecipe(t *testing.T) {
	r := Base()
	if r.Name != "base" || r.Suite != "bookworm" || r.Variant != "minbase" {
		t.Errorf("Base() = %+v", r)
	}
	for _, p := range []string{"bash", "coreutils", "python3", "curl", "git", "ca-certificates", "procps"} {
		if !strings.Contains(","+strings.Join(r.Packages, ",")+",", ","+p+",") {
			t.Errorf("Base() lacks package %s", p)
		}
	}
	for _, s := range []string{"--uid 1000", "/home/user", "/bin/bash", ": >/etc/resolv.conf", "/.warren", "/var/lib/apt/lists/*"} {
		if !strings.Contains(r.Script, s) {
			t.Errorf("base script lacks %q", s)
		}
	}
}

// The content of files, not just their paths, takes part in the hash; the order of map
// insertion does not.
func TestHashFilesAndStartCmd(t *testing.T) {
	mk := func(files map[string]string, start string) Recipe {
		return Recipe{Name: "x", Suite: "bookworm", Files: files, StartCmd: start}
	}
	a := mk(map[string]string{"/a": "1", "/b": "2"}, "")
	b := mk(map[string]string{"/b": "2", "/a": "1"}, "")
	if a.Hash() != b.Hash() {
		t.Error("equal Files maps hash differently")
	}
	for name, r := range map[string]Recipe{
		"content":   mk(map[string]string{"/a": "1", "/b": "3"}, ""),
		"path":      mk(map[string]string{"/a": "1", "/c": "2"}, ""),
		"start cmd": mk(map[string]string{"/a": "1", "/b": "2"}, "/a"),
		"no files":  mk(nil, ""),
	} {
		if r.Hash() == a.Hash() {
			t.Errorf("changing the %s keeps the hash", name)
		}
	}
	if mk(nil, "").Hash() != mk(map[string]string{}, "").Hash() {
		t.Error("nil and empty Files hash differently")
	}
}
