// Package cli implements the client verbs of the warren command (sandbox, snapshot,
// exec, run-code, cp, keys, templates, and the tenancy verbs teams, users, login, usage,
// invoices, plans, audit, and nodes), which talk to a Warren server's /v1 API through the Go SDK
// (github.com/warren-sh/warren/sdk/go).
//
// The server verbs (serve, doctor, bench) live elsewhere; cmd/warren/main.go dispatches
// to Run for the verbs Handles reports, and prints Usage as part of its help.
//
// Exit codes: 0 success, 1 an error (API errors print "error: <message> (request <id>)"),
// 2 a usage or configuration error; exec exits with the command's own exit code (124
// when it was killed at its timeout, as timeout(1) does), and run-code with 1 when the
// cell raised.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	warren "github.com/warren-sh/warren/sdk/go"
)

// Defaults and where people find the first key.
const (
	DefaultAPIURL = "http://127.0.0.1:3000"
	AdminKeyPath  = "/var/lib/warren/admin.key"
)

// command is one verb. name is how it is typed ("sandbox create").
type command struct {
	name     string
	synopsis string
	summary  string
	run      func(a *app, args []string) error
}

// commands is the one list of client verbs; dispatch, Handles and Usage read it.
var commands = []command{
	{"sandbox create", "[--template base | --snapshot ID|NAME] [--timeout 300] [--on-timeout kill|pause] [--auto-resume] [--env K=V]... [--metadata K=V]... [--no-internet] [--allow-out A,B] [--deny-out C] [--cpu N] [--memory-mb N] [--disk-mb N] [--max-processes N]", "Start a sandbox", (*app).sandboxCreate},
	{"sandbox list", "[--state S[,S]] [--metadata K=V]... [--limit N]", "List sandboxes", (*app).sandboxList},
	{"sandbox get", "ID", "Show a sandbox", (*app).sandboxGet},
	{"sandbox kill", "ID", "Stop a sandbox for good", (*app).sandboxKill},
	{"sandbox timeout", "ID SECONDS", "Make a sandbox end SECONDS from now", (*app).sandboxTimeout},
	{"sandbox network", "ID ([--allow-out A,B]... [--deny-out C]... | --clear)", "Replace a sandbox's egress policy, applied at once", (*app).sandboxNetwork},
	{"sandbox pause", "ID", "Save a running sandbox's memory and files and stop it", (*app).sandboxPause},
	{"sandbox resume", "ID [--timeout S]", "Start a paused sandbox again where it was", (*app).sandboxResume},
	{"sandbox fork", "ID [--count N] [--timeout S]", "Start N copies of a running sandbox", (*app).sandboxFork},
	{"snapshot create", "SANDBOX_ID [--name N]", "Save a running sandbox as a snapshot", (*app).snapshotCreate},
	{"snapshot list", "[--sandbox ID]", "List snapshots", (*app).snapshotList},
	{"snapshot get", "ID|NAME", "Show a snapshot", (*app).snapshotGet},
	{"snapshot delete", "ID|NAME", "Delete a snapshot", (*app).snapshotDelete},
	{"exec", "[--user U] [--cwd D] [--env K=V]... [--timeout S] [-i] ID -- CMD...", "Run a command in a sandbox, streaming its output", (*app).exec},
	{"run-code", "[-l LANG | --context ID] [--env K=V]... [--timeout S] [--save-dir DIR] ID FILE|-", "Run code in a sandbox's code interpreter, streaming its output", (*app).runCode},
	{"cp", "SRC DST   (one side ID:/path; - is stdin/stdout)", "Copy a file into or out of a sandbox", (*app).cp},
	{"keys create", "[NAME] [--name N] [--team ID] [--scope S]... [--expires DURATION|DATE]", "Create an API key", (*app).keysCreate},
	{"keys list", "", "List API keys", (*app).keysList},
	{"keys revoke", "ID", "Revoke an API key", (*app).keysRevoke},
	{"templates", "", "List templates", (*app).templates},
	{"template list", "", "List templates: the built-ins and the team's own", (*app).templates},
	{"template build", "--name NAME [-f Dockerfile] [--build-arg K=V]... [--timeout S] [--cpu-cores N] [--memory-mb N] [CONTEXT_DIR]", "Build a template of the team's own from a Dockerfile, following its log", (*app).templateBuild},
	{"template delete", "ID", "Delete a template of the team's own", (*app).templateDelete},
	{"login", "--email E [--password P]", "Sign in as a console user and print a session token", (*app).login},
	{"teams create", "NAME [--max-sandboxes N] [--max-cpu F] [--max-memory-mb N] [--max-disk-mb N] [--rpm N] [--plan ID] [--spend-limit D]", "Create a team (platform admin)", (*app).teamsCreate},
	{"teams list", "", "List teams", (*app).teamsList},
	{"teams get", "ID", "Show a team, its quota and usage", (*app).teamsGet},
	{"teams update", "ID [--name N] [--max-sandboxes N] [--max-cpu F] [--max-memory-mb N] [--max-disk-mb N] [--rpm N] [--plan ID] [--spend-limit D]", "Change a team (platform admin)", (*app).teamsUpdate},
	{"users create", "--email E [--password P] --role R [--team ID] [--name N]", "Add a user to a team", (*app).usersCreate},
	{"users list", "[--team ID]", "List users", (*app).usersList},
	{"users update", "ID [--role R] [--name N] [--password P]", "Change a user", (*app).usersUpdate},
	{"users delete", "ID", "Remove a user", (*app).usersDelete},
	{"usage", "[--from DATE] [--to DATE] [--by sandbox|day|template|none] [--sandbox ID]", "Show resource usage", (*app).usage},
	{"invoices list", "", "List invoices (also \"warren invoices\")", (*app).invoicesList},
	{"invoices get", "PERIOD   (YYYY-MM; -o json or -o csv)", "Show an invoice", (*app).invoicesGet},
	{"plans", "", "List pricing plans", (*app).plans},
	{"nodes list", "", "List the nodes: state, address, sandboxes, free capacity (platform admin)", (*app).nodesList},
	{"nodes drain", "NAME", "Stop a node taking new sandboxes; its sandboxes run to their end (platform admin)", (*app).nodesDrain},
	{"nodes undrain", "NAME", "Let a drained node take new sandboxes again (platform admin)", (*app).nodesUndrain},
	{"audit", "[--action A] [--since DATE] [--until DATE] [--team ID] [--limit N]", "Show the audit log", (*app).audit},
}

