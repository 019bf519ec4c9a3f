package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/envdpb/filesystem"
)

// multipartBody builds a body like the SDK's: one "file" part per file, filename
// = the full path.
func multipartBody(t *testing.T, files [][2]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s"`, f[0]))
		h.Set("Content-Type", "application/octet-stream")
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(f[1]))
	}
	other, _ := mw.CreateFormField("ignored")
	_, _ = other.Write([]byte("not a file"))
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

func gzipped(s string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(s))
	_ = zw.Close()
	return buf.Bytes()
}

type errorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func decodeError(t *testing.T, body []byte) errorBody {
	t.Helper()
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	return eb
}

func TestUpload(t *testing.T) {
	e := newTestEnv(t, Config{})
	d := e.dir
	type want struct {
		path, content string
		uid           uint32
	}
	tests := []struct {
		name     string
		query    string
		body     []byte
		ctype    string
		hdr      map[string]string
		status   int
		files    []want
		metadata map[string]string
	}{
		{
			name:   "multipart, full paths, no query",
			body:   must2(multipartBody(t, [][2]string{{d + "/m/one.txt", "1"}, {d + "/m/deep/two.txt", "22"}})),
			ctype:  "multipart",
			status: 200,
			files:  []want{{d + "/m/one.txt", "1", 0}, {d + "/m/deep/two.txt", "22", 0}},
		},
		{
			name:   "multipart, query path wins",
			query:  "path=" + url.QueryEscape(d+"/q/target.txt") + "&username=nobody",
			body:   must2(multipartBody(t, [][2]string{{"/ignored/name.txt", "qq"}})),
			ctype:  "multipart",
			status: 200,
			files:  []want{{d + "/q/target.txt", "qq", 65534}},
		},
		{
			name:   "multipart, relative filename resolved against home",
			body:   must2(multipartBody(t, [][2]string{{"../" + strings.TrimPrefix(d, "/") + "/rel.txt", "r"}})),
			ctype:  "multipart",
			status: 200,
			files:  []want{{d + "/rel.txt", "r", 0}},
		},
		{
			name:   "multipart, non-ASCII filename with spaces",
			body:   must2(multipartBody(t, [][2]string{{d + "/ü dir/naïve file.txt", "u"}})),
			ctype:  "multipart",
			status: 200,
			files:  []want{{d + "/ü dir/naïve file.txt", "u", 0}},
		},
		{
			name:   "multipart, duplicate paths",
			body:   must2(multipartBody(t, [][2]string{{d + "/dup.txt", "a"}, {d + "/dup.txt", "b"}})),
			ctype:  "multipart",
			status: 400,
		},
		{
			name:   "octet-stream",
			query:  "path=" + url.QueryEscape(d+"/o/raw.bin") + "&username=nobody",
			body:   []byte("raw bytes"),
			ctype:  "application/octet-stream",
			status: 200,
			files:  []want{{d + "/o/raw.bin", "raw bytes", 65534}},
		},
		{
			name:   "octet-stream gzip",
			query:  "path=" + url.QueryEscape(d+"/o2/gz.txt"),
			body:   gzipped("compressed content"),
			ctype:  "application/octet-stream",
			hdr:    map[string]string{"Content-Encoding": "gzip"},
			status: 200,
			files:  []want{{d + "/o2/gz.txt", "compressed content", 0}},
		},
		{
			name:     "metadata headers",
			query:    "path=" + url.QueryEscape(d+"/meta.txt"),
			body:     []byte("m"),
			ctype:    "application/octet-stream",
			hdr:      map[string]string{"X-Metadata-Author": "alice", "X-Metadata-Kind": "Report"},
			status:   200,
			files:    []want{{d + "/meta.txt", "m", 0}},
			metadata: map[string]string{"author": "alice", "kind": "Report"},
		},
		{name: "octet-stream without path", body: []byte("x"), ctype: "application/octet-stream", status: 400},
		{name: "unsupported content type", query: "path=" + d + "/x", body: []byte("x"), ctype: "text/plain", status: 400},
		{name: "bad gzip", query: "path=" + d + "/x", body: []byte("not gzip"), ctype: "application/octet-stream", hdr: map[string]string{"Content-Encoding": "gzip"}, status: 400},
		{name: "target is a directory", query: "path=" + url.QueryEscape(d), body: []byte("x"), ctype: "application/octet-stream", status: 400},
		{name: "unknown user", query: "path=" + d + "/x&username=no-such-user-xyz", body: []byte("x"), ctype: "application/octet-stream", status: 401},
		{name: "multipart without file parts", body: must2(multipartBody(t, nil)), ctype: "multipart", status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Content-Type": tc.ctype}
			if tc.ctype == "multipart" {
				hdr["Content-Type"] = mpType(tc.body)
			}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			resp, body := e.httpDo(t, "POST", "/files?"+tc.query, tc.body, hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status != 200 {
				if eb := decodeError(t, body); eb.Code != tc.status || eb.Message == "" {
					t.Fatalf("error body %s", body)
				}
				return
			}
			var got []uploadedFile
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("response %q: %v", body, err)
			}
			if len(got) != len(tc.files) {
				t.Fatalf("response %s, want %d files", body, len(tc.files))
			}
			for i, w := range tc.files {
				if got[i].Path != w.path || got[i].Name != filepath.Base(w.path) || got[i].Type != "file" {
					t.Errorf("response[%d] = %+v, want path %s", i, got[i], w.path)
				}
				content, err := os.ReadFile(w.path)
				if err != nil || string(content) != w.content {
					t.Errorf("%s: %q, %v; want %q", w.path, content, err, w.content)
				}
				if uid := ownerOf(t, w.path); uid != w.uid {
					t.Errorf("%s owned by %d, want %d", w.path, uid, w.uid)
				}
				if uid := ownerOf(t, filepath.Dir(w.path)); filepath.Dir(w.path) != d && uid != w.uid {
					t.Errorf("created parent of %s owned by %d, want %d", w.path, uid, w.uid)
				}
			}
			if tc.metadata != nil {
				st, err := e.fs.Stat(context.Background(), connect.NewRequest(&filesystem.StatRequest{Path: tc.files[0].path}))
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range tc.metadata {
					if st.Msg.GetEntry().GetMetadata()[k] != v || got[0].Metadata[k] != v {
						t.Errorf("metadata %v / response %v, want %v", st.Msg.GetEntry().GetMetadata(), got[0].Metadata, tc.metadata)
					}
				}
			}
		})
	}
	t.Run("metadata is replaced", func(t *testing.T) {
		p := "path=" + url.QueryEscape(d+"/meta2.txt")
		e.httpDo(t, "POST", "/files?"+p, []byte("1"), map[string]string{"Content-Type": "application/octet-stream", "X-Metadata-A": "1", "X-Metadata-B": "2"})
		e.httpDo(t, "POST", "/files?"+p, []byte("2"), map[string]string{"Content-Type": "application/octet-stream", "X-Metadata-C": "3"})
		if md := readMetadata(d + "/meta2.txt"); len(md) != 1 || md["c"] != "3" {
			t.Fatalf("metadata %v, want only c=3", md)
		}
	})
}

