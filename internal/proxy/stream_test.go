package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestStreamingResponse(t *testing.T) {
	release := make(chan struct{})
	done := make(chan struct{})
	port := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprintln(w, `{"type":"stdout","text":"first"}`)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
			return
		}
		fmt.Fprintln(w, `{"type":"end_of_execution"}`)
	})
	srv, _ := startProxy(t, Config{}, nil)
	resp, err := http.DefaultClient.Do(newReq(t, srv, "POST", "/execute", port, strings.NewReader(`{"code":"1"}`)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first := make(chan string, 1)
	go func() {
		line, _ := br.ReadString('\n')
		first <- line
	}()
	select {
	case line := <-first:
		if line != "{\"type\":\"stdout\",\"text\":\"first\"}\n" {
			t.Fatalf("first line %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first chunk was held back by the proxy")
	}
	select {
	case <-done:
		t.Fatal("backend finished before the client saw the first chunk")
	default:
	}
	close(release)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "{\"type\":\"end_of_execution\"}\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

func TestChunkedUpload(t *testing.T) {
	const size = 4<<20 + 17
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	gotFirst := make(chan struct{})
	port := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if len(r.TransferEncoding) == 0 || r.TransferEncoding[0] != "chunked" {
			http.Error(w, fmt.Sprintf("transfer encoding %v, length %d", r.TransferEncoding, r.ContentLength), 400)
			return
		}
		h := sha256.New()
		if _, err := io.CopyN(h, r.Body, 1024); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		close(gotFirst)
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		fmt.Fprintf(w, "%d %x", n+1024, h.Sum(nil))
	})
	srv, _ := startProxy(t, Config{}, nil)
	pr, pw := io.Pipe()
	go func() {
		// The first KiB must reach the backend before the rest is written: the
		// proxy streams request bodies instead of buffering them.
		if _, err := pw.Write(data[:1024]); err != nil {
			pw.CloseWithError(err)
			return
		}
		select {
		case <-gotFirst:
		case <-time.After(10 * time.Second):
			pw.CloseWithError(fmt.Errorf("backend never saw the first KiB"))
			return
		}
		for off := 1024; off < size; off += 64 << 10 {
			if _, err := pw.Write(data[off:min(off+64<<10, size)]); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.Close()
	}()
	resp, body := do(t, newReq(t, srv, "POST", "/files?path=/tmp/x", port, pr))
	sum := sha256.Sum256(data)
	if want := fmt.Sprintf("%d %s", size, hex.EncodeToString(sum[:])); resp.StatusCode != 200 || body != want {
		t.Fatalf("got %d %q, want %q", resp.StatusCode, body, want)
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	port := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			r.Header.Get("Sec-WebSocket-Key"))
		brw.Flush()
		buf := make([]byte, 4096)
		for {
			n, err := brw.Read(buf)
			if err != nil {
				return
			}
			conn.Write(flip(buf[:n]))
		}
	})
	srv, _ := startProxy(t, Config{}, nil)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %d-%s.localhost:3001\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", port, testID)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "dGhlIHNhbXBsZSBub25jZQ==" {
		t.Fatalf("upgrade answer %d %v", resp.StatusCode, resp.Header)
	}
	for _, msg := range []string{"hello", "raw bytes \x00\x01\xff both ways"} {
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatal(err)
		}
		if want := flip([]byte(msg)); !bytes.Equal(got, want) {
			t.Fatalf("echo %q, want %q", got, want)
		}
	}
}

// flip inverts every byte, so the echo proves the bytes went through the backend.
func flip(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = ^c
	}
	return out
}

func TestNoRedirectFollowing(t *testing.T) {
	port := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/target" {
			fmt.Fprint(w, "followed")
			return
		}
		http.Redirect(w, r, "/target", http.StatusFound)
	})
	srv, _ := startProxy(t, Config{}, nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(newReq(t, srv, "GET", "/start", port, nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/target" {
		t.Fatalf("got %d Location %q, want the 302 passed through", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestEncodingPassesThrough(t *testing.T) {
	port := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Accept-Encoding", r.Header.Get("Accept-Encoding"))
		w.Header().Set("X-Seen-Content-Encoding", r.Header.Get("Content-Encoding"))
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(body) // the client's gzip bytes, back as they came
	})
	srv, _ := startProxy(t, Config{}, nil)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("compressed payload"))
	zw.Close()
	req := newReq(t, srv, "POST", "/", port, bytes.NewReader(gz.Bytes()))
	req.Header.Set("Accept-Encoding", "gzip, deflate")
	req.Header.Set("Content-Encoding", "gzip")
	// A raw transport: no transparent decompression on the test side either.
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("X-Seen-Accept-Encoding") != "gzip, deflate" || resp.Header.Get("X-Seen-Content-Encoding") != "gzip" {
		t.Errorf("backend saw Accept-Encoding %q Content-Encoding %q",
			resp.Header.Get("X-Seen-Accept-Encoding"), resp.Header.Get("X-Seen-Content-Encoding"))
	}
	if resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(got, gz.Bytes()) {
		t.Errorf("response re-encoded: Content-Encoding %q, %d bytes", resp.Header.Get("Content-Encoding"), len(got))
	}
}

func TestIsDialError(t *testing.T) {
	timeout := &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}
	if !isDialError(fmt.Errorf("wrapped: %w", timeout)) {
		t.Error("dial timeout not classified as a dial error")
	}
	if isDialError(&net.OpError{Op: "read", Net: "tcp", Err: io.ErrUnexpectedEOF}) || isDialError(io.EOF) {
		t.Error("non-dial error classified as a dial error")
	}
}

// TestBufferedBodiesBounded: the request bodies the proxy holds at once stay within
// MaxBufferedBytes; a body that would pass it is refused with 503 and Retry-After, and
// the budget comes back when the request holding it ends.
func TestBufferedBodiesBounded(t *testing.T) {
	release := make(chan struct{})
	holding := make(chan struct{}, 1)
	port := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/hold" {
			holding <- struct{}{}
			<-release
		}
		fmt.Fprintf(w, "got %d", n)
	})
	srv, _ := startProxy(t, Config{MaxBufferedBytes: 1000}, nil)
	held := make(chan string, 1)
	go func() {
		resp, err := http.DefaultClient.Do(newReq(t, srv, "POST", "/hold", port, strings.NewReader(strings.Repeat("a", 600))))
		if err != nil {
			held <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		held <- string(b)
	}()
	<-holding
	resp, body := do(t, newReq(t, srv, "POST", "/x", port, strings.NewReader(strings.Repeat("b", 600))))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "retry") {
		t.Errorf("a body over the bound: %d Retry-After %q %s; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp, body := do(t, newReq(t, srv, "POST", "/x", port, strings.NewReader(strings.Repeat("c", 300)))); resp.StatusCode != 200 || body != "got 300" {
		t.Errorf("a body within the bound: %d %s", resp.StatusCode, body)
	}
	close(release)
	if got := <-held; got != "got 600" {
		t.Errorf("the held request: %s", got)
	}
	if resp, body := do(t, newReq(t, srv, "POST", "/x", port, strings.NewReader(strings.Repeat("b", 600)))); resp.StatusCode != 200 || body != "got 600" {
		t.Errorf("after the held request ended: %d %s; want the budget back", resp.StatusCode, body)
	}
}
