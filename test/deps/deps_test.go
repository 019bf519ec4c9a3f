// Package deps checks that every program the code and the test suites run is installed by
// scripts/install-deps.sh, so a fresh machine (CI's) has everything a suite execs. It
// exists because runc was once exec'd by the suites but installed only by hand on the
// machines where they passed.
package deps

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// packageOf names the Debian package that provides each program the tree runs. A program
// found in the tree but missing here fails the test: add it here and its package to
// scripts/install-deps.sh.
var packageOf = map[string]string{
	"runc":             "runc",
	"ip":               "iproute2",
	"nft":              "nftables",
	"unshare":          "util-linux",
	"losetup":          "mount",
	"umount":           "mount",
	"mount":            "mount",
	"mkfs.ext4":        "e2fsprogs",
	"debootstrap":      "debootstrap",
	"ping":             "iputils-ping",
	"ldd":              "libc-bin",
	"cp":               "coreutils",
	"true":             "coreutils",
	"sleep":            "coreutils",
	"python3":          "python3|python3-minimal",
	"chroot":           "coreutils",
	"dpkg":             "dpkg",
	"node":             "nodejs",
	"npm":              "npm|nodejs", // NodeSource's nodejs ships npm itself
	"pg_lsclusters":    "postgresql-common",
	"pg_createcluster": "postgresql-common",
	"pg_ctlcluster":    "postgresql-common",
	"psql":             "postgresql-client-common",
	"runuser":          "util-linux",
	"redis-server":     "redis-server",
	"redis-cli":        "redis-tools",
	"chromium":         "chromium",
	"curl":             "curl",
	"ss":               "iproute2",
	"nsenter":          "util-linux",
	"git":              "git",
	"bash":             "bash",
	"dmesg":            "util-linux",
	"docker-registry":  "docker-registry",
	"prometheus":       "prometheus",
	"promtool":         "prometheus",
	"systemd-analyze":  "systemd",
	"busybox":          "busybox-static", // static: it is the whole of an image (test/e2e/template_oci_test.go)
}

// notPackages are programs that come with the toolchain rather than from apt.
var notPackages = map[string]bool{"go": true, "gofmt": true}

// builtByScript are programs scripts/install-deps.sh builds itself, with what its text
// must hold for that: runsc is built (with precompiled seccomp programs) from a copy of
// gVisor's Go module at the pinned version (Debian's build cannot checkpoint a sandbox
// with a TCP connection).
var builtByScript = map[string]string{"runsc": `-o "$tmp/runsc" ./runsc`}

// essential are the packages every Debian system has (Priority: required), and the
// packages that a package install-deps.sh names pulls in by dependency.
var essential = map[string]string{
	"coreutils":                "required",
	"util-linux":               "required",
	"mount":                    "required",
	"libc-bin":                 "required",
	"dpkg":                     "required",
	"bash":                     "required",
	"postgresql-common":        "dependency of postgresql",
	"postgresql-client-common": "dependency of postgresql",
	"redis-tools":              "dependency of redis-server",
}

