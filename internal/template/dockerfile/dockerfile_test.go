package dockerfile

import (
	"reflect"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

const ctxHash = "c0ffee"

func run(cmd string) domain.BuildStep {
	return domain.BuildStep{Kind: domain.StepRun, Args: []string{cmd}}
}

func cp(args ...string) domain.BuildStep {
	return domain.BuildStep{Kind: domain.StepCopy, Args: args, FilesHash: ctxHash}
}

func step(k domain.StepKind, args ...string) domain.BuildStep {
	return domain.BuildStep{Kind: k, Args: args}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		args map[string]string
		want domain.BuildSpec
	}{
		{"template parent", "FROM base\nRUN echo hi\n",
			nil, domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{run("echo hi")}}},
		{"image parent with tag", "FROM debian:bookworm", nil, domain.BuildSpec{FromImage: "debian:bookworm"}},
		{"image parent by registry path", "from 127.0.0.1:5000/team/img@sha256:abc", nil,
			domain.BuildSpec{FromImage: "127.0.0.1:5000/team/img@sha256:abc"}},
		{"image parent by path without tag", "FROM library/debian", nil, domain.BuildSpec{FromImage: "library/debian"}},
		{"comments, blank lines, directives, continuation", "# syntax=docker/dockerfile:1\n# check=skip=all\n\n# a comment\nFROM base\nRUN apt-get update && \\\n  # comment inside\n\n  apt-get install -y curl\n",
			nil, domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{run("apt-get update &&   apt-get install -y curl")}}},
		{"escape directive", "# escape=`\nFROM base\nRUN echo a `\n b\nWORKDIR /a\\b\n", nil,
			domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{run("echo a  b"), step(domain.StepWorkdir, `/a\b`)}, Workdir: `/a\b`}},
		{"exec form RUN", `FROM base
RUN ["python3", "-c", "print('hi there')"]`, nil,
			domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{run(`python3 -c 'print('"'"'hi there'"'"')'`)}}},
		{"bad JSON is shell form", "FROM base\nRUN [ -f /x ] || touch /x", nil,
			domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{run("[ -f /x ] || touch /x")}}},
		{"ENV both forms", "FROM base\nENV A=1 B=\"two words\" C='$A'\nENV D the rest $A\nENV E=${A}x F=${NOPE:-dflt} G=${A:+alt}", nil,
			domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{
				step(domain.StepEnv, "A", "1", "B", "two words", "C", "$A"),
				step(domain.StepEnv, "D", "the rest 1"),
				step(domain.StepEnv, "E", "1x", "F", "dflt", "G", "alt")},
				Env: map[string]string{"A": "1", "B": "two words", "C": "$A", "D": "the rest 1", "E": "1x", "F": "dflt", "G": "alt"}}},
		{"ARG defaults, build args, substitution", "ARG TAG=bookworm\nFROM debian:${TAG}\nARG TAG\nARG V=1.0 W\nENV VER=$V\nRUN echo $V '$V' $HOME ${W}\nCOPY app-$V.py /opt/$TAG/\n",
			map[string]string{"W": "given"}, domain.BuildSpec{FromImage: "debian:bookworm", Steps: []domain.BuildStep{
				step(domain.StepEnv, "VER", "1.0"),
				run("echo 1.0 '$V' $HOME given"),
				cp("app-1.0.py", "/opt/bookworm/")}, Env: map[string]string{"VER": "1.0"}}},
		{"build arg overrides default", "ARG TAG=bookworm\nFROM debian:$TAG", map[string]string{"TAG": "trixie"},
			domain.BuildSpec{FromImage: "debian:trixie"}},
		{"ENV wins over ARG", "FROM base\nARG X=arg\nENV X=env\nWORKDIR /$X", nil,
			domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{step(domain.StepEnv, "X", "env"), step(domain.StepWorkdir, "/env")},
				Env: map[string]string{"X": "env"}, Workdir: "/env"}},
		{"COPY and ADD", "FROM base\nCOPY --chown=user:user a.txt b/ /app/\nADD [\"my file\", \"/srv/x\"]\nCOPY ./dir/../c /c", nil,
			domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{
				cp("a.txt", "/app/", "user:user"), cp("b", "/app/", "user:user"), cp("my file", "/srv/x"), cp("c", "/c")}}},
		{"COPY --chmod, with and without --chown", "FROM base\nCOPY --chmod=0755 run.sh /bin/\nCOPY --chown=app --chmod=600 k /k", nil,
			domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{cp("run.sh", "/bin/", "", "0755"), cp("k", "/k", "app", "600")}}},
		{"COPY wildcard", "FROM base\nCOPY *.py src/[ab]?.txt /app/", nil,
			domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{cp("*.py", "/app/"), cp("src/[ab]?.txt", "/app/")}}},
		{"WORKDIR relative to the last one", "FROM base\nWORKDIR /app\nWORKDIR src/../lib\nUSER 1000", nil,
			domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{step(domain.StepWorkdir, "/app"), step(domain.StepWorkdir, "/app/lib"), step(domain.StepUser, "1000")},
				Workdir: "/app/lib", User: "1000"}},
		{"CMD shell form", "FROM base\nCMD python3 -m http.server $PORT", nil,
			domain.BuildSpec{FromTemplate: "base", StartCmd: "python3 -m http.server $PORT"}},
		{"CMD exec form, last wins", "FROM base\nCMD [\"a\"]\nCMD [\"python3\", \"-m\", \"http.server\", \"8000\"]", nil,
			domain.BuildSpec{FromTemplate: "base", StartCmd: "python3 -m http.server 8000"}},
		{"ENTRYPOINT and CMD exec forms", "FROM base\nENTRYPOINT [\"/bin/srv\", \"--x\"]\nCMD [\"--port\", \"80 80\"]", nil,
			domain.BuildSpec{FromTemplate: "base", StartCmd: "/bin/srv --x --port '80 80'"}},
		{"ENTRYPOINT shell form ignores CMD", "FROM base\nCMD [\"x\"]\nENTRYPOINT exec srv", nil,
			domain.BuildSpec{FromTemplate: "base", StartCmd: "exec srv"}},
		{"ENTRYPOINT exec with shell CMD", "FROM base\nENTRYPOINT [\"env\"]\nCMD srv --a", nil,
			domain.BuildSpec{FromTemplate: "base", StartCmd: "env /bin/sh -c 'srv --a'"}},
		{"CRLF and BOM", "\ufeffFROM base\r\nRUN echo a \\\r\n b\r\n", nil,
			domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{run("echo a  b")}}},
		{"tab after the keyword", "FROM\tbase\nRUN\techo", nil,
			domain.BuildSpec{FromTemplate: "base", Steps: []domain.BuildStep{run("echo")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in), Options{BuildArgs: tt.args, ContextHash: ctxHash})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		args map[string]string
		want []string // substrings of the message
	}{
		{"empty", "", nil, []string{"no FROM"}},
		{"only comments", "# hi\n\n", nil, []string{"no FROM"}},
		{"unsupported instruction", "FROM base\nRUN x\nEXPOSE 80", nil, []string{"line 3", "EXPOSE is not supported", "FROM, RUN, COPY"}},
		{"HEALTHCHECK", "FROM base\nHEALTHCHECK CMD true", nil, []string{"line 2", "HEALTHCHECK"}},
		{"instruction before FROM", "RUN x\nFROM base", nil, []string{"line 1", "RUN before FROM"}},
		{"multi-stage AS", "FROM debian:bookworm AS build", nil, []string{"line 1", "multi-stage", "AS build"}},
		{"second FROM", "FROM base\nRUN x\nFROM base", nil, []string{"line 3", "second FROM"}},
		{"FROM platform", "FROM --platform=linux/arm64 base", nil, []string{"line 1", "--platform"}},
		{"FROM scratch", "FROM scratch", nil, []string{"scratch"}},
		{"FROM nothing", "FROM", nil, []string{"line 1", "one template name"}},
		{"FROM odd name", "FROM -x", nil, []string{"neither a template name"}},
		{"COPY --from", "FROM base\nCOPY --from=build /a /b", nil, []string{"line 2", "--from"}},
		{"COPY --chmod not octal", "FROM base\nCOPY --chmod=u+x a /b", nil, []string{"line 2", "--chmod", "octal"}},
		{"COPY --link", "FROM base\nCOPY --link a /b", nil, []string{"line 2", "--link", "only --chown and --chmod"}},
		{"ADD URL", "FROM base\nADD https://example.com/x.tgz /x", nil, []string{"line 2", "ADD", "only local files"}},
		{"ADD git", "FROM base\nADD git@github.com:a/b.git /b", nil, []string{"line 2", "only local files"}},
		{"ADD archive", "FROM base\nADD app.tar.gz /app", nil, []string{"line 2", "unpack"}},
		{"COPY absolute source", "FROM base\nCOPY /etc/passwd /x", nil, []string{"line 2", "absolute"}},
		{"COPY outside the context", "FROM base\nCOPY ../secret /x", nil, []string{"line 2", "outside the build context"}},
		{"COPY sneaky outside", "FROM base\nCOPY a/../../x /x", nil, []string{"outside the build context"}},
		{"COPY bad pattern", "FROM base\nCOPY [a-.py /app/", nil, []string{"not a valid wildcard pattern"}},
		{"COPY one word", "FROM base\nCOPY a", nil, []string{"line 2", "a destination"}},
		{"COPY several to a file", "FROM base\nCOPY a b /x", nil, []string{"ending in /"}},
		{"RUN mount", "FROM base\nRUN --mount=type=cache,target=/x true", nil, []string{"line 2", "--mount"}},
		{"RUN heredoc", "FROM base\nRUN <<EOF\necho\nEOF", nil, []string{"line 2", "here-documents"}},
		{"RUN empty", "FROM base\nRUN", nil, []string{"line 2", "want a command"}},
		{"RUN empty exec", "FROM base\nRUN []", nil, []string{"exec form needs a program"}},
		{"ENV bad name", "FROM base\nENV 1A=x", nil, []string{"line 2", "not a variable name"}},
		{"ENV unterminated quote", "FROM base\nENV A=\"x", nil, []string{"line 2", "unterminated"}},
		{"bad substitution", "FROM base\nENV A=${B:?err}", nil, []string{"line 2", "only ${NAME}"}},
		{"unterminated brace", "FROM base\nWORKDIR /${A", nil, []string{"line 2", "unterminated ${"}},
		{"relative WORKDIR first", "FROM base\nWORKDIR app", nil, []string{"line 2", "relative"}},
		{"USER with group", "FROM base\nUSER a:b", nil, []string{"line 2", "group"}},
		{"undeclared build arg", "FROM base", map[string]string{"X": "1"}, []string{"build args X"}},
		{"ARG bad name", "FROM base\nARG a-b=1", nil, []string{"not a variable name"}},
		{"bad escape directive", "# escape=x\nFROM base", nil, []string{"line 1", "escape"}},
		{"too large", "FROM base\n" + strings.Repeat("RUN x\n", DefaultMaxBytes/6+1), nil, []string{"larger than"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in), Options{BuildArgs: tt.args, ContextHash: ctxHash})
			if err == nil {
				t.Fatalf("Parse succeeded with %+v", got)
			}
			if !domain.IsKind(err, domain.KindInvalid) {
				t.Errorf("error %v is %v, want invalid", err, domain.KindOf(err))
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestParseMaxBytes(t *testing.T) {
	in := "FROM base\nRUN echo 123456789\n"
	if _, err := Parse(strings.NewReader(in), Options{MaxBytes: int64(len(in))}); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if _, err := Parse(strings.NewReader(in), Options{MaxBytes: int64(len(in) - 1)}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("past the limit: %v", err)
	}
}
