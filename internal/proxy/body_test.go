package proxy

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// lateEnd is a request body whose reads after the first n bytes come late, as when the
// transport's writer is scheduled after the upstream's answer.
type lateEnd struct {
	io.ReadCloser
	n    int
	read int
}

func (b *lateEnd) Read(p []byte) (int, error) {
	if b.read >= b.n {
		time.Sleep(100 * time.Millisecond)
	}
	n, err := b.ReadCloser.Read(p)
	b.read += n
	return n, err
}

// A reverse proxy whose upstream answers a small body at once, before the transport's
// writer makes its last read of the request body, streams the whole answer when the
// body is an UpstreamBody; without it the server closes the body under the writer,
// the transport drops the connection and the stream is cut (the flake of TestCluster's
// E2B suite: "terminated").
func TestUpstreamBodyKeepsTheStream(t *testing.T) {
	const chunks = 5
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength)); err != nil {
			t.Errorf("upstream reading the body: %v", err)
		}
		f := w.(http.Flusher)
		for i := 0; i < chunks; i++ {
			io.WriteString(w, "event\n")
			f.Flush()
			time.Sleep(40 * time.Millisecond)
		}
	}))
	defer upstream.Close()
	u, _ := url.Parse(upstream.URL)

	for _, tc := range []struct {
		name  string
		wrap  bool
		whole bool
	}{{"without UpstreamBody", false, false}, {"with UpstreamBody", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			var cut atomic.Int32
			rp := &httputil.ReverseProxy{
				Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
				FlushInterval: -1,
				ErrorLog:      log.New(io.Discard, "", 0),
			}
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Body = &lateEnd{ReadCloser: r.Body, n: int(r.ContentLength)}
				if tc.wrap {
					r.Body = UpstreamBody(r.Body)
				}
				defer func() {
					if v := recover(); v != nil {
						cut.Add(1)
						panic(v)
					}
				}()
				rp.ServeHTTP(w, r)
			}))
			defer front.Close()
			resp, err := http.Post(front.URL, "application/json", strings.NewReader(`{"process":{"cmd":"true"}}`))
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			whole := err == nil && strings.Count(string(body), "event\n") == chunks
			switch {
			case whole && !tc.whole:
				t.Errorf("without UpstreamBody the answer came whole: the test no longer reproduces the race it guards against (did net/http change?); revisit it and UpstreamBody")
			case !whole && tc.whole:
				t.Errorf("the streamed answer was cut (%d bytes, %v, %d aborts at the proxy); want all %d events", len(body), err, cut.Load(), chunks)
			}
		})
	}
}
