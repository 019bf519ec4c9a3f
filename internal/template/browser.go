package template

import (
	_ "embed"
	"slices"
)

// browserFront is the browser template's start command: it starts headless Chromium and
// fronts its DevTools port (internal/template/browser/warren-browser).
//
//go:embed browser/warren-browser
var browserFront string

// BrowserBin is where the browser template's front lives; BrowserPort is the port it
// serves the Chrome DevTools Protocol on (GET /health answers once Chromium does).
const (
	BrowserBin  = "/usr/local/bin/warren-browser"
	BrowserPort = 9222
)

// browserPackages are what the browser template adds to Base's packages (apt-get,
// --no-install-recommends): Debian's Chromium and one metric-compatible font family so
// pages render text.
var browserPackages = []string{"chromium", "fonts-liberation"}

// browserScript runs after baseScript. /proc is not mounted during it.
const browserScript = `
# Fail the build here, not in the first sandbox, if Chromium cannot even be loaded.
test -x /usr/bin/chromium
python3 -c 'import asyncio, json, pwd'
rm -rf /tmp/* /var/tmp/*
`

// Browser returns the "browser" recipe: Base plus Debian's Chromium, run headless (as
// the sandbox user, without Chromium's own sandbox: gVisor is the sandbox) by the front
// that StartCmd starts, which serves the Chrome DevTools Protocol on BrowserPort.
func Browser() Recipe {
	b := Base()
	return Recipe{
		Name:        "browser",
		Suite:       b.Suite,
		Variant:     b.Variant,
		Mirror:      b.Mirror,
		Packages:    slices.Clone(b.Packages),
		AptPackages: slices.Clone(browserPackages),
		Files:       map[string]string{BrowserBin: browserFront},
		Script:      b.Script + browserScript,
		StartCmd:    BrowserBin,
		Version:     1,
	}
}