func must2(b []byte, _ string) []byte { return b }

// mpType recovers the multipart Content-Type from a body built by multipartBody.
func mpType(body []byte) string {
	boundary := strings.TrimPrefix(strings.SplitN(string(body), "\r\n", 2)[0], "--")
	return "multipart/form-data; boundary=" + boundary
}

func TestDownload(t *testing.T) {
	e := newTestEnv(t, Config{})
	content := strings.Repeat("0123456789", 1000)
	file := filepath.Join(e.dir, "data.txt")
	mustWrite(t, file, content)
	q := "/files?path=" + url.QueryEscape(file)
	tests := []struct {
		name     string
		path     string
		hdr      map[string]string
		status   int
		body     string
		encoding string
	}{
		{name: "identity", path: q, hdr: map[string]string{"Accept-Encoding": "identity"}, status: 200, body: content},
		{name: "no Accept-Encoding", path: q, status: 200, body: content},
		{name: "gzip when accepted", path: q, hdr: map[string]string{"Accept-Encoding": "gzip, deflate"}, status: 200, body: content, encoding: "gzip"},
		{name: "gzip refused", path: q, hdr: map[string]string{"Accept-Encoding": "gzip;q=0, identity"}, status: 200, body: content},
		{name: "range", path: q, hdr: map[string]string{"Range": "bytes=10-19", "Accept-Encoding": "gzip"}, status: 206, body: "0123456789"},
		{name: "unsatisfiable range", path: q, hdr: map[string]string{"Range": "bytes=999999-"}, status: 416},
		{name: "nothing acceptable", path: q, hdr: map[string]string{"Accept-Encoding": "br, identity;q=0"}, status: 406},
		{name: "tilde path", path: "/files?path=" + url.QueryEscape("~/../"+strings.TrimPrefix(file, "/")), status: 200, body: content},
		{name: "missing", path: "/files?path=" + url.QueryEscape(e.dir+"/nope"), status: 404},
		{name: "directory", path: "/files?path=" + url.QueryEscape(e.dir), status: 400},
		{name: "no path", path: "/files", status: 400},
		{name: "unknown user", path: q + "&username=no-such-user-xyz", status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.httpDo(t, "GET", tc.path, nil, tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status >= 400 {
				eb := decodeError(t, body)
				if eb.Code != tc.status {
					t.Fatalf("error body %s", body)
				}
				if tc.status == 404 && eb.Message != fmt.Sprintf("path '%s' does not exist", e.dir+"/nope") {
					t.Fatalf("404 message %q", eb.Message)
				}
				return
			}
			if got := resp.Header.Get("Content-Encoding"); got != tc.encoding {
				t.Fatalf("Content-Encoding %q, want %q", got, tc.encoding)
			}
			if tc.encoding == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				body, _ = io.ReadAll(zr)
			}
			if string(body) != tc.body {
				t.Fatalf("body %d bytes, want %d", len(body), len(tc.body))
			}
			if resp.Header.Get("Content-Disposition") != `inline; filename=data.txt` {
				t.Errorf("Content-Disposition %q", resp.Header.Get("Content-Disposition"))
			}
		})
	}
	t.Run("empty file", func(t *testing.T) {
		mustWrite(t, e.dir+"/empty", "")
		resp, body := e.httpDo(t, "GET", "/files?path="+url.QueryEscape(e.dir+"/empty"), nil, nil)
		if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") != "0" {
			t.Fatalf("status %d length %q body %q", resp.StatusCode, resp.Header.Get("Content-Length"), body)
		}
	})
}

