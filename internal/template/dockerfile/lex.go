package dockerfile

import (
	"fmt"
	"strings"
)

// lookupFunc returns a variable's value and whether it is set.
type lookupFunc func(name string) (string, bool)

// words splits s into words the way Docker's shell lexer does for ENV, ARG, COPY, ADD,
// WORKDIR, USER and FROM: whitespace separates words (unless split is false, when s is
// one word), "..." and '...' group and are removed, escape quotes the next character
// (inside "..." only before ", $ and escape itself), and $NAME, ${NAME}, ${NAME:-word}
// and ${NAME:+word} expand outside '...'. An unset variable expands to "".
func words(s string, esc rune, lookup lookupFunc, split bool) ([]string, error) {
	var (
		out     []string
		cur     strings.Builder
		inWord  bool
		rs      = []rune(s)
		quote   rune // 0, '"' or '\''
		flushed = func() {
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		}
	)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == esc && i+1 < len(rs):
			next := rs[i+1]
			if quote == '"' && next != '"' && next != '$' && next != esc {
				cur.WriteRune(c)
				continue
			}
			cur.WriteRune(next)
			inWord = true
			i++
		case c == esc:
			cur.WriteRune(c)
			inWord = true
		case quote == '"' && c == '"':
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
			inWord = true
		case c == '$':
			v, n, err := expandAt(rs, i, esc, lookup, false)
			if err != nil {
				return nil, err
			}
			cur.WriteString(v)
			inWord = true
			i += n - 1
		case quote == 0 && split && (c == ' ' || c == '\t'):
			flushed()
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	flushed()
	return out, nil
}

// expandShell substitutes, in a RUN, CMD or ENTRYPOINT command run by /bin/sh, the
// variables lookup knows (the ARGs: the shell sees ENV through its environment), and
// leaves everything else, including text inside '...' and escaped dollars, to the shell.
func expandShell(s string, esc rune, lookup lookupFunc) (string, error) {
	var b strings.Builder
	rs := []rune(s)
	inSingle := false
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case inSingle:
			inSingle = c != '\''
			b.WriteRune(c)
		case c == '\'':
			inSingle = true
			b.WriteRune(c)
		case c == esc && i+1 < len(rs):
			b.WriteRune(c)
			b.WriteRune(rs[i+1])
			i++
		case c == '$':
			v, n, err := expandAt(rs, i, esc, lookup, true)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i += n - 1
		default:
			b.WriteRune(c)
		}
	}
	return b.String(), nil
}

// expandAt expands the variable reference at rs[i] (a '$') and returns its value and
// how many runes it took. A '$' that starts no reference is itself. With keepUnknown,
// a variable lookup does not know keeps its text (the shell expands it later).
func expandAt(rs []rune, i int, esc rune, lookup lookupFunc, keepUnknown bool) (string, int, error) {
	if i+1 >= len(rs) {
		return "$", 1, nil
	}
	if rs[i+1] != '{' {
		j := i + 1
		for j < len(rs) && isNameRune(rs[j], j == i+1) {
			j++
		}
		if j == i+1 {
			return "$", 1, nil
		}
		name := string(rs[i+1 : j])
		v, ok := lookup(name)
		if !ok && keepUnknown {
			return string(rs[i:j]), j - i, nil
		}
		return v, j - i, nil
	}
	end := -1
	for j := i + 2; j < len(rs); j++ {
		if rs[j] == '}' {
			end = j
			break
		}
	}
	if end < 0 {
		return "", 0, fmt.Errorf("unterminated ${ in %q", string(rs[i:]))
	}
	inner := string(rs[i+2 : end])
	n := end - i + 1
	name, op, word := inner, "", ""
	if k := strings.Index(inner, ":"); k >= 0 {
		name, op = inner[:k], inner[k:]
		if len(op) < 2 || (op[1] != '-' && op[1] != '+') {
			return "", 0, fmt.Errorf("${%s}: only ${NAME}, ${NAME:-default} and ${NAME:+alternative} are supported", inner)
		}
		op, word = op[:2], op[2:]
	}
	if !validName(name) {
		return "", 0, fmt.Errorf("${%s}: %q is not a variable name", inner, name)
	}
	v, ok := lookup(name)
	if !ok && keepUnknown {
		return string(rs[i : end+1]), n, nil
	}
	if strings.ContainsRune(word, '$') {
		// Docker expands the word too; one level is enough for defaults like ${A:-$B}.
		ws, err := words(word, esc, lookup, false)
		if err != nil {
			return "", 0, err
		}
		word = strings.Join(ws, "")
	}
	switch op {
	case ":-":
		if v == "" {
			v = word
		}
	case ":+":
		if v != "" {
			v = word
		}
	}
	return v, n, nil
}

func isNameRune(r rune, first bool) bool {
	return r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || !first && r >= '0' && r <= '9'
}

// validName reports whether s is a variable name ([A-Za-z_][A-Za-z0-9_]*).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !isNameRune(r, i == 0) {
			return false
		}
	}
	return true
}

// shellJoin turns an exec-form argument list into one /bin/sh command that runs the
// same program with the same arguments.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// shellQuote quotes s for /bin/sh when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(isNameRune(r, false) || strings.ContainsRune("-./:=@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
