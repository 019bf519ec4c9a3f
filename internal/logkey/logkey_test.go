package logkey

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// spelled maps each key this package names, and the other spellings that were in use
// for the same thing, to the constant to write instead.
var spelled = map[string]string{
	Subsystem: "Subsystem", "component": "Subsystem",
	Err: "Err", "error": "Err",
	SandboxID: "SandboxID", "sandbox": "SandboxID",
	TeamID: "TeamID", UserID: "UserID", KeyID: "KeyID", RequestID: "RequestID",
	Template: "Template", PID: "PID", TraceID: "TraceID", SpanID: "SpanID", "traceid": "TraceID", "trace": "TraceID", Image: "Image",
}

// TestKeysAreConstants finds log attributes written as string literals where this
// package has a constant for the key (or for what the literal means), in the non-test
// Go files of internal/ and cmd/.
func TestKeysAreConstants(t *testing.T) {
	fset := token.NewFileSet()
	for _, root := range []string{"..", "../../cmd"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			for _, lit := range literalKeys(f) {
				key, _ := strconv.Unquote(lit.Value)
				if c, ok := spelled[key]; ok {
					t.Errorf("%s: log key %s: use logkey.%s", fset.Position(lit.Pos()), lit.Value, c)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// logMethods maps the slog.Logger methods to the index of their first key-value
// argument.
var logMethods = map[string]int{
	"Debug": 1, "Info": 1, "Warn": 1, "Error": 1, "With": 0,
	"DebugContext": 2, "InfoContext": 2, "WarnContext": 2, "ErrorContext": 2, "Log": 3, "LogAttrs": 3,
}

// literalKeys returns the string literals in key position of log calls in f: the first
// argument of slog.String, slog.Any, ..., and the keys of the alternating key-value
// arguments of logger methods. It goes by names, not types: a method of another type
// that is called like a logger's (t.Error) is skipped by its receiver's name.
func literalKeys(f *ast.File) []*ast.BasicLit {
	var out []*ast.BasicLit
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		recv, _ := sel.X.(*ast.Ident)
		if recv != nil && recv.Name == "slog" {
			if len(call.Args) > 0 && sel.Sel.Name != "New" && !strings.HasPrefix(sel.Sel.Name, "New") {
				if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					out = append(out, lit)
				}
			}
			return true
		}
		first, ok := logMethods[sel.Sel.Name]
		if !ok || recv != nil && (recv.Name == "t" || recv.Name == "fmt" || recv.Name == "errors" || recv.Name == "http") {
			return true
		}
		for i := first; i < len(call.Args); {
			switch a := call.Args[i].(type) {
			case *ast.BasicLit:
				if a.Kind == token.STRING {
					out = append(out, a)
				}
				i += 2
			case *ast.CallExpr: // an slog.Attr
				i++
			default: // a key held in a constant or variable
				i += 2
			}
		}
		return true
	})
	return out
}
