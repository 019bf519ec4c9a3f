// Package oci pulls OCI and Docker images from registries with go-containerregistry and
// unpacks them, safely, into root filesystem directories that templates are made from.
//
// Credentials come from the usual Docker configuration (authn.DefaultKeychain:
// ~/.docker/config.json, $DOCKER_CONFIG, credential helpers). Registry mirrors stand in
// for Docker Hub, as dockerd's registry-mirrors do; each is tried in turn and Docker Hub
// itself last.
//
// The cache is addressed by digest: CacheDir/blobs/sha256/<hex> holds the compressed
// layers as the registry sent them (checked against their digest), and
// CacheDir/roots/sha256/<hex> the unpacked root of the image whose manifest has that
// digest (rootfs/ plus image.json), made in a temporary directory and renamed into place
// only when complete, so a root in the cache is always whole.
package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// Progress is one report of a pull: Phase "download" with the compressed bytes of layer
// Layer (1-based, of Layers) done so far and the layer's size, "cached" for a layer
// already in the blob cache (Done = Total = its size), and "unpack" once a layer has been
// unpacked (Done = the uncompressed bytes of the image unpacked so far; Total 0, unknown
// until the end).
type Progress struct {
	Image  string
	Phase  string
	Layer  int
	Layers int
	Digest string
	Done   int64
	Total  int64
}

// Puller pulls images into its cache. The zero value is not usable: set CacheDir.
type Puller struct {
	// CacheDir holds the blobs and unpacked roots (see the package comment).
	CacheDir string
	// Mirrors are registry hosts (host[:port], or an http:// or https:// URL of one)
	// tried before Docker Hub for Docker Hub images. http:// means plain HTTP.
	Mirrors []string
	// Keychain gives credentials; nil means authn.DefaultKeychain.
	Keychain authn.Keychain
	// Transport carries the registry requests; nil means remote.DefaultTransport.
	Transport http.RoundTripper
	// Platform picks the image of a multi-platform index; nil means linux and this
	// machine's architecture.
	Platform *v1.Platform
	Limits   Limits
	// Progress, when set, is called as layers download and unpack, from the pulling
	// goroutine (so concurrently when several pulls run; Progress.Image tells them
	// apart); it must not block for long.
	Progress func(Progress)
	Log      *slog.Logger

	// locks holds a *sync.Mutex per manifest digest: pulls of one image wait for each
	// other (the second finds the cache), pulls of different images run side by side.
	// Between processes, temporary files renamed into place keep the cache whole.
	locks sync.Map
}

// maxConfigBytes bounds an image's config blob (real ones are a few KiB).
const maxConfigBytes = 4 << 20

// Image is a pulled and unpacked image.
type Image struct {
	Ref    string // the reference asked for
	Digest string // the manifest digest of the platform's image ("sha256:...")
	Root   string // the unpacked root filesystem
	Config v1.Config
	Stats  UnpackStats
	Cached bool // the root came from the cache
}

// imageMeta is what image.json beside rootfs/ records.
type imageMeta struct {
	Digest string      `json:"digest"`
	Config v1.Config   `json:"config"`
	Stats  UnpackStats `json:"stats"`
}

// Pull resolves ref, downloads the layers not yet cached and unpacks the image, unless
// its root is cached already. Errors: an unparsable reference is domain.KindInvalid, an
// image the registry does not have KindNotFound, refused credentials KindUnauthorized, an
// unsafe or oversized layer KindInvalid; each carries the registry's own answer.
func (p *Puller) Pull(ctx context.Context, ref string) (*Image, error) {
	parsed, err := name.ParseReference(ref)
	if err != nil {
		return nil, &domain.Error{Kind: domain.KindInvalid, Field: "image",
			Message: fmt.Sprintf("image reference %q is not valid (use [registry/]repository[:tag|@sha256:digest])", ref), Err: err}
	}
	img, err := p.resolve(ctx, parsed)
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, registryError(ref, err)
	}
	l, _ := p.locks.LoadOrStore(digest.String(), new(sync.Mutex))
	l.(*sync.Mutex).Lock()
	defer l.(*sync.Mutex).Unlock()
	dir := filepath.Join(p.CacheDir, "roots", digest.Algorithm, digest.Hex)
	if meta, err := readMeta(dir); err == nil {
		p.touch(filepath.Join(dir, "image.json"))
		return &Image{Ref: ref, Digest: digest.String(), Root: filepath.Join(dir, "rootfs"), Config: meta.Config, Stats: meta.Stats, Cached: true}, nil
	}
	// The manifest is bounded by go-containerregistry (100 MiB); the config, read whole,
	// by its size as the manifest states it (which the download is checked against).
	m, err := img.Manifest()
	if err != nil {
		return nil, registryError(ref, err)
	}
	if m.Config.Size > maxConfigBytes {
		return nil, domain.Errorf(domain.KindInvalid, "image %s has a config of %d bytes, more than the limit of %d", ref, m.Config.Size, maxConfigBytes)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, registryError(ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, registryError(ref, err)
	}
	limits := p.Limits.withDefaults()
	if len(layers) > limits.MaxLayers {
		return nil, domain.Errorf(domain.KindInvalid, "image %s has %d layers, more than the limit of %d", ref, len(layers), limits.MaxLayers)
	}
	var total int64
	for _, l := range layers {
		size, err := l.Size()
		if err != nil {
			return nil, registryError(ref, err)
		}
		total += size
	}
	if total > limits.MaxImageBytes {
		return nil, domain.Errorf(domain.KindInvalid, "image %s has %d bytes of layers, more than the limit of %d", ref, total, limits.MaxImageBytes)
	}
	blobs := make([]string, len(layers))
	for i, l := range layers {
		if blobs[i], err = p.fetchLayer(ctx, ref, l, i+1, len(layers)); err != nil {
			return nil, err
		}
	}
	stats, err := p.unpack(ctx, ref, dir, layers, blobs, imageMeta{Digest: digest.String(), Config: cf.Config}, limits)
	if err != nil {
		return nil, err
	}
	p.logger().Info("image pulled", logkey.Image, ref, "digest", digest.String(), "bytes", stats.Bytes)
	return &Image{Ref: ref, Digest: digest.String(), Root: filepath.Join(dir, "rootfs"), Config: cf.Config, Stats: stats}, nil
}

