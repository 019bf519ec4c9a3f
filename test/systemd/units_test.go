// Package systemd checks the units in deploy/systemd against the warren they run: every
// flag in an ExecStart and every WARREN_* variable in an env file must be one
// `warren serve -h` lists, so the units stay true as flags change; and systemd's own
// `systemd-analyze verify` must accept each unit.
package systemd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/testenv"
)

const unitDir = "../../deploy/systemd"

// unit is a parsed unit file: its directives by section, in order.
type unit struct {
	path       string
	directives map[string][][2]string // section -> (key, value) pairs
}

func (u unit) get(section, key string) []string {
	var vs []string
	for _, kv := range u.directives[section] {
		if kv[0] == key {
			vs = append(vs, kv[1])
		}
	}
	return vs
}

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{path: path, directives: map[string][][2]string{}}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		case section == "":
			t.Errorf("%s:%d: a directive before any section: %q", path, n, line)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || strings.TrimSpace(k) == "" || strings.HasSuffix(line, "\\") {
				t.Errorf("%s:%d: not a Key=value line: %q", path, n, line)
				continue
			}
			u.directives[section] = append(u.directives[section], [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Unit", "Service", "Install"} {
		if len(u.directives[s]) == 0 {
			t.Errorf("%s has no [%s] section", path, s)
		}
	}
	return u
}

func units(t *testing.T) []unit {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(unitDir, "*.service"))
	if err != nil || len(paths) < 3 {
		t.Fatalf("want warren.service, warren-control.service and warren-node.service in %s, got %v (%v)", unitDir, paths, err)
	}
	var us []unit
	for _, p := range paths {
		us = append(us, parseUnit(t, p))
	}
	return us
}

// buildWarren builds cmd/warren (from the build cache when make test has built it).
func buildWarren(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "warren")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/warren")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building warren: %v\n%s", err, out)
	}
	return bin
}

// serveHelp is `warren serve -h`: its flags and the WARREN_* variables it names.
func serveHelp(t *testing.T, bin string) (flags, vars map[string]bool) {
	t.Helper()
	out, _ := exec.Command(bin, "serve", "-h").CombinedOutput() // -h exits non-zero
	flags, vars = map[string]bool{}, map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`\bWARREN_[A-Z0-9_]+`).FindAllString(string(out), -1) {
		vars[m] = true
	}
	if len(flags) < 20 || !flags["listen"] || !vars["WARREN_DATABASE_URL"] {
		t.Fatalf("warren serve -h listed %d flags; is this its help?\n%s", len(flags), out)
	}
	return flags, vars
}

var execFlag = regexp.MustCompile(`(?:^|\s)--?([a-z0-9][a-z0-9-]*)`)

// TestUnitsMatchWarren: every unit runs /usr/local/bin/warren serve with flags warren
// has, reads an env file that is in this folder, and every WARREN_* variable there is
// one warren reads.
func TestUnitsMatchWarren(t *testing.T) {
	flags, vars := serveHelp(t, buildWarren(t))
	for _, u := range units(t) {
		name := filepath.Base(u.path)
		exe := u.get("Service", "ExecStart")
		if len(exe) != 1 || !strings.HasPrefix(exe[0], "/usr/local/bin/warren serve") {
			t.Errorf("%s: ExecStart %v, want one /usr/local/bin/warren serve ...", name, exe)
			continue
		}
		for _, m := range execFlag.FindAllStringSubmatch(strings.TrimPrefix(exe[0], "/usr/local/bin/warren serve"), -1) {
			if !flags[m[1]] {
				t.Errorf("%s: ExecStart passes --%s, which warren serve -h does not list", name, m[1])
			}
		}
		envFiles := u.get("Service", "EnvironmentFile")
		if len(envFiles) != 1 {
			t.Errorf("%s: EnvironmentFile %v, want one", name, envFiles)
			continue
		}
		// /etc/default/warren-node is installed from warren-node.env.
		local := filepath.Join(unitDir, filepath.Base(strings.TrimPrefix(envFiles[0], "-"))+".env")
		checkEnvFile(t, local, vars)
	}
}

func checkEnvFile(t *testing.T, path string, vars map[string]bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("the unit's EnvironmentFile comes from %s: %v", path, err)
		return
	}
	n := 0
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(k, "WARREN_") {
			t.Errorf("%s:%d: want WARREN_NAME=value, got %q", path, i+1, line)
			continue
		}
		n++
		if !vars[k] {
			t.Errorf("%s:%d: %s is not a variable warren serve -h names", path, i+1, k)
		}
	}
	if n == 0 {
		t.Errorf("%s sets nothing", path)
	}
}

// TestSystemdVerify runs `systemd-analyze verify` on each unit, with its ExecStart's
// binary, EnvironmentFile and credential pointed at real files (verify checks that they
// exist), so an unknown directive or a bad value fails.
func TestSystemdVerify(t *testing.T) {
	analyze := testenv.NeedsTool(t, "systemd-analyze")
	bin := buildWarren(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "cluster-secret")
	if err := os.WriteFile(secret, []byte(strings.Repeat("s", 48)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range units(t) {
		data, err := os.ReadFile(u.path)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(u.path)
		env, _ := filepath.Abs(filepath.Join(unitDir, strings.TrimSuffix(name, ".service")+".env"))
		text := strings.NewReplacer(
			"/usr/local/bin/warren", bin,
			"/etc/default/"+strings.TrimSuffix(name, ".service"), env,
			"/etc/warren/cluster-secret", secret,
		).Replace(string(data))
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
	}
}
