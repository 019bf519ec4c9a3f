package arch

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// maxMethods bounds the methods of an exported type, route handlers aside: a type past it
// is doing several jobs (the architecture issue found a 58-method sandbox service).
const maxMethods = 20

// TestTypeSize counts the methods of every exported type in internal/ (generated code
// aside), not counting HTTP route handlers (func(http.ResponseWriter, *http.Request)).
func TestTypeSize(t *testing.T) {
	root := repoRoot(t)
	counts := map[string]int{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(filepath.Join(root, "internal"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "envdpb" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || isHandler(fd.Type) {
				continue
			}
			name := recvName(fd.Recv.List[0].Type)
			if ast.IsExported(name) {
				counts[rel+"."+name]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) < 20 {
		t.Fatalf("counted only %d exported types: the walk has gone blind", len(counts))
	}
	var big []string
	for k, n := range counts {
		if n > maxMethods {
			big = append(big, fmt.Sprintf("%s has %d methods (at most %d, route handlers aside): split it by job", k, n, maxMethods))
		}
	}
	sort.Strings(big)
	for _, b := range big {
		t.Error(b)
	}
}

func recvName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return recvName(x.X)
	case *ast.IndexExpr:
		return recvName(x.X)
	case *ast.IndexListExpr:
		return recvName(x.X)
	case *ast.Ident:
		return x.Name
	}
	return ""
}

// isHandler reports whether a method has the shape of an HTTP route handler or one of its
// helpers: its first parameters are an http.ResponseWriter and an *http.Request.
func isHandler(ft *ast.FuncType) bool {
	var types []string
	for _, f := range ft.Params.List {
		n := len(f.Names)
		if n == 0 {
			n = 1
		}
		for i := 0; i < n; i++ {
			types = append(types, exprString(f.Type))
		}
	}
	return len(types) >= 2 && types[0] == "http.ResponseWriter" && types[1] == "*http.Request"
}

func exprString(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return "*" + exprString(x.X)
	case *ast.SelectorExpr:
		return exprString(x.X) + "." + x.Sel.Name
	case *ast.Ident:
		return x.Name
	}
	return ""
}