func (p *Puller) logger() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

func (p *Puller) report(pr Progress) {
	if p.Progress != nil {
		p.Progress(pr)
	}
}

// resolve finds the platform's image, through the mirrors first for Docker Hub images.
func (p *Puller) resolve(ctx context.Context, ref name.Reference) (v1.Image, error) {
	kc := p.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	plat := v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}
	if p.Platform != nil {
		plat = *p.Platform
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithPlatform(plat)}
	if p.Transport != nil {
		opts = append(opts, remote.WithTransport(p.Transport))
	}
	var tried []string
	if ref.Context().RegistryStr() == name.DefaultRegistry {
		for _, m := range p.Mirrors {
			mref, err := onMirror(ref, m)
			if err != nil {
				return nil, err
			}
			img, err := remote.Image(mref, opts...)
			if err == nil {
				return img, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			p.logger().Warn("registry mirror failed; trying the next", logkey.Image, mref.String(), logkey.Err, err)
			tried = append(tried, fmt.Sprintf("mirror %s: %v", m, err))
		}
	}
	img, err := remote.Image(ref, opts...)
	if err != nil {
		if len(tried) > 0 {
			err = fmt.Errorf("%w (also tried %s)", err, strings.Join(tried, "; "))
		}
		return nil, registryError(ref.String(), err)
	}
	return img, nil
}

// onMirror rewrites a Docker Hub reference to the same repository on mirror.
func onMirror(ref name.Reference, mirror string) (name.Reference, error) {
	var nopts []name.Option
	host := mirror
	switch {
	case strings.HasPrefix(mirror, "http://"):
		host, nopts = strings.TrimPrefix(mirror, "http://"), []name.Option{name.Insecure}
	case strings.HasPrefix(mirror, "https://"):
		host = strings.TrimPrefix(mirror, "https://")
	}
	host = strings.TrimSuffix(host, "/")
	full := host + "/" + ref.Context().RepositoryStr()
	if d, ok := ref.(name.Digest); ok {
		full += "@" + d.DigestStr()
	} else {
		full += ":" + ref.Identifier()
	}
	r, err := name.ParseReference(full, nopts...)
	if err != nil {
		return nil, domain.Errorf(domain.KindInvalid, "registry mirror %q is not a registry host (use host[:port] or http(s)://host[:port]): %v", mirror, err)
	}
	return r, nil
}

// registryError classifies an error from the registry. Its message carries the
// registry's answer (or why it could not be asked): the registry is the one the client's
// image reference names, and its answer (MANIFEST_UNKNOWN, UNAUTHORIZED, ...) is what
// tells the client what to fix. It is cut at maxAnswer bytes (an error body may be up
// to 64 KiB of anything).
func registryError(ref string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		kind := domain.KindUnavailable
		switch te.StatusCode {
		case http.StatusNotFound:
			kind = domain.KindNotFound
		case http.StatusUnauthorized, http.StatusForbidden:
			kind = domain.KindUnauthorized
		}
		return &domain.Error{Kind: kind, Message: fmt.Sprintf("pulling image %s: the registry answered: %s", ref, bounded(err))}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &domain.Error{Kind: domain.KindUnavailable, Message: fmt.Sprintf("pulling image %s: %s", ref, bounded(err))}
}

// maxAnswer bounds the registry's answer in an error message.
const maxAnswer = 1024

func bounded(err error) string {
	s := err.Error()
	if len(s) <= maxAnswer {
		return s
	}
	return strings.ToValidUTF8(s[:maxAnswer], "") + "... (cut)"
}

