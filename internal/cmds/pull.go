package cmds

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/server"
	"github.com/warren-sh/warren/internal/template/oci"
)

// templatePull runs `warren template pull IMAGE` on the server's host: it pulls an OCI
// image into the image cache the server uses (credentials from the Docker config of the
// user running it, the same registry mirrors) and shows per-layer progress.
func templatePull(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("template pull", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c server.Config
	fs.StringVar(&c.ImageCache, "image-cache", envOr("WARREN_IMAGE_CACHE", server.DefaultImageCache), "OCI image cache directory (WARREN_IMAGE_CACHE)")
	mirrors := fs.String("registry-mirror", os.Getenv("WARREN_REGISTRY_MIRRORS"), "comma-separated registries tried before Docker Hub (WARREN_REGISTRY_MIRRORS)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: warren template pull [--registry-mirror HOST] [--image-cache DIR] IMAGE (e.g. debian:bookworm-slim, registry.example:5000/team/app:v1)")
		return 2
	}
	var err error
	if c.RegistryMirrors, err = oci.ParseMirrors(*mirrors); err != nil {
		fmt.Fprintln(stderr, "warren template pull:", err)
		return 2
	}
	last := map[int]int64{} // per layer: the last tenth reported
	p := server.NewImagePuller(c, nil, func(pr oci.Progress) {
		short := strings.TrimPrefix(pr.Digest, "sha256:")
		short = short[:min(12, len(short))]
		switch pr.Phase {
		case "cached":
			fmt.Fprintf(stdout, "layer %d/%d %s: cached (%s)\n", pr.Layer, pr.Layers, short, mb(pr.Total))
		case "download":
			tenth := int64(10)
			if pr.Total > 0 {
				tenth = pr.Done * 10 / pr.Total
			}
			if t, ok := last[pr.Layer]; ok && t == tenth {
				return
			}
			last[pr.Layer] = tenth
			fmt.Fprintf(stdout, "layer %d/%d %s: %s of %s\n", pr.Layer, pr.Layers, short, mb(pr.Done), mb(pr.Total))
		case "unpack":
			fmt.Fprintf(stdout, "layer %d/%d %s: unpacked\n", pr.Layer, pr.Layers, short)
		}
	})
	img, err := p.Pull(ctx, fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "warren template pull:", err)
		var de *domain.Error
		if errors.As(err, &de) && de.Kind == domain.KindUnauthorized {
			fmt.Fprintln(stderr, "(log in to the registry with `docker login` as the user running warren, or put its credentials in $DOCKER_CONFIG/config.json)")
		}
		if errors.As(err, &de) && de.Kind == domain.KindInvalid {
			return 2
		}
		return 1
	}
	from := "pulled"
	if img.Cached {
		from = "cached"
	}
	fmt.Fprintf(stdout, "%s %s\n  digest  %s\n  rootfs  %s\n", from, img.Ref, img.Digest, img.Root)
	fmt.Fprintf(stdout, "  files   %d entries, %s unpacked, %d device nodes or FIFOs skipped\n", img.Stats.Entries, mb(img.Stats.Bytes), img.Stats.Skipped)
	if cmd := append(append([]string{}, img.Config.Entrypoint...), img.Config.Cmd...); len(cmd) > 0 {
		fmt.Fprintf(stdout, "  command %q\n", cmd)
	}
	if img.Config.WorkingDir != "" {
		fmt.Fprintf(stdout, "  workdir %s\n", img.Config.WorkingDir)
	}
	return 0
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
