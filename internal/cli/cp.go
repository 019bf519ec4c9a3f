package cli

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	warren "github.com/warren-sh/warren/sdk/go"
)

// cp copies one file between the local machine and a sandbox, streaming it both ways.
// One side is ID:/path; "-" is stdin (as SRC) or stdout (as DST).
func (a *app) cp(args []string) error {
	pos, err := a.parse(a.newFlags(), args, 2, 2)
	if err != nil {
		return err
	}
	src, dst := pos[0], pos[1]
	sid, spath, sremote := splitRemote(src)
	did, dpath, dremote := splitRemote(dst)
	switch {
	case sremote && dremote:
		return usagef("copying between two sandboxes is not supported; copy to a local file first")
	case !sremote && !dremote:
		return usagef("one of SRC and DST must be a sandbox path, ID:/path (a local file name with ':' can be written ./name)")
	case (sremote && spath == "") || (dremote && dpath == ""):
		return usagef("give a path after the sandbox id, e.g. ID:/home/user/file")
	case dremote:
		return a.upload(src, did, dpath)
	default:
		return a.download(sid, spath, dst)
	}
}

// splitRemote splits "ID:/path". A colon after a slash ("./a:b") is part of a local name.
func splitRemote(s string) (id, p string, remote bool) {
	i := strings.IndexByte(s, ':')
	if i <= 0 || strings.ContainsRune(s[:i], '/') {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

func (a *app) upload(src, id, dst string) error {
	if strings.HasSuffix(dst, "/") {
		if src == "-" {
			return usagef("give a file name for stdin: %s:%sNAME", id, dst)
		}
		dst += filepath.Base(src)
	}
	var in io.Reader = a.stdin
	if src != "-" {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		if fi, err := f.Stat(); err != nil {
			return err
		} else if fi.IsDir() {
			return usagef("%s is a directory; cp copies single files (try tar -c %s | warren cp - %s:/tmp/dir.tar)", src, src, id)
		}
		in = f
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	// A local file is seekable, so a refused upload (429, 503) can be retried.
	fi, err := c.Sandbox(id).Files().Write(a.ctx, dst, in)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(fi)
	}
	fmt.Fprintf(a.stdout, "copied %s to %s:%s\n", fmtBytes(fi.Size), id, fi.Path)
	return nil
}

func (a *app) download(id, src, dst string) error {
	if dst == "-" {
		if a.json() {
			return usagef("-o json cannot be combined with writing the file to stdout")
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		_, err = a.fetch(c, id, src, a.stdout)
		return err
	}
	if fi, err := os.Stat(dst); (err == nil && fi.IsDir()) || strings.HasSuffix(dst, string(os.PathSeparator)) {
		dst = filepath.Join(dst, path.Base(src))
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	// Write beside the target and rename, so a failed copy never leaves a short file
	// under the name the user asked for.
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".warren-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename this finds nothing
	n, err := a.fetch(c, id, src, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(map[string]any{"path": dst, "bytes": n})
	}
	fmt.Fprintf(a.stdout, "copied %s from %s:%s to %s\n", fmtBytes(n), id, src, dst)
	return nil
}

// fetch streams the sandbox file at src into w and returns how many bytes it wrote.
func (a *app) fetch(c *warren.Client, id, src string, w io.Writer) (int64, error) {
	rc, err := c.Sandbox(id).Files().Read(a.ctx, src)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(w, rc)
}
