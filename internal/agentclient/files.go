package agentclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/envdpb/filesystem"
)

// Files reads and changes files in the sandbox as a given user: listings and stat over
// the agent's Filesystem service, contents streamed over its /files route. Make it with
// Client.Files.
type Files struct{ c *Client }

// ListDir lists path to depth levels.
func (f Files) ListDir(ctx context.Context, path, user string, depth int) ([]domain.FileInfo, error) {
	if user != "" {
		ctx = WithUser(ctx, user)
	}
	if depth < 1 {
		depth = 1
	}
	resp, err := f.c.fs.ListDir(ctx, connect.NewRequest(&filesystem.ListDirRequest{Path: path, Depth: uint32(depth)}))
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]domain.FileInfo, 0, len(resp.Msg.GetEntries()))
	for _, e := range resp.Msg.GetEntries() {
		out = append(out, entryInfo(e))
	}
	return out, nil
}

func entryInfo(e *filesystem.EntryInfo) domain.FileInfo {
	t := "file"
	switch e.GetType() {
	case filesystem.FileType_FILE_TYPE_DIRECTORY:
		t = "dir"
	case filesystem.FileType_FILE_TYPE_SYMLINK:
		t = "symlink"
	}
	fi := domain.FileInfo{Name: e.GetName(), Path: e.GetPath(), Type: t, Size: e.GetSize(), Mode: e.GetMode(), Owner: e.GetOwner(), Group: e.GetGroup()}
	if e.GetModifiedTime() != nil {
		fi.Modified = e.GetModifiedTime().AsTime()
	}
	return fi
}

// Stat describes path.
func (f Files) Stat(ctx context.Context, path, user string) (*domain.FileInfo, error) {
	if user != "" {
		ctx = WithUser(ctx, user)
	}
	resp, err := f.c.fs.Stat(ctx, connect.NewRequest(&filesystem.StatRequest{Path: path}))
	if err != nil {
		return nil, mapErr(err)
	}
	fi := entryInfo(resp.Msg.GetEntry())
	return &fi, nil
}

func (f Files) filesURL(path, user string) string {
	q := url.Values{"path": {path}}
	if user != "" {
		q.Set("username", user)
	}
	return f.c.base + "/files?" + q.Encode()
}

// WriteFile streams r into path (parents created, owned by user).
func (f Files) WriteFile(ctx context.Context, path, user string, r io.Reader) (*domain.FileInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.filesURL(path, user), r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Access-Token", f.c.token)
	resp, err := f.c.http.Do(req)
	if err != nil {
		return nil, unreachable("writing "+path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, httpErr(resp, path)
	}
	var entries []struct {
		Path string `json:"path"`
		Name string `json:"name"`
		Type string `json:"type"`
	}
	if err := decodeReply(resp.Body, &entries); err != nil || len(entries) == 0 {
		return nil, fmt.Errorf("agent upload answer unreadable: %w", err)
	}
	return f.Stat(ctx, entries[0].Path, user)
}

// ReadFile streams path's content into w.
func (f Files) ReadFile(ctx context.Context, path, user string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.filesURL(path, user), nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Access-Token", f.c.token)
	resp, err := f.c.http.Do(req)
	if err != nil {
		return unreachable("reading "+path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpErr(resp, path)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
