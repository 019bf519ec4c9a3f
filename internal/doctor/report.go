package doctor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteText writes the report for people: one aligned line per check, each warning or
// failure followed by its fix, then the usable runtimes and a summary line.
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
	if r.OK() {
		fmt.Fprintf(bw, "Runtimes usable: %s\n", strings.Join(r.Runtimes, ", "))
	} else {
		fmt.Fprintln(bw, "Runtimes usable: none. Warren cannot run sandboxes on this host: fix the failures above.")
	}
	if r.MicroVMs {
		fmt.Fprintln(bw, "MicroVMs: usable")
	} else {
		fmt.Fprintln(bw, "MicroVMs: not usable")
	}
	fmt.Fprintf(bw, "Summary: %d ok, %d warn, %d fail\n", r.Summary.OK, r.Summary.Warn, r.Summary.Fail)
	return bw.Flush()
}

// WriteJSON writes the report as indented JSON (warren doctor -o json).
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
