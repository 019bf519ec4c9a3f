package cli

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	warren "github.com/warren-sh/warren/sdk/go"
)

// maxCode caps the cell read from FILE or stdin: it travels inside the JSON request,
// and the server caps JSON bodies at 1 MiB.
const maxCode = 900 << 10

// runCode runs a cell in the sandbox's code interpreter: "warren run-code [flags] ID
// FILE|-". Output is streamed as it comes; image and PDF results are saved to files.
// The exit code is 1 if the cell raised.
func (a *app) runCode(args []string) error {
	fs := a.newFlags()
	var lang string
	fs.StringVar(&lang, "l", "", "language: python (default), javascript, typescript, bash, r, java, ... (its default context)")
	fs.StringVar(&lang, "language", "", "same as -l")
	contextID := fs.String("context", "", "run in this context instead (an id from POST /v1/sandboxes/ID/contexts)")
	env := kvFlag{}
	fs.Var(env, "env", "environment variable K=V for this execution only (repeatable)")
	timeout := fs.Int("timeout", 0, "seconds before the cell is interrupted (0: server default)")
	saveDir := fs.String("save-dir", ".", "directory for image and PDF results, named ID-COUNT-N.EXT (not with -o json, whose output has them)")
	pos, err := a.parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	switch {
	case lang != "" && *contextID != "":
		return usagef("give -l LANG or --context ID, not both: a context has its own language")
	case *timeout < 0:
		return usagef("--timeout must not be negative")
	}
	id, file := pos[0], pos[1]
	src, err := a.readCode(file)
	if err != nil {
		return err
	}
	opts := warren.RunCodeOptions{Language: lang, Env: env, Timeout: time.Duration(*timeout) * time.Second}
	if *contextID != "" {
		opts.Context = &warren.CodeContext{ID: *contextID}
	}
	if len(env) == 0 {
		opts.Env = nil
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var out *cellPrinter
	if !a.json() {
		out = &cellPrinter{a: a, sandbox: id, dir: *saveDir}
		opts.OnEvent = out.event
	}
	ex, err := c.Sandbox(id).RunCode(a.ctx, src, opts)
	if err != nil {
		return err
	}
	if out != nil && out.err != nil {
		return out.err
	}
	if a.json() {
		if err := a.printJSON(ex); err != nil {
			return err
		}
	}
	if ex.Error != nil {
		return exitCode(1)
	}
	return nil
}

// readCode reads the cell from file, or from stdin for "-".
func (a *app) readCode(file string) (string, error) {
	var r io.Reader
	name := file
	if file == "-" {
		r, name = a.stdin, "standard input"
	} else {
		f, err := os.Open(file)
		if err != nil {
			return "", usagef("cannot read the code: %v", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxCode+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("reading %s: %w", name, err)
	case len(b) > maxCode:
		return "", usagef("%s is larger than %d KiB; upload it with \"warren cp\" and run a cell that executes the file", name, maxCode>>10)
	case len(bytes.TrimSpace(b)) == 0:
		return "", usagef("%s holds no code", name)
	}
	return string(b), nil
}

// cellPrinter shows a streamed execution: output as it comes, results as text or as
// saved files, the traceback on stderr. The first failure (saving a result) stops the
// printing and is reported when the cell ends.
type cellPrinter struct {
	a       *app
	sandbox string
	dir     string
	count   int // execution count, for file names
	n       int // results so far
	err     error
}

func (p *cellPrinter) event(ev warren.CodeEvent) {
	if p.err != nil {
		return
	}
	a := p.a
	switch ev.Type {
	case warren.CodeEventNumberOfExecutions:
		p.count = ev.ExecutionCount
	case warren.CodeEventStdout:
		_, _ = io.WriteString(a.stdout, ev.Text)
	case warren.CodeEventStderr:
		_, _ = io.WriteString(a.stderr, ev.Text)
	case warren.CodeEventResult:
		p.n++
		p.err = p.result(ev.Result)
	case warren.CodeEventError, warren.CodeEventUnexpectedEnd:
		tb := ev.Error.Traceback
		if tb == "" {
			tb = ev.Error.Error()
		}
		_, _ = io.WriteString(a.stderr, withNewline(tb))
	}
}

// result prints one result: a line per saved file, else its text.
func (p *cellPrinter) result(r *warren.Result) error {
	saved, err := p.save(r)
	if err != nil {
		return err
	}
	var text string
	switch {
	case len(saved) > 0:
		text = strings.Join(saved, "\n")
	case r.Text != "":
		text = r.Text
	case r.Markdown != "":
		text = r.Markdown
	case r.LaTeX != "":
		text = r.LaTeX
	case len(r.Formats()) > 0:
		text = "[" + strings.Join(r.Formats(), ", ") + " result; -o json shows it]"
	default:
		return nil
	}
	_, err = io.WriteString(p.a.stdout, withNewline(text))
	return err
}

// save writes the result's images and PDF to files and returns a line for each.
func (p *cellPrinter) save(r *warren.Result) ([]string, error) {
	type file struct {
		mime, ext string
		data      []byte
		size      func([]byte) string
	}
	files := []file{
		{"image/png", "png", r.PNG, func(b []byte) string { return dims(png.DecodeConfig(bytes.NewReader(b))) }},
		{"image/jpeg", "jpg", r.JPEG, func(b []byte) string { return dims(jpeg.DecodeConfig(bytes.NewReader(b))) }},
		{"image/svg+xml", "svg", []byte(r.SVG), nil},
		{"application/pdf", "pdf", r.PDF, nil},
	}
	var lines []string
	for _, f := range files {
		data := f.data
		if len(data) == 0 {
			continue
		}
		if err := os.MkdirAll(p.dir, 0o755); err != nil {
			return nil, fmt.Errorf("saving results: %w", err)
		}
		name := fmt.Sprintf("%s-%d-%d.%s", safeName(p.sandbox), p.count, p.n, f.ext)
		path := filepath.Join(p.dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return nil, fmt.Errorf("saving a %s result: %w", f.mime, err)
		}
		if filepath.Clean(p.dir) == "." {
			path = "." + string(filepath.Separator) + name
		}
		desc := f.mime
		if f.size != nil {
			if s := f.size(data); s != "" {
				desc += " " + s
			}
		}
		lines = append(lines, fmt.Sprintf("[%s saved to %s]", desc, path))
	}
	return lines, nil
}

// dims formats an image's size, or "" if its header cannot be read.
func dims(c image.Config, err error) string {
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%dx%d", c.Width, c.Height)
}

// safeName keeps a sandbox id usable as part of a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || r == ':' {
			return '_'
		}
		return r
	}, s)
}

func withNewline(s string) string {
	if strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}
