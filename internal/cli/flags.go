package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// commonFlags adds the options every client command takes. They bind to the app, so a
// value given before the verb and one given after it land in the same place.
func (a *app) commonFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.apiURL, "api-url", a.apiURL, "server address (env WARREN_API_URL, default "+DefaultAPIURL+")")
	fs.StringVar(&a.apiKey, "api-key", a.apiKey, "API key sk_... (env WARREN_API_KEY)")
	fs.StringVar(&a.output, "o", a.output, "output format: json, or tables when unset")
}

// newFlags makes the flag set of the current command.
func (a *app) newFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("warren "+a.cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.commonFlags(fs)
	return fs
}

// parse parses flags anywhere among the positional arguments ("get ID -o json" works)
// and checks the positional count. Everything after "--" is positional.
func (a *app) parse(fs *flag.FlagSet, args []string, minPos, maxPos int) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, a.flagError(fs, err)
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if err := a.checkOutput(); err != nil {
		return nil, err
	}
	if len(pos) < minPos || (maxPos >= 0 && len(pos) > maxPos) {
		return nil, usagef("usage: warren %s %s", a.cmd.name, a.cmd.synopsis)
	}
	return pos, nil
}

// flagError turns a flag parsing error into help output or a usage error.
func (a *app) flagError(fs *flag.FlagSet, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		a.commandHelp(fs)
		return errHelp
	}
	return usagef("%v", err)
}

func (a *app) checkOutput() error {
	formats := append([]string{"json", "table"}, a.formats...)
	if a.output == "" || slices.Contains(formats, a.output) {
		return nil
	}
	return usagef("-o %q: the formats are %s and %s", a.output, strings.Join(formats[:len(formats)-1], ", "), formats[len(formats)-1])
}

func (a *app) commandHelp(fs *flag.FlagSet) {
	fmt.Fprintf(a.stdout, "Usage: warren %s %s\n\n%s.\n\nOptions:\n", a.cmd.name, a.cmd.synopsis, a.cmd.summary)
	fs.SetOutput(a.stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func (a *app) json() bool { return a.output == "json" }

// kvFlag collects repeated K=V options.
type kvFlag map[string]string

func (f kvFlag) String() string { return "" }

func (f kvFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", s)
	}
	f[k] = v
	return nil
}

// listFlag collects repeated or comma-separated values.
type listFlag []string

func (f *listFlag) String() string { return strings.Join(*f, ",") }

func (f *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*f = append(*f, v)
		}
	}
	return nil
}

// printJSON writes v as indented JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows under a header, aligned.
func (a *app) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fields writes "name  value" lines, aligned.
func (a *app) fields(kv [][2]string) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	for _, f := range kv {
		fmt.Fprintf(tw, "%s\t%s\n", f[0], f[1])
	}
	return tw.Flush()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func fmtMap(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