func TestSignedURLs(t *testing.T) {
	const token = "s3cret"
	e := newTestEnv(t, Config{AccessToken: token})
	file := filepath.Join(e.dir, "signed.txt")
	mustWrite(t, file, "signed content")
	future := time.Now().Add(time.Hour).Unix()
	past := time.Now().Add(-time.Minute).Unix()
	signed := func(path, op, user string, exp *int64) string {
		v := url.Values{"path": {path}, "signature": {signFiles(path, op, user, token, exp)}}
		if user != "" {
			v.Set("username", user)
		}
		if exp != nil {
			v.Set("signature_expiration", strconv.FormatInt(*exp, 10))
		}
		return "/files?" + v.Encode()
	}
	tests := []struct {
		name   string
		method string
		url    string
		hdr    map[string]string
		status int
	}{
		{"read, no credentials", "GET", "/files?path=" + url.QueryEscape(file), nil, 401},
		{"read, token header", "GET", "/files?path=" + url.QueryEscape(file), map[string]string{"X-Access-Token": token}, 200},
		{"read, wrong token header", "GET", signed(file, opRead, "", nil), map[string]string{"X-Access-Token": "wrong"}, 401},
		{"read, signature", "GET", signed(file, opRead, "", nil), nil, 200},
		{"read, signature with user", "GET", signed(file, opRead, "root", nil), nil, 200},
		{"read, signature with expiration", "GET", signed(file, opRead, "", &future), nil, 200},
		{"read, expired signature", "GET", signed(file, opRead, "", &past), nil, 401},
		{"read, write signature", "GET", signed(file, opWrite, "", nil), nil, 401},
		{"read, signature for another user", "GET", strings.Replace(signed(file, opRead, "root", nil), "username=root", "username=nobody", 1), nil, 401},
		{"read, tampered signature", "GET", signed(file, opRead, "", nil) + "x", nil, 401},
		{"write, signature", "POST", signed(e.dir+"/up.txt", opWrite, "", nil), map[string]string{"Content-Type": "application/octet-stream"}, 200},
		{"write, read signature", "POST", signed(e.dir+"/up.txt", opRead, "", nil), map[string]string{"Content-Type": "application/octet-stream"}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.httpDo(t, tc.method, tc.url, []byte("uploaded"), tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status == 401 && decodeError(t, body).Code != 401 {
				t.Fatalf("401 body %s", body)
			}
		})
	}
	// Reference vectors computed independently (Python hashlib + base64, padding stripped).
	exp := int64(1700000000)
	for _, v := range []struct{ got, want string }{
		{signFiles("/a", "read", "", "t", nil), "v1_JoRdqlk+vPpFDod7BWD3WYzaByL1n9Wq0flHHjoIpmE"},
		{signFiles("/a", "write", "user", "t", &exp), "v1_V53J2mif+urczyfEIDXjbTbyBTmu5D6+uQpaWxKcfQM"},
	} {
		if v.got != v.want {
			t.Errorf("signature %s, want %s", v.got, v.want)
		}
	}
}

func TestUploadNoSpace(t *testing.T) {
	e := newTestEnv(t, Config{})
	mnt := filepath.Join(e.dir, "small")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v); this needs CAP_SYS_ADMIN", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })
	resp, body := e.httpDo(t, "POST", "/files?path="+url.QueryEscape(mnt+"/big.bin"),
		bytes.Repeat([]byte("x"), 1<<20), map[string]string{"Content-Type": "application/octet-stream"})
	if resp.StatusCode != 507 || decodeError(t, body).Code != 507 {
		t.Fatalf("status %d body %s, want 507", resp.StatusCode, body)
	}
}
