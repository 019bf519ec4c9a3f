// Package cmds dispatches the warren binary's subcommands: serve, doctor and bench run
// here; every other verb is a CLI client verb (internal/cli).
package cmds

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/warren-sh/warren/internal/bench"
	"github.com/warren-sh/warren/internal/cli"
	"github.com/warren-sh/warren/internal/doctor"
	"github.com/warren-sh/warren/internal/server"
	"github.com/warren-sh/warren/internal/template"
)

// Version is set at build time with -ldflags "-X .../cmds.Version=...".
var Version = "dev"

// Main runs the subcommand in args and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "doctor":
		return doctorCmd(ctx, args[1:], stdout, stderr)
	case "bench":
		return benchCmd(ctx, args[1:], stdout, stderr)
	case "template":
		if len(args) > 1 && args[1] == "pull" {
			return templatePull(ctx, args[2:], stdout, stderr)
		}
	case "version", "--version":
		fmt.Fprintln(stdout, "warren", Version)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	return cli.RunIO(ctx, args, stdin, stdout, stderr, os.Getenv)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `warren: sandboxes for AI agents

Server:
  warren serve [--listen ADDR] [--data-dir DIR]   run the API and the node (as root)
  warren doctor [-o json | --json] [--measure]      check this host and recommend a setup
  warren bench [-n 20] [-o json]                  benchmark starts, commands, code, pause/fork against bare runsc
  warren template pull IMAGE                      pull an OCI image into the server's image cache, with progress

`)
	cli.Usage(w)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := server.ParseFlags(args)
	if err == flag.ErrHelp {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "warren serve:", err)
		return 2
	}
	cfg.Version = Version
	log := server.NewLogger(cfg, stderr)
	if err := server.Run(ctx, cfg, stdout, log); err != nil {
		fmt.Fprintln(stderr, "warren serve:", err)
		return 1
	}
	return 0
}

func doctorCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "text", "output: text or json")
	asJSON := fs.Bool("json", false, "same as -o json")
	measure := fs.Bool("measure", true, "start a real sandbox with each usable runtime and time it")
	dataDir := fs.String("data-dir", envOr("WARREN_DATA_DIR", "/var/lib/warren"), "data directory to check for space")
	cache := fs.String("template-cache", envOr("WARREN_TEMPLATE_CACHE", template.DefaultCacheDir), "template cache (for the measured start)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *asJSON {
		*out = "json"
	}
	if *out != "text" && *out != "json" {
		fmt.Fprintf(stderr, "warren doctor: -o %q: use text or json\n", *out)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "warren doctor takes no arguments, got %q\n", fs.Args())
		return 2
	}
	opts := doctor.Options{DataDir: *dataDir}
	b := &template.Builder{CacheDir: *cache}
	if rootfs, ok := b.IsReady(template.Base()); ok && *measure {
		opts.MeasureRuntimes, opts.RootFS = true, rootfs
	}
	rep := doctor.Run(ctx, opts)
	if *out == "json" {
		_ = rep.WriteJSON(stdout)
	} else {
		_ = rep.WriteText(stdout)
		if !opts.MeasureRuntimes && *measure {
			fmt.Fprintln(stdout, "\n(no measured starts: the base template is not built yet; 'make run' builds it)")
		}
	}
	return rep.ExitCode()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 20, "cold and warm creates and bare runsc runs, interleaved")
	out := fs.String("o", "text", "output: text or json")
	apiURL := fs.String("api-url", envOr("WARREN_API_URL", "http://127.0.0.1:3000"), "API URL (WARREN_API_URL)")
	apiKey := fs.String("api-key", os.Getenv("WARREN_API_KEY"), "API key (WARREN_API_KEY)")
	cache := fs.String("template-cache", envOr("WARREN_TEMPLATE_CACHE", template.DefaultCacheDir), "template cache holding the base rootfs for the baseline")
	rootfs := fs.String("rootfs", "", "root filesystem for the bare runsc baseline (default: the cached base template)")
	code := fs.Bool("code", true, "benchmark the code interpreter (needs the code-interpreter template; --code=false skips it)")
	codeCalls := fs.Int("code-calls", 200, "warm runCode(\"1+1\") calls to time")
	codeRuns := fs.Int("code-runs", 5, "code-interpreter sandboxes to create")
	execCalls := fs.Int("exec-calls", 100, "command round trips to time, back to back")
	execPaced := fs.Int("exec-paced-calls", 30, "command round trips to time, each after a pause of 250 ms")
	pauseRuns := fs.Int("pause-runs", 5, "pause and resume pairs to time")
	forkRuns := fs.Int("fork-runs", 3, "forks of count 1 and of count 10 to time")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *apiKey == "" {
		if b, err := os.ReadFile(filepath.Join(envOr("WARREN_DATA_DIR", "/var/lib/warren"), "admin.key")); err == nil {
			*apiKey = string(trimSpace(b))
		}
	}
	if *apiKey == "" {
		fmt.Fprintln(stderr, "warren bench: no API key: set WARREN_API_KEY (the admin key is in /var/lib/warren/admin.key)")
		return 2
	}
	if *rootfs == "" {
		b := &template.Builder{CacheDir: *cache}
		p, ok := b.IsReady(template.Base())
		if !ok {
			fmt.Fprintln(stderr, "warren bench: the base template is not built; start 'warren serve' once or pass --rootfs")
			return 2
		}
		*rootfs = p
	}
	progress := stderr
	if *out != "json" {
		progress = stdout
	}
	res, err := bench.Run(ctx, bench.Options{APIURL: *apiURL, APIKey: *apiKey, N: *n, RootFS: *rootfs, Progress: progress,
		ExecCalls: *execCalls, ExecPacedCalls: *execPaced, PauseRuns: *pauseRuns, ForkRuns: *forkRuns, CodeRuns: *codeRuns, CodeCalls: *codeCalls, SkipCode: !*code})
	if err != nil {
		fmt.Fprintln(stderr, "warren bench:", err)
		return 1
	}
	if *out == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
		return 0
	}
	bench.WriteText(stdout, res)
	return 0
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
