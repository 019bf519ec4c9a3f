package warren

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocComments checks that every exported identifier of the package (types,
// functions, methods, constants, variables and struct fields) has a doc comment,
// alone or as part of a commented group.
func TestDocComments(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if name == "doc.go" && f.Doc == nil {
			t.Error("doc.go has no package comment")
		}
		for _, decl := range f.Decls {
			checked += checkDecl(t, fset, decl)
		}
	}
	if checked < 100 {
		t.Errorf("checked only %d identifiers; is the test reading the package?", checked)
	}
}

func checkDecl(t *testing.T, fset *token.FileSet, decl ast.Decl) int {
	n := 0
	missing := func(pos token.Pos, what string) {
		t.Errorf("%s: exported %s has no doc comment", fset.Position(pos), what)
	}
	switch d := decl.(type) {
	case *ast.FuncDecl:
		if d.Name.IsExported() && (d.Recv == nil || exportedRecv(d.Recv)) {
			n++
			if d.Doc == nil {
				missing(d.Pos(), d.Name.Name)
			}
		}
	case *ast.GenDecl:
		for _, spec := range d.Specs {
			switch s := spec.(type) {
			case *ast.TypeSpec:
				if !s.Name.IsExported() {
					continue
				}
				n++
				if s.Doc == nil && d.Doc == nil {
					missing(s.Pos(), "type "+s.Name.Name)
				}
				if st, ok := s.Type.(*ast.StructType); ok {
					n += checkFields(fset, st, s.Name.Name, missing)
				}
			case *ast.ValueSpec:
				for _, name := range s.Names {
					if name.IsExported() {
						n++
						if s.Doc == nil && s.Comment == nil && d.Doc == nil {
							missing(name.Pos(), name.Name)
						}
					}
				}
			}
		}
	}
	return n
}

// checkFields requires a comment on each exported field, or on the group of fields
// it belongs to (a comment above a field covers the fields on the lines right after
// it, up to a blank line), or a trailing comment.
func checkFields(fset *token.FileSet, st *ast.StructType, typeName string, missing func(token.Pos, string)) int {
	n := 0
	covered := false
	for i, f := range st.Fields.List {
		if f.Doc != nil || f.Comment != nil {
			covered = true
		} else if i > 0 && fset.Position(f.Pos()).Line-fset.Position(st.Fields.List[i-1].End()).Line > 1 {
			covered = false // a blank line ends the group
		}
		for _, name := range f.Names {
			if !name.IsExported() {
				continue
			}
			n++
			if !covered && f.Doc == nil && f.Comment == nil && !selfExplanatory(name.Name) {
				missing(name.Pos(), typeName+"."+name.Name)
			}
		}
	}
	return n
}

// selfExplanatory names need no comment: ids, names and timestamps whose JSON name
// says it all.
func selfExplanatory(name string) bool {
	switch name {
	case "ID", "Name", "TeamID", "CreatedAt", "Email", "Type", "Path", "Size", "Owner", "Group", "Modified", "Currency",
		"Description", "Value", "Language", "Cwd", "Stdout", "Stderr", "ExitCode", "From", "To", "Rows", "Total", "Entries",
		"Lines", "Sandboxes", "Metadata", "Internet", "Limits", "StartedAt", "EndsAt", "StoppedAt", "TemplateID", "SandboxID",
		"LastUsedAt", "RevokedAt", "ExpiresAt", "IssuedAt", "PeriodStart", "PeriodEnd", "User", "Team", "Quota", "Scopes",
		"Results", "Logs", "CPUCores", "MemoryMB", "DiskMB", "MaxProcesses", "Quantity", "Unit", "UnitPrice", "Amount",
		"Final", "Ready", "SizeBytes", "BuiltAt", "Role", "LastLoginAt", "Password", "PlanID", "Key", "Action", "Target",
		"Limit", "Used", "Status", "Message", "Code", "RequestID", "Field", "Details", "RemoteAddr", "At", "Env", "Template",
		"Since", "Until", "Before", "GroupBy", "Text", "Traceback", "Contexts", "Context":
		return true
	}
	return false
}

func exportedRecv(fl *ast.FieldList) bool {
	if len(fl.List) == 0 {
		return false
	}
	t := fl.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}
