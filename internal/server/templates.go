package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/metrics"
	"github.com/warren-sh/warren/internal/template"
	"github.com/warren-sh/warren/internal/template/oci"
)

// extraRecipes are the templates besides base that every server offers.
func extraRecipes() []template.Recipe {
	return []template.Recipe{template.CodeInterpreter(), template.Browser(), template.Desktop()}
}

// templateNames are the templates every server offers.
func templateNames() []string {
	out := []string{template.Base().Name}
	for _, r := range extraRecipes() {
		out = append(out, r.Name)
	}
	return out
}

// startCmd is the template's start command as recorded in its marker.
func startCmd(m template.Marker) string { return m.StartCmd }

// templateReadyPorts are the ports whose /health must answer before a sandbox of the
// template is returned.
var templateReadyPorts = map[string]int{"code-interpreter": 49999, "browser": template.BrowserPort}

// templatePrivatePorts are the template services' ports the proxy opens only with the
// sandbox's access or traffic token: the code interpreter runs any code it is sent, and
// the browser's DevTools port drives a browser inside the sandbox (any page, any script).
var templatePrivatePorts = map[string][]int{"code-interpreter": {49999}, "browser": {template.BrowserPort}}

// templateMemoryMB is the memory a sandbox of these templates gets when it asks for none,
// when more than the server's default: Chromium takes ~480 MB of gVisor's accounting
// idle (its ~360 MB of mapped binary count), so 512 MB would not survive a page load;
// the desktop's Xvfb, xfce4 session, x11vnc and noVNC take ~390 MB before any
// application is opened.
var templateMemoryMB = map[string]int64{"browser": 1024, "desktop": 1024}

func init() {
	templateDescriptions["code-interpreter"] = "base plus numpy, pandas, matplotlib, scipy, requests, Node.js, IPython and ipykernel; stateful Python, JavaScript and bash contexts on port 49999"
	templateDescriptions["browser"] = "base plus Debian's Chromium, headless; the Chrome DevTools Protocol on port 9222 (token-protected)"
	templateDescriptions["desktop"] = "base plus an X11 desktop for @e2b/desktop: Xvfb, xfce4, xdotool, scrot, xrandr, x11vnc and noVNC (/opt/noVNC, port 6080)"
}

// templateBuilder is the builder for the configured cache.
func templateBuilder(c Config, out io.Writer, log *slog.Logger) *template.Builder {
	dataDir, err := filepath.Abs(c.DataDir) // mountinfo's mount points are absolute
	if err != nil {
		dataDir = c.DataDir
	}
	return &template.Builder{
		CacheDir: c.TemplateCache,
		DebCache: filepath.Join(filepath.Dir(strings.TrimRight(c.TemplateCache, "/")), "debs"),
		Log:      log, Progress: out,
		// The node's sandboxes (and template build sandboxes) mount their disks there.
		HideMounts: []string{filepath.Join(dataDir, "sandboxes"), filepath.Join(dataDir, "build-sandboxes")},
	}
}

// DefaultImageCache is where pulled OCI images are kept unless configured otherwise.
const DefaultImageCache = "/var/cache/warren/images"

// NewImagePuller is the OCI image puller of the configuration: its cache and registry
// mirrors, credentials from the Docker configuration of the user running warren.
func NewImagePuller(c Config, log *slog.Logger, progress func(oci.Progress)) *oci.Puller {
	dir := c.ImageCache
	if dir == "" {
		dir = DefaultImageCache
	}
	return &oci.Puller{CacheDir: dir, Mirrors: c.RegistryMirrors, Log: log, Progress: progress}
}

// templateDescriptions are shown in template listings.
var templateDescriptions = map[string]string{
	"base": "Debian bookworm with bash, python3, curl and git; user 'user'",
}

func recordTemplate(ctx context.Context, b *template.Builder, store domain.Store, r template.Recipe, rootfs string) error {
	m, err := b.Marker(r)
	if err != nil {
		return err
	}
	return store.UpsertTemplate(ctx, &domain.Template{
		ID: r.Name, Description: templateDescriptions[r.Name], Hash: m.Hash, RootFS: rootfs,
		Ready: true, BuiltAt: m.BuiltAt, SizeBytes: m.SizeBytes, StartCmd: startCmd(m), ReadyPort: templateReadyPorts[r.Name],
		PrivatePorts: templatePrivatePorts[r.Name],
	})
}

// ensureBase builds the base template if it is not cached and records it: the server
// does not serve without it.
func ensureBase(ctx context.Context, c Config, store domain.Store, out io.Writer, log *slog.Logger, tm *metrics.Templates) error {
	b := templateBuilder(c, out, log)
	r := template.Base()
	_, cached := b.IsReady(r)
	tm.Cache(cached)
	if !cached {
		fmt.Fprintf(out, "Building the base template (Debian bookworm, about 1-3 minutes; cached afterwards)...\n")
	}
	rootfs, err := ensureTimed(ctx, b, r, !cached, tm)
	if err != nil {
		return fmt.Errorf("building the base template: %w", err)
	}
	return recordTemplate(ctx, b, store, r, rootfs)
}

// ensureExtras makes the other templates available: cached ones at once, the rest are
// built in the background (creating a sandbox from them answers 503 until then), one
// after the other in extraRecipes' order: two debootstraps at once would only slow each
// other on a small host, and code-interpreter, which more callers wait for, comes first.
func ensureExtras(ctx context.Context, c Config, store domain.Store, out io.Writer, log *slog.Logger, wg *sync.WaitGroup, tm *metrics.Templates) error {
	b := templateBuilder(c, out, log)
	var pending []template.Recipe
	for _, r := range extraRecipes() {
		rootfs, ok := b.IsReady(r)
		tm.Cache(ok)
		if ok {
			if err := recordTemplate(ctx, b, store, r, rootfs); err != nil {
				return err
			}
			continue
		}
		if err := store.UpsertTemplate(ctx, &domain.Template{ID: r.Name, Description: templateDescriptions[r.Name], Hash: r.Hash()}); err != nil {
			return err
		}
		fmt.Fprintf(out, "Building the %s template in the background (several minutes; cached afterwards)...\n", r.Name)
		pending = append(pending, r)
	}
	if len(pending) == 0 {
		return nil
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, r := range pending {
			if ctx.Err() != nil {
				return
			}
			rootfs, err := ensureTimed(ctx, b, r, true, tm)
			if err != nil {
				if ctx.Err() == nil {
					log.Error("building template", logkey.Template, r.Name, logkey.Err, err)
				}
				continue
			}
			if err := recordTemplate(context.WithoutCancel(ctx), b, store, r, rootfs); err != nil {
				log.Error("recording template", logkey.Template, r.Name, logkey.Err, err)
				continue
			}
			fmt.Fprintf(out, "Template %s is ready.\n", r.Name)
		}
	}()
	return nil
}

// ensureTimed is b.Ensure(r), its duration recorded in tm as a build when build says
// the cache did not have it (a build that the server's shutdown cut short is not one).
func ensureTimed(ctx context.Context, b *template.Builder, r template.Recipe, build bool, tm *metrics.Templates) (string, error) {
	t0 := time.Now()
	rootfs, err := b.Ensure(ctx, r)
	if build && ctx.Err() == nil {
		tm.Built(r.Name, time.Since(t0), err == nil)
	}
	return rootfs, err
}
