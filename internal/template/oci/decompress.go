package oci

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// decompress returns the tar stream of a layer blob: gzip, zstd or uncompressed, told
// by the blob's first bytes (media types are not always truthful about it), and refusing
// a media type that names another compression.
func decompress(r io.Reader, mediaType string) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("layer is not valid gzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("layer is not valid zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	if strings.HasSuffix(mediaType, "gzip") || strings.HasSuffix(mediaType, "zstd") {
		return nil, fmt.Errorf("layer of media type %s does not start like one", mediaType)
	}
	return io.NopCloser(br), nil
}
