package server

import "github.com/warren-sh/warren/internal/template"

// extraRecipes are the templates besides base that every server offers.
func extraRecipes() []template.Recipe { return []template.Recipe{template.CodeInterpreter()} }

// startCmd is the template's start command as recorded in its marker.
func startCmd(m template.Marker) string { return m.StartCmd }

// templateReadyPorts are the ports whose /health must answer before a sandbox of the
// template is returned.
var templateReadyPorts = map[string]int{"code-interpreter": 49999}

// templatePrivatePorts are the template services' ports the proxy opens only with the
// sandbox's access or traffic token: the code interpreter runs any code it is sent.
var templatePrivatePorts = map[string][]int{"code-interpreter": {49999}}

func init() {
	templateDescriptions["code-interpreter"] = "base plus numpy, pandas, matplotlib, scipy, requests, Node.js and a Jupyter kernel; stateful Python, JavaScript and bash contexts on port 49999"
}
