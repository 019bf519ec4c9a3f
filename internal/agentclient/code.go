package agentclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/warren-sh/warren/internal/domain"
)

// CodePort is the port of the code interpreter in templates that have one.
const CodePort = "49999"

// Code runs code on the sandbox's code interpreter (the code-interpreter template's
// server on CodePort): cells, and the contexts they run in. Make it with Client.Code.
type Code struct{ c *Client }

func (cd Code) codeURL(path string) string {
	u, _ := url.Parse(cd.c.base)
	host, _, _ := net.SplitHostPort(u.Host)
	return "http://" + net.JoinHostPort(host, CodePort) + path
}

func (cd Code) codeDo(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, cd.codeURL(path), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Access-Token", cd.c.token)
	resp, err := cd.c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, domain.Errorf(domain.KindConflict, "this sandbox has no code interpreter; create the sandbox from the code-interpreter template")
		}
		return nil, &domain.Error{Kind: domain.KindUnavailable, Err: err,
			Message: "the sandbox's code interpreter did not answer; check that the sandbox is still running, then retry"}
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		msg := strings.TrimSpace(string(b))
		switch resp.StatusCode {
		case http.StatusNotFound:
			return nil, domain.Errorf(domain.KindNotFound, "code interpreter: %s", msg)
		case http.StatusBadRequest:
			return nil, domain.Errorf(domain.KindInvalid, "code interpreter: %s", msg)
		}
		return nil, fmt.Errorf("code interpreter answered %s: %s", resp.Status, msg)
	}
	return resp, nil
}

type executeRequest struct {
	Code      string            `json:"code"`
	ContextID string            `json:"context_id,omitempty"`
	Language  string            `json:"language,omitempty"`
	EnvVars   map[string]string `json:"env_vars,omitempty"`
	Timeout   float64           `json:"timeout,omitempty"`
}

// maxCodeLine bounds one line of the interpreter's output stream: a result line holds
// a whole image or chart, base64-encoded.
const maxCodeLine = 16 << 20

// RunCode executes a cell and hands every NDJSON line to onEvent as it arrives. A
// line longer than maxCodeLine ends it with an error.
func (cd Code) RunCode(ctx context.Context, req domain.RunCode, onEvent func(domain.CodeEvent) error) error {
	body := executeRequest{Code: req.Code, ContextID: req.ContextID, Language: req.Language, EnvVars: req.Env}
	if req.Timeout > 0 {
		body.Timeout = req.Timeout.Seconds()
	}
	resp, err := cd.codeDo(ctx, http.MethodPost, "/execute", body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxCodeLine)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(line, &head); err != nil {
			return fmt.Errorf("code interpreter sent a line that is not JSON: %.100q", line)
		}
		if err := onEvent(domain.CodeEvent{Type: head.Type, Raw: append(json.RawMessage(nil), line...)}); err != nil {
			return err
		}
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return domain.Errorf(domain.KindConflict, "the code interpreter sent an output line of more than %d MiB, which the server does not read; print less at once", maxCodeLine>>20)
	} else if err != nil {
		return &domain.Error{Kind: domain.KindUnavailable, Err: err,
			Message: "the code interpreter's stream broke off; check that the sandbox is still running, then run the code again"}
	}
	return nil
}

// CreateCodeContext creates an interpreter context.
func (cd Code) CreateCodeContext(ctx context.Context, language, cwd string) (*domain.CodeContext, error) {
	body := map[string]string{}
	if language != "" {
		body["language"] = language
	}
	if cwd != "" {
		body["cwd"] = cwd
	}
	resp, err := cd.codeDo(ctx, http.MethodPost, "/contexts", body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out domain.CodeContext
	if err := decodeReply(resp.Body, &out); err != nil {
		return nil, fmt.Errorf("decoding context: %w", err)
	}
	return &out, nil
}

// ListCodeContexts lists the interpreter's contexts.
func (cd Code) ListCodeContexts(ctx context.Context) ([]domain.CodeContext, error) {
	resp, err := cd.codeDo(ctx, http.MethodGet, "/contexts", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []domain.CodeContext
	if err := decodeReply(resp.Body, &out); err != nil {
		return nil, fmt.Errorf("decoding contexts: %w", err)
	}
	if out == nil {
		out = []domain.CodeContext{}
	}
	return out, nil
}

// RestartCodeContext restarts a context's kernel (its state is lost).
func (cd Code) RestartCodeContext(ctx context.Context, id string) error {
	resp, err := cd.codeDo(ctx, http.MethodPost, "/contexts/"+url.PathEscape(id)+"/restart", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// DeleteCodeContext removes a context.
func (cd Code) DeleteCodeContext(ctx context.Context, id string) error {
	resp, err := cd.codeDo(ctx, http.MethodDelete, "/contexts/"+url.PathEscape(id), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
