package template

import (
	"embed"
	"io/fs"
	"path"
	"slices"
)

// codeInterpFS holds the code-interpreter server: a launcher and the modules it loads.
//
//go:embed codeinterp/warren-code-interpreter codeinterp/*.py codeinterp/*.js
var codeInterpFS embed.FS

// Where the code-interpreter server lives in the root filesystem.
const (
	codeInterpBin = "/usr/local/bin/warren-code-interpreter"
	codeInterpLib = "/usr/local/lib/warren-code-interpreter"
)

// codeInterpPackages are what the code-interpreter template adds to Base's packages
// (installed with apt-get, see Recipe.AptPackages):
// the Jupyter kernel machinery (Debian's, no pip), the usual data-science stack and Node.js.
var codeInterpPackages = []string{
	"nodejs", "python3-ipykernel", "python3-jupyter-client", "python3-matplotlib",
	"python3-matplotlib-inline", "python3-numpy", "python3-pandas", "python3-requests",
	"python3-scipy",
}

// codeInterpScript runs after baseScript. /proc is not mounted during it.
const codeInterpScript = `
# Fail the build here, not in the first sandbox, if a module is missing.
python3 -c 'import ipykernel, jupyter_client, matplotlib_inline, numpy, pandas, scipy, requests'
node --version >/dev/null
test -d /usr/share/jupyter/kernels/python3
# Warm matplotlib's font cache for the sandbox user so that the first plot is not slow.
HOME=/home/user MPLBACKEND=Agg python3 -c 'import matplotlib.pyplot'
chown -R 1000:1000 /home/user
rm -rf /tmp/* /var/tmp/*
`

// CodeInterpreter returns the "code-interpreter" recipe: Base plus Jupyter (ipykernel),
// numpy, pandas, matplotlib, scipy, requests and Node.js, and the Warren code-interpreter
// server (internal/template/codeinterp), which StartCmd starts at boot. The server speaks
// the E2B code-interpreter protocol on port 49999 (WARREN_CI_PORT overrides it).
func CodeInterpreter() Recipe {
	b := Base()
	return Recipe{
		Name:    "code-interpreter",
		Suite:   b.Suite,
		Variant: b.Variant,
		Mirror:  b.Mirror,
		// debootstrap installs exactly Base's packages (sharing its .debs); apt-get adds
		// the rest, whose dependencies debootstrap cannot resolve.
		Packages:    slices.Clone(b.Packages),
		AptPackages: slices.Clone(codeInterpPackages),
		Files:       codeInterpFiles(),
		Script:      b.Script + codeInterpScript,
		StartCmd:    codeInterpBin,
		Version:     1,
	}
}

// codeInterpFiles maps the embedded server files to their paths in the root filesystem:
// the launcher to /usr/local/bin, everything else to the library directory.
func codeInterpFiles() map[string]string {
	files := map[string]string{}
	err := fs.WalkDir(codeInterpFS, "codeinterp", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := codeInterpFS.ReadFile(p)
		if err != nil {
			return err
		}
		name := path.Base(p)
		if "/usr/local/bin/"+name == codeInterpBin {
			files[codeInterpBin] = string(data)
		} else {
			files[path.Join(codeInterpLib, name)] = string(data)
		}
		return nil
	})
	if err != nil {
		// The files are compiled in; reading them cannot fail.
		panic("template: reading embedded code-interpreter files: " + err.Error())
	}
	return files
}
