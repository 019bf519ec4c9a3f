package template

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
)

// tailLines is how many lines of command output a failure message quotes.
const tailLines = 12

// progress writes prefixed lines to an optional writer, remembers the last lines of
// command output for error messages, and turns debootstrap's output into phase lines.
// It is an io.Writer for a command's combined stdout and stderr. Safe for concurrent use.
type progress struct {
	mu     sync.Mutex
	w      io.Writer // may be nil
	prefix string
	buf    []byte   // an incomplete last line
	tail   []string // ring of the last tailLines output lines
	// debootstrap phase tracking; see observe.
	retrieved, validated   map[string]bool
	unpacking, configuring bool
}

func newProgress(w io.Writer, name string) *progress {
	return &progress{
		w:         w,
		prefix:    "[template " + name + "] ",
		retrieved: map[string]bool{},
		validated: map[string]bool{},
	}
}

// Write splits p into lines, echoes them with the prefix and records them.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexAny(p.buf, "\r\n")
		if i < 0 {
			break
		}
		line := string(p.buf[:i])
		p.buf = p.buf[i+1:]
		p.lineLocked(line)
	}
	return len(b), nil
}

// flush emits an incomplete last line, if any.
func (p *progress) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		line := string(p.buf)
		p.buf = p.buf[:0]
		p.lineLocked(line)
	}
}

// lineLocked handles one output line. Preconditions: p.mu held.
func (p *progress) lineLocked(line string) {
	line = strings.TrimRight(line, " \t")
	if line == "" {
		return
	}
	p.tail = append(p.tail, line)
	if len(p.tail) > tailLines {
		p.tail = p.tail[len(p.tail)-tailLines:]
	}
	p.printLocked(line)
	p.observeLocked(line)
}

// observeLocked derives phase lines from debootstrap's "I: ..." messages: it prints
// "Retrieving"/"Validating" for every .deb (only "Validating" for those found in the
// --cache-dir), then "Extracting" for each, then "Installing core packages" and
// "Configuring ...". Preconditions: p.mu held.
func (p *progress) observeLocked(line string) {
	msg, ok := strings.CutPrefix(line, "I: ")
	if !ok {
		return
	}
	switch {
	case strings.HasPrefix(msg, "Checking component "):
		p.printLocked("downloading packages")
	case strings.HasPrefix(msg, "Retrieving "):
		if pkg := debName(msg); pkg != "" {
			p.retrieved[pkg] = true
		}
	case strings.HasPrefix(msg, "Validating "):
		if pkg := debName(msg); pkg != "" {
			p.validated[pkg] = true
		}
	case strings.HasPrefix(msg, "Extracting ") && !p.unpacking:
		p.unpacking = true
		n, fresh := len(p.validated), len(p.retrieved)
		p.printLocked(fmt.Sprintf("downloading and unpacking %d packages (%d downloaded, %d from the cache)", n, fresh, max(n-fresh, 0)))
	case (strings.HasPrefix(msg, "Installing core packages") || strings.HasPrefix(msg, "Configuring ")) && !p.configuring:
		p.configuring = true
		p.printLocked("configuring")
	}
}

// debName returns the package of "Retrieving <pkg> <version>", or "" for index files
// ("Retrieving InRelease", "Retrieving Packages").
func debName(msg string) string {
	f := strings.Fields(msg)
	if len(f) != 3 {
		return ""
	}
	return f[1]
}

// phase prints a phase line.
func (p *progress) phase(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.printLocked(fmt.Sprintf(format, args...))
}

// printLocked writes one prefixed line. Preconditions: p.mu held.
func (p *progress) printLocked(line string) {
	if p.w != nil {
		// Progress output is best effort; a broken terminal must not fail a build.
		_, _ = io.WriteString(p.w, p.prefix+line+"\n")
	}
}

// lastLines returns the recorded tail and forgets it, so that the next command's failure
// quotes only its own output.
func (p *progress) lastLines() []string {
	p.flush()
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.tail
	p.tail = nil
	return t
}

// formatTail renders quoted output lines for an error message.
func formatTail(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return "; last lines of output:\n    " + strings.Join(lines, "\n    ")
}
