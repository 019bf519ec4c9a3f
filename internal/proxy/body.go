package proxy

import (
	"errors"
	"io"
	"net/http"
)

// UpstreamBody wraps the body of a request that a reverse proxy streams upstream, so
// that the server's close of it does not break the request.
//
// An HTTP/1 server, when the handler writes the response's headers before reading the
// request body to its end, reads what is left of it and closes it. A reverse proxy
// writes the headers as soon as the upstream answers, and the transport's writer can
// still be at its last read then: after the Content-Length bytes it reads once more
// to check that the body ends there, and a chunked body ends with a read of the
// terminator. Upstream answered, so it has all it reads; but that last read finds the
// body closed, the transport takes it for a failed write and closes the connection,
// and the response being streamed is cut (the client sees "terminated"). A read of a
// body the server closed is therefore its end.
func UpstreamBody(b io.ReadCloser) io.ReadCloser {
	if b == nil || b == http.NoBody {
		return b
	}
	return upstreamBody{b}
}

type upstreamBody struct{ io.ReadCloser }

func (b upstreamBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, http.ErrBodyReadAfterClose) {
		err = io.EOF
	}
	return n, err
}
