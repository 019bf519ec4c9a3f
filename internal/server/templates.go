package server

import "github.com/warren-sh/warren/internal/template"

// extraRecipes are the templates besides base that every server offers.
func extraRecipes() []template.Recipe { return nil }

// startCmd is the template's start command as recorded in its marker.
func startCmd(m template.Marker) string { return "" }
