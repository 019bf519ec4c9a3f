package agent

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// The shell fast path. `bash -c LINE`, where LINE is one simple command made only of
// plain words (no quotes, expansions, redirections, operators or assignments) naming a
// program found in PATH, runs that program by exec(2): bash replaces itself with it
// (its "exec optimization" for -c), after exporting PWD, SHLVL (0 by then) and _ (the
// program's path). Starting bash costs 6-10 ms in gVisor (measured through the agent:
// bash -c true 20-30 ms, /bin/true 11-20 ms), more than the rest of a command's round
// trip, so the agent does what bash would do without starting it: same program, same
// arguments, same environment, same process (bash leaves no parent behind either).
//
// Anything bash could treat differently goes through bash as asked: a line with any
// other character, a builtin or keyword as the command (except true and false
// without arguments, which behave exactly as /usr/bin/true and /usr/bin/false), an
// environment bash reads (BASH_ENV, exported functions, SHELLOPTS, PWD, ...), a PATH
// with relative entries, a program not executable by everyone, or a program the
// kernel will not exec (a script without #!, which bash runs itself). Only the
// non-login form is taken: `bash -l -c` (what E2B's SDKs send) reads the profile.

// shellFastPath turns the fast path on; directStarts counts the processes it started.
// Tests compare both ways.
var (
	shellFastPath = true
	directStarts  atomic.Int64
)

// plainWordChars are the characters of a word bash takes literally in every position
// of a simple command (no quoting, expansion, globbing, tilde, comment or operator).
const plainWordChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-"

// bashWords are bash's builtins and reserved words: a command named so is not a
// program lookup.
var bashWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`. : [ alias bg bind break builtin caller cd command compgen complete compopt
		continue declare dirs disown echo enable eval exec exit export false fc fg getopts hash help history jobs
		kill let local logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt source
		suspend test times trap true type typeset ulimit umask unalias unset wait if then else elif fi case esac
		for select while until do done in function time { } ! [[ ]] coproc`) {
		m[w] = true
	}
	return m
}()

// plainCommand splits line into the words of one simple command that bash would run
// as a program lookup with literal arguments, or reports false.
func plainCommand(line string) ([]string, bool) {
	words := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(words) == 0 {
		return nil, false
	}
	for _, w := range words {
		if strings.Trim(w, plainWordChars) != "" {
			return nil, false
		}
	}
	if strings.Contains(line, "\n") || strings.ContainsRune(words[0], '=') {
		return nil, false // an assignment, not a command
	}
	if bashWords[words[0]] && !(len(words) == 1 && (words[0] == "true" || words[0] == "false")) {
		return nil, false
	}
	return words, true
}

// bashReads reports whether env holds a variable that changes what bash does before
// or when it runs a command.
func bashReads(env []string) bool {
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "BASH"), k == "ENV", k == "SHELLOPTS", k == "POSIXLY_CORRECT", k == "PWD",
			k == "OLDPWD", k == "SHLVL", k == "_", k == "CDPATH", k == "GLOBIGNORE", k == "EXECIGNORE":
			return true
		}
	}
	return false
}

// searchPath finds cmd as bash does for a user who may not own it: in each PATH entry
// in order, the first regular file with an execute bit. It reports false where bash
// might decide otherwise (a relative PATH entry, or a file not executable by all).
func searchPath(cmd string, env []string) (string, bool) {
	check := func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 == 0o111
	}
	if strings.Contains(cmd, "/") {
		return cmd, filepath.IsAbs(cmd) && check(cmd)
	}
	path := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, d := range filepath.SplitList(path) {
		if !filepath.IsAbs(d) {
			return "", false
		}
		cand := strings.TrimSuffix(d, "/") + "/" + cmd
		fi, err := os.Stat(cand)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		return cand, check(cand)
	}
	return "", false
}

// direct returns how to start spec without bash, when spec is `/bin/bash -c LINE`
// and the fast path applies (see above); ok is false otherwise.
func direct(spec startSpec) (startSpec, bool) {
	argv := spec.argv
	if !shellFastPath || spec.path != "/bin/bash" && spec.path != "/usr/bin/bash" || len(argv) != 3 || argv[1] != "-c" || bashReads(spec.env) {
		return spec, false
	}
	words, ok := plainCommand(argv[2])
	if !ok {
		return spec, false
	}
	path, ok := searchPath(words[0], spec.env)
	if !ok {
		return spec, false
	}
	pwd, err := filepath.EvalSymlinks(spec.dir)
	if err != nil || !filepath.IsAbs(pwd) {
		return spec, false
	}
	d := spec
	d.path, d.argv = path, words
	d.env = append(append(make([]string, 0, len(spec.env)+3), spec.env...), "PWD="+pwd, "SHLVL=0", "_="+path)
	return d, true
}
