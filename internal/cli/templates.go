package cli

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	warren "github.com/warren-sh/warren/sdk/go"
)

// templateBuild runs `warren template build --name NAME [-f Dockerfile] [CONTEXT_DIR]`:
// it sends the Dockerfile and the context directory as a tar archive (bounded, less
// what .dockerignore leaves out), follows the build's log, and exits 1 when it fails,
// after the failed step's last log lines.
func (a *app) templateBuild(args []string) error {
	fs := a.newFlags()
	name := fs.String("name", "", "the template's name (its id)")
	file := fs.String("f", "", "the Dockerfile (default: CONTEXT_DIR/Dockerfile)")
	timeout := fs.Int64("timeout", 0, "seconds the build may take (0: the server's limit)")
	maxMB := fs.Int64("max-context-mb", 512, "the most MiB of build context to send")
	cpus := fs.Float64("cpu-cores", 0, "CPU cores the template's sandboxes get by default (0: the server's)")
	memMB := fs.Int64("memory-mb", 0, "MiB of memory the template's sandboxes get by default (0: the server's)")
	buildArgs := kvFlag{}
	fs.Var(buildArgs, "build-arg", "a Dockerfile ARG value, K=V (repeatable)")
	pos, err := a.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if *name == "" {
		return usagef("name the template with --name")
	}
	dir := "."
	if len(pos) == 1 {
		dir = pos[0]
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return usagef("the build context %q is not a directory", dir)
	}
	if *file == "" {
		*file = filepath.Join(dir, "Dockerfile")
	}
	df, err := os.Open(*file)
	if err != nil {
		return usagef("the Dockerfile: %v (give one with -f)", err)
	}
	defer df.Close()
	ignore, err := readDockerignore(dir)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarContext(dir, ignore, *maxMB<<20, pw)) }()
	defer pr.Close()
	req := warren.BuildRequest{Name: *name, Timeout: *timeout, CPUCores: *cpus, MemoryMB: *memMB}
	if len(buildArgs) > 0 {
		req.BuildArgs = buildArgs
	}
	started, err := c.BuildTemplate(a.ctx, req, warren.BuildOptions{Dockerfile: df, Context: pr})
	if err != nil {
		return err
	}
	if !a.json() {
		fmt.Fprintf(a.stdout, "building template %s (build %s)\n", started.Template.ID, started.Build.ID)
	}
	var last []string
	b, err := c.FollowBuild(a.ctx, started.Template.ID, started.Build.ID, 0, func(l warren.BuildLogLine) {
		last = append(last, l.Message)
		if len(last) > 20 {
			last = last[1:]
		}
		if !a.json() {
			fmt.Fprintln(a.stdout, l.Message)
		}
	})
	if err != nil {
		return err
	}
	if a.json() {
		if err := a.printJSON(b); err != nil {
			return err
		}
	} else {
		cached := 0
		for _, s := range b.Steps {
			if s.Cached {
				cached++
			}
		}
		fmt.Fprintf(a.stdout, "%d steps, %d from cache\n", len(b.Steps), cached)
	}
	if b.State != "ready" {
		fmt.Fprintf(a.stderr, "warren: the build of template %s failed: %s\n", started.Template.ID, b.Reason)
		if len(last) > 0 {
			fmt.Fprintf(a.stderr, "last log lines:\n  %s\n", strings.Join(last, "\n  "))
		}
		return exitCode(1)
	}
	if !a.json() {
		fmt.Fprintf(a.stdout, "template %s is ready: warren sandbox create --template %s\n", started.Template.ID, started.Template.ID)
	}
	return nil
}

func (a *app) templateDelete(args []string) error {
	return a.removeByID(args, "deleted", "template ", func(c *warren.Client, id string) error { return c.DeleteTemplate(a.ctx, id) })
}

// ignoreRules are a .dockerignore's patterns: path.Match patterns on paths relative
// to the context, matching a file or a directory (and so all below it).
type ignoreRules []string

func (r ignoreRules) ignored(rel string) bool {
	for _, p := range r {
		for q := rel; q != "." && q != "/"; q = path.Dir(q) {
			if ok, _ := path.Match(p, q); ok {
				return true
			}
		}
	}
	return false
}

// readDockerignore reads dir/.dockerignore: comments and blank lines skipped, a
// leading "/" or "./" dropped. Exceptions ("!") and "**" are refused: they are not
// supported.
func readDockerignore(dir string) (ignoreRules, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rules ignoreRules
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for n := 1; sc.Scan(); n++ {
		p := strings.TrimSpace(sc.Text())
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		if strings.HasPrefix(p, "!") || strings.Contains(p, "**") {
			return nil, usagef(".dockerignore line %d (%s): exceptions (!) and ** are not supported; list what to leave out with simple patterns", n, p)
		}
		p = path.Clean(strings.TrimPrefix(strings.TrimPrefix(p, "./"), "/"))
		if _, err := path.Match(p, ""); err != nil {
			return nil, usagef(".dockerignore line %d (%s): %v", n, p, err)
		}
		rules = append(rules, p)
	}
	return rules, sc.Err()
}

// tarContext writes dir as a tar archive to w (regular files, directories and
// symbolic links; others are skipped), leaving out what ignore matches, and fails once
// more than max bytes of file content would be sent.
func tarContext(dir string, ignore ignoreRules, max int64, w io.Writer) error {
	tw := tar.NewWriter(w)
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ignore.ignored(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.Mode().IsRegular(), info.IsDir():
		default:
			return nil // sockets, devices, pipes: not part of a build
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name, hdr.Uname, hdr.Gname = rel, "", ""
		if info.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		if total += info.Size(); total > max {
			return fmt.Errorf("the build context %s holds more than %d MiB; leave out what the build does not need in .dockerignore, or raise --max-context-mb", dir, max>>20)
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, io.LimitReader(f, info.Size()))
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
