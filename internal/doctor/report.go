package doctor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteText writes the report for people: one aligned line per check, each warning or
// failure followed by its fix, then the runtime table, the recommended configuration
// and a summary line.
func (r Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "Warren doctor: %s, kernel %s\n\n", orUnknown(r.Hostname), orUnknown(r.Kernel))
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	indent := strings.Repeat(" ", 2+4+2+width+2)
	for _, c := range r.Checks {
		fmt.Fprintf(bw, "  %-4s  %-*s  %s\n", c.Status, width, c.Name, c.Detail)
		if c.Fix != "" && c.Status != StatusOK {
			for i, line := range strings.Split(c.Fix, "\n") {
				lead := "fix: "
				if i > 0 {
					lead = "     "
				}
				fmt.Fprintf(bw, "%s%s%s\n", indent, lead, line)
			}
		}
	}
	fmt.Fprintln(bw)
	r.writeRuntimes(bw)
	fmt.Fprintln(bw)
	r.writeRecommended(bw)
	fmt.Fprintln(bw)
	fmt.Fprintf(bw, "Summary: %d ok, %d warn, %d fail\n", r.Summary.OK, r.Summary.Warn, r.Summary.Fail)
	return bw.Flush()
}

// WriteJSON writes the report as indented JSON (warren doctor -o json).
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeRuntimes writes one line per runtime, strongest isolation first: usable with its
// measured start, or why not and what to do.
func (r Report) writeRuntimes(w io.Writer) {
	fmt.Fprintln(w, "Runtimes (strongest isolation first):")
	fmt.Fprintf(w, "  %-8s  %-9s  %s\n", "runtime", "isolation", "status")
	for _, rt := range r.Support {
		status := "usable"
		switch {
		case !rt.Usable:
			status = "not usable: " + strings.Join(rt.Reasons, "; ")
		case rt.StartMillis > 0:
			status += fmt.Sprintf(", start %.0f ms (%s)", rt.StartMillis, rt.Rating)
		default:
			status += ", start not measured"
		}
		if rt.Name == RuntimeRunc && rt.Usable {
			status += "; shares the host kernel"
		}
		fmt.Fprintf(w, "  %-8s  %-9s  %s\n", rt.Name, rt.Isolation, status)
	}
}

// writeRecommended writes the recommended configuration of warren serve.
func (r Report) writeRecommended(w io.Writer) {
	fmt.Fprintln(w, "Recommended configuration:")
	rec := r.Recommended
	if rec.Runtime == "" {
		fmt.Fprintln(w, "  runtime: none usable. Warren cannot run sandboxes on this host: fix the failures above.")
	} else {
		fmt.Fprintf(w, "  runtime: %s (what WARREN_RUNTIME=%s picks)\n", rec.Runtime, RuntimeAuto)
		fmt.Fprintf(w, "  run:     %s\n", rec.Command)
		fmt.Fprintf(w, "  or:      warren serve %s\n", strings.Join(rec.Flags, " "))
	}
	for _, n := range rec.Notes {
		fmt.Fprintf(w, "  - %s\n", n)
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