func repoRoot(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// installedPackages reads the package names scripts/install-deps.sh installs: the
// want_pkgs arrays and the packages installed with -t (backports), if any.
func installedPackages(t *testing.T, root string) map[string]bool {
	b, err := os.ReadFile(filepath.Join(root, "scripts", "install-deps.sh"))
	if err != nil {
		t.Fatal(err)
	}
	pkgs := map[string]bool{}
	for _, m := range regexp.MustCompile(`want_pkgs\+?=\(([^)]*)\)`).FindAllStringSubmatch(string(b), -1) {
		for _, p := range strings.Fields(m[1]) {
			pkgs[p] = true
		}
	}
	for _, m := range regexp.MustCompile(`-t bookworm-backports ([a-z0-9.+-]+)`).FindAllStringSubmatch(string(b), -1) {
		pkgs[m[1]] = true
	}
	if len(pkgs) == 0 {
		t.Fatal("found no package names in scripts/install-deps.sh (want_pkgs=(...)); has its shape changed?")
	}
	return pkgs
}

var progName = regexp.MustCompile(`^[a-z][a-z0-9._+-]*$`)

// execCallees are the functions whose string arguments name a program to run: os/exec's
// and the tree's small wrappers around it (network's run(ctx, stdin, name, args...),
// runtimetest's run(args...), doctor's LookPath through its host seam), and testenv's
// NeedsTool(t, name), which a test calls before running name.
var execCallees = map[string]bool{"Command": true, "CommandContext": true, "LookPath": true, "run": true, "NeedsTool": true}

// execsFirstArg marks a file whose run wrapper execs its first argument; elsewhere run is
// some other helper (the CLI tests' run takes subcommands).
var execsFirstArg = regexp.MustCompile(`exec\.Command(Context)?\((ctx, )?(args\[0\]|name)`)

// programsInGo returns the programs named as string literals in exec calls in the Go
// files under dir, with one place each is used.
func programsInGo(t *testing.T, root string, found map[string]string) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", ".git", "testdata", "envdpb":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, p, src, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				name := ""
				switch fn := n.Fun.(type) {
				case *ast.SelectorExpr:
					name = fn.Sel.Name
				case *ast.Ident:
					name = fn.Name
				}
				if !execCallees[name] || (name == "run" && !execsFirstArg.Match(src)) {
					return true
				}
				// os/exec names the program at a fixed place (after the context for
				// CommandContext), where a variable means a path configured elsewhere;
				// a run wrapper takes it as its first non-empty literal (network's run
				// takes stdin before it).
				args := n.Args
				switch name {
				case "Command", "LookPath":
					args = args[:min(1, len(args))]
				case "CommandContext", "NeedsTool":
					args = args[min(1, len(args)):min(2, len(args))]
				}
				for _, a := range args {
					if s, ok := stringLit(a); ok && s != "" {
						if progName.MatchString(s) {
							add(found, s, rel, fset.Position(n.Pos()).Line)
						}
						break
					}
				}
			case *ast.RangeStmt:
				// for _, tool := range []string{"ip", "nft"} { ... LookPath(tool) ... }
				cl, ok := n.X.(*ast.CompositeLit)
				if !ok || !callsLookPath(n.Body) {
					return true
				}
				for _, e := range cl.Elts {
					if s, ok := stringLit(e); ok && progName.MatchString(s) {
						add(found, s, rel, fset.Position(e.Pos()).Line)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// anyInstalled reports whether one of the alternatives a|b is installed by the script or
// always present.
func anyInstalled(installed map[string]bool, alts string) bool {
	for _, p := range strings.Split(alts, "|") {
		if installed[p] || essential[p] != "" {
			return true
		}
	}
	return false
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}

func callsLookPath(body *ast.BlockStmt) bool {
	has := false
	ast.Inspect(body, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "LookPath" {
			has = true
		}
		return !has
	})
	return has
}

func add(found map[string]string, prog, file string, line int) {
	if _, ok := found[prog]; !ok {
		found[prog] = file + ":" + strconv.Itoa(line)
	}
}

// programsInScripts returns the programs the shell scripts and the browser suite run:
// `command -v X` checks in scripts/ and the Makefile, and the browser the console suite
// launches.
func programsInScripts(t *testing.T, root string, found map[string]string) {
	files, _ := filepath.Glob(filepath.Join(root, "scripts", "*.sh"))
	files = append(files, filepath.Join(root, "Makefile"), filepath.Join(root, "test", "console", "helpers.mjs"))
	re := regexp.MustCompile(`command -v ([a-z][a-z0-9._+-]*)|runuser -u \S+ -- ([a-z][a-z0-9._+-]*)|\b(pg_(?:lsclusters|createcluster|ctlcluster)|redis-(?:server|cli))\b|"/usr/bin/([a-z][a-z0-9._+-]*)"`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range re.FindAllStringSubmatch(line, -1) {
				for _, g := range m[1:] {
					if g != "" {
						add(found, g, rel, i+1)
					}
				}
			}
		}
	}
}

// TestInstallScriptCoversPrograms fails when the tree runs a program whose Debian package
// scripts/install-deps.sh does not install.
func TestInstallScriptCoversPrograms(t *testing.T) {
	root := repoRoot(t)
	installed := installedPackages(t, root)
	b, err := os.ReadFile(filepath.Join(root, "scripts", "install-deps.sh"))
	if err != nil {
		t.Fatal(err)
	}
	script := string(b)
	found := map[string]string{}
	programsInGo(t, root, found)
	programsInScripts(t, root, found)
	for _, must := range []string{"runsc", "runc", "ip", "nft", "chromium", "redis-server", "pg_ctlcluster"} {
		if _, ok := found[must]; !ok {
			t.Errorf("the scan did not find %q, which the suites are known to run: the scanner has gone blind", must)
		}
	}
	var progs []string
	for p := range found {
		progs = append(progs, p)
	}
	sort.Strings(progs)
	for _, prog := range progs {
		if notPackages[prog] {
			continue
		}
		if marker, ok := builtByScript[prog]; ok {
			if !strings.Contains(script, marker) {
				t.Errorf("%s runs %q, which scripts/install-deps.sh should build (%s), but the script does not", found[prog], prog, marker)
			}
			continue
		}
		pkg, ok := packageOf[prog]
		if !ok {
			t.Errorf("%s runs %q, which test/deps does not know: add it to packageOf with its Debian package, and that package to scripts/install-deps.sh", found[prog], prog)
			continue
		}
		if !anyInstalled(installed, pkg) {
			t.Errorf("%s runs %q (package %s), but scripts/install-deps.sh does not install %s: add it to want_pkgs", found[prog], prog, pkg, pkg)
		}
	}
	t.Logf("%d programs checked against %d packages in scripts/install-deps.sh", len(progs), len(installed))
}

// TestPackageTable checks the table against dpkg on this machine: where a program is
// installed, the package that owns it must be the one the table names (so a wrong entry
// cannot hide a missing install).
func TestPackageTable(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Fatal("dpkg not found: this check runs on Debian, like the project's machines")
	}
	checked := 0
	for prog, want := range packageOf {
		path := systemPath(prog)
		if path == "" {
			continue
		}
		resolved, err := filepath.EvalSymlinks(path)
		if err != nil {
			resolved = path
		}
		owner := dpkgOwner(path)
		if owner == "" {
			owner = dpkgOwner(resolved)
		}
		if owner == "" {
			t.Errorf("%s (%s) belongs to no Debian package: install it from apt so fresh machines get it too", prog, path)
			continue
		}
		if !contains(strings.Split(want, "|"), owner) {
			t.Errorf("packageOf[%q] = %q, but dpkg says %s belongs to %s", prog, want, path, owner)
		}
		checked++
	}
	t.Logf("%d installed programs matched their package", checked)
}

// systemPath finds prog in the directories apt installs programs to, or "" (a program
// elsewhere on PATH, such as a pyenv shim, is not the one a fresh machine will have).
func systemPath(prog string) string {
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := filepath.Join(dir, prog)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// dpkgOwner returns the package that installed path, or "". dpkg -S knows the path as
// packaged, which on a merged-/usr system may be /bin/x rather than /usr/bin/x.
func dpkgOwner(path string) string {
	for _, p := range []string{path, strings.TrimPrefix(path, "/usr")} {
		out, err := exec.Command("dpkg", "-S", p).Output()
		if err != nil {
			continue
		}
		line := strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
		if i := strings.Index(line, ":"); i > 0 {
			return strings.TrimSpace(strings.SplitN(line[:i], ",", 2)[0])
		}
	}
	return ""
}