// fetchLayer puts the compressed layer in the blob cache (checked against its digest) and
// returns the file's path.
func (p *Puller) fetchLayer(ctx context.Context, ref string, l v1.Layer, i, n int) (string, error) {
	d, err := l.Digest()
	if err != nil {
		return "", registryError(ref, err)
	}
	size, _ := l.Size()
	dir := filepath.Join(p.CacheDir, "blobs", d.Algorithm)
	dst := filepath.Join(dir, d.Hex)
	if fi, err := os.Stat(dst); err == nil && fi.Size() == size {
		p.touch(dst)
		p.report(Progress{Image: ref, Phase: "cached", Layer: i, Layers: n, Digest: d.String(), Done: size, Total: size})
		return dst, nil
	}
	if d.Algorithm != "sha256" {
		return "", domain.Errorf(domain.KindInvalid, "layer %s of %s: only sha256 digests are supported", d, ref)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	rc, err := l.Compressed()
	if err != nil {
		return "", registryError(ref, err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	h := sha256.New()
	pr := &progressReader{r: io.LimitReader(rc, size+1), ctx: ctx, every: 1 << 20,
		report: func(done int64) {
			p.report(Progress{Image: ref, Phase: "download", Layer: i, Layers: n, Digest: d.String(), Done: done, Total: size})
		}}
	written, err := io.Copy(io.MultiWriter(tmp, h), pr)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", registryError(ref, fmt.Errorf("downloading layer %s: %w", d, err))
	}
	if written != size || hex.EncodeToString(h.Sum(nil)) != d.Hex {
		return "", domain.Errorf(domain.KindUnavailable, "layer %s of %s: the registry sent %d bytes that do not match the manifest's size %d and digest", d, ref, written, size)
	}
	pr.report(written)
	return dst, os.Rename(tmp.Name(), dst)
}

// progressReader reports the bytes read every `every` bytes and checks ctx.
type progressReader struct {
	r      io.Reader
	ctx    context.Context
	every  int64
	done   int64
	last   int64
	report func(int64)
}

func (r *progressReader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(b)
	r.done += int64(n)
	if r.done-r.last >= r.every {
		r.last = r.done
		r.report(r.done)
	}
	return n, err
}

// unpack applies the cached layers in a fresh directory and moves it into the cache.
func (p *Puller) unpack(ctx context.Context, ref, dir string, layers []v1.Layer, blobs []string, meta imageMeta, limits Limits) (UnpackStats, error) {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return UnpackStats{}, err
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-")
	if err != nil {
		return UnpackStats{}, err
	}
	defer os.RemoveAll(tmp) // after the rename, a no-op
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return UnpackStats{}, err
	}
	u, err := newUnpacker(rootfs, limits)
	if err != nil {
		return UnpackStats{}, err
	}
	defer u.Close()
	for i, l := range layers {
		if err := applyBlob(ctx, u, l, blobs[i]); err != nil {
			d, _ := l.Digest()
			if errors.Is(err, ErrUnsafe) {
				return u.stats, &domain.Error{Kind: domain.KindInvalid, Message: fmt.Sprintf("image %s: layer %d (%s) refused", ref, i+1, d), Err: err}
			}
			return u.stats, fmt.Errorf("image %s: unpacking layer %d (%s): %w", ref, i+1, d, err)
		}
		d, _ := l.Digest()
		p.report(Progress{Image: ref, Phase: "unpack", Layer: i + 1, Layers: len(layers), Digest: d.String(), Done: u.stats.Bytes})
	}
	meta.Stats = u.stats
	b, err := json.Marshal(meta)
	if err != nil {
		return u.stats, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "image.json"), b, 0o600); err != nil {
		return u.stats, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, merr := readMeta(dir); merr == nil {
			return u.stats, nil // made meanwhile by another process
		}
		return u.stats, err
	}
	return u.stats, nil
}

// applyBlob decompresses a cached blob with the layer's media type and applies it.
func applyBlob(ctx context.Context, u *unpacker, l v1.Layer, blob string) error {
	f, err := os.Open(blob)
	if err != nil {
		return err
	}
	defer f.Close()
	mt, err := l.MediaType()
	if err != nil {
		return err
	}
	r, err := decompress(f, string(mt))
	if err != nil {
		return err
	}
	defer r.Close()
	return u.Apply(ctx, r)
}

func readMeta(dir string) (imageMeta, error) {
	var m imageMeta
	b, err := os.ReadFile(filepath.Join(dir, "image.json"))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}

// ParseMirrors splits a comma-separated list of registry mirrors and checks each
// (host[:port], or an http:// or https:// URL of one); empty items are dropped.
func ParseMirrors(list string) ([]string, error) {
	var out []string
	for _, m := range strings.Split(list, ",") {
		m = strings.TrimSpace(m)
		if m == "" {
			continue
		}
		if _, err := onMirror(name.MustParseReference("library/busybox:latest"), m); err != nil {
			return nil, err
		}
		if h := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(m, "https://"), "http://"), "/"); strings.ContainsAny(h, "/?#@") {
			return nil, domain.Errorf(domain.KindInvalid, "registry mirror %q: give a host[:port] without a path", m)
		}
		out = append(out, m)
	}
	return out, nil
}