// defaultSub is the subcommand a group runs when none is given.
var defaultSub = map[string]string{"invoices": "list"}

// Handles reports whether verb (the first argument, e.g. "sandbox") is a client verb
// that Run handles. "help" is included.
func Handles(verb string) bool {
	if verb == "help" {
		return true
	}
	for _, c := range commands {
		if first, _, _ := strings.Cut(c.name, " "); first == verb {
			return true
		}
	}
	return false
}

// Usage writes the client verbs and their common options.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "Client commands (talk to a Warren server):")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Options of every client command:
  --api-url URL   server address (env WARREN_API_URL, default %s)
  --api-key KEY   API key sk_... (env WARREN_API_KEY; the admin key is in %s)
  -o json         machine-readable output instead of tables

Run "warren COMMAND --help" for a command's options.
`, DefaultAPIURL, AdminKeyPath)
}

// Run runs one client verb; args exclude the program name (e.g. ["sandbox", "list"]).
// It returns the process exit code. Standard input is os.Stdin.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) int {
	return RunIO(ctx, args, os.Stdin, stdout, stderr, env)
}

// RunIO is Run with an explicit standard input (for exec -i and cp -).
func RunIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	if env == nil {
		env = func(string) string { return "" }
	}
	a := &app{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, env: env}
	return a.report(a.dispatch(args))
}

// app is one invocation: its streams, environment and resolved options.
type app struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	env    func(string) string

	apiURL string
	apiKey string
	output string
	cmd    *command
	// formats are the -o values the command accepts besides json and table.
	formats []string
}

// usageError is a mistake in the command line or the configuration (exit 2). hint adds
// a pointer to the command's --help.
type usageError struct {
	msg  string
	hint bool
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), hint: true}
}

// exitCode ends the process with a code and no message (exec's exit status).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit code %d", int(e)) }

// errHelp means help was printed on purpose.
var errHelp = errors.New("help requested")

func (a *app) dispatch(args []string) error {
	global := flag.NewFlagSet("warren", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	a.commonFlags(global)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.help(a.stdout)
			return errHelp
		}
		return usagef("%v", err)
	}
	args = global.Args()
	if len(args) == 0 {
		a.help(a.stderr)
		return &usageError{}
	}
	if args[0] == "help" {
		a.help(a.stdout)
		return errHelp
	}
	if sub, ok := defaultSub[args[0]]; ok && (len(args) == 1 || strings.HasPrefix(args[1], "-")) {
		args = append([]string{args[0], sub}, args[1:]...)
	}
	// Longest match: "sandbox create" before "sandbox".
	for i := range commands {
		c := &commands[i]
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			a.cmd = c
			return c.run(a, args[len(words):])
		}
	}
	var group []string
	for _, c := range commands {
		if first, _, ok := strings.Cut(c.name, " "); ok && first == args[0] {
			group = append(group, c.name)
		}
	}
	if len(group) > 0 {
		sub := "a subcommand"
		if len(args) > 1 {
			sub = fmt.Sprintf("subcommand %q is unknown", args[1])
			return usagef("%s; use one of: %s", sub, strings.Join(group, ", "))
		}
		return usagef("%q needs a subcommand: %s", args[0], strings.Join(group, ", "))
	}
	return usagef("unknown command %q; run \"warren help\" for the list", args[0])
}

func (a *app) help(w io.Writer) {
	fmt.Fprintln(w, "Usage: warren COMMAND [options]")
	fmt.Fprintln(w)
	Usage(w)
}

// report prints err for people and returns the exit code.
func (a *app) report(err error) int {
	var (
		ue   *usageError
		code exitCode
		ae   *warren.APIError
	)
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &ue):
		if ue.msg != "" {
			fmt.Fprintf(a.stderr, "error: %s\n", ue.msg)
			if ue.hint && a.cmd != nil {
				fmt.Fprintf(a.stderr, "Run \"warren %s --help\" for usage.\n", a.cmd.name)
			}
		}
		return 2
	case errors.As(err, &ae):
		if ae.RequestID != "" {
			fmt.Fprintf(a.stderr, "error: %s (request %s)\n", ae.Message, ae.RequestID)
		} else {
			fmt.Fprintf(a.stderr, "error: %s\n", ae.Message)
		}
		if ae.Code == "unauthorized" {
			fmt.Fprintf(a.stderr, "Check WARREN_API_KEY (or --api-key); the admin key is in %s on the server.\n", AdminKeyPath)
		}
		return 1
	case errors.Is(err, context.Canceled) && a.ctx.Err() != nil:
		fmt.Fprintln(a.stderr, "interrupted")
		return 130
	}
	fmt.Fprintf(a.stderr, "error: %v\n", err)
	return 1
}

// client builds the API client from flags and the environment; it needs an API key.
// removeByID is a verb that takes one id and removes (deletes, revokes) what it names
// with do: it prints "<done> <what><id>", or {"id": ..., "<done>": true} with -o json.
func (a *app) removeByID(args []string, done, what string, do func(c *warren.Client, id string) error) error {
	pos, err := a.parse(a.newFlags(), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	if err := do(c, pos[0]); err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(map[string]any{"id": pos[0], done: true})
	}
	fmt.Fprintf(a.stdout, "%s %s%s\n", done, what, pos[0])
	return nil
}

func (a *app) client() (*warren.Client, error) {
	key := a.apiKey
	if key == "" {
		key = a.env("WARREN_API_KEY")
	}
	if key == "" {
		return nil, &usageError{msg: fmt.Sprintf("no API key: set WARREN_API_KEY or pass --api-key.\n"+
			"The server's admin key is in %s; on the server run:\n"+
			"  export WARREN_API_KEY=$(sudo cat %s)", AdminKeyPath, AdminKeyPath)}
	}
	return a.newClient(key)
}

// newClient builds a client with the given credentials ("" for none). The SDK reads
// the rest of its configuration from the invocation's environment, not the process's.
func (a *app) newClient(key string) (*warren.Client, error) {
	url := a.apiURL
	if url == "" {
		url = a.env("WARREN_API_URL")
	}
	if url == "" {
		url = DefaultAPIURL
	}
	c, err := warren.New(warren.WithEnv(a.env), warren.WithAPIURL(url), warren.WithAPIKey(key),
		warren.WithUserAgent("warren-cli/"+warren.Version))
	if err != nil {
		return nil, usagef("%s (from --api-url or WARREN_API_URL)", strings.TrimPrefix(err.Error(), "warren: "))
	}
	return c, nil
}
