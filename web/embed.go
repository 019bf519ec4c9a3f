// Package web holds the web console's built assets: web/dist, written by
// `node web/build.mjs` (run by make) from the sources in web/src, and embedded into the
// warren binary. Go's embed can only reach files at or below the embedding package's
// directory, which is why this small package lives here and not in internal/console.
package web

import (
	"embed"
	"io/fs"
)

// dist is the build output. "all:" keeps dist/.gitkeep, so the pattern matches even
// before the first front-end build (the console then answers 503 "not built").
//
//go:embed all:dist
var dist embed.FS

// Dist returns the built assets, rooted at web/dist.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid, embedded path
	}
	return sub
}
