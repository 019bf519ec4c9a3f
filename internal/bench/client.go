package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// apiError is an answer of the API outside 2xx.
type apiError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), strings.TrimSpace(e.Body))
}

// unsupported says why the server cannot do what a measurement asks, or "" when err
// is some other failure: a route it does not have (404 with no such route, 405, 501),
// or a 409 refusal (the measurement only asks of running sandboxes what a server that
// has the operation does, so a conflict means this server or runtime cannot).
func unsupported(err error) string {
	var ae *apiError
	if !errors.As(err, &ae) {
		return ""
	}
	switch ae.Status {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented, http.StatusConflict:
		return fmt.Sprintf("the server cannot: %s %s answered %d: %s", ae.Method, ae.Path, ae.Status, message(ae.Body))
	}
	return ""
}

// message is the "message" of an API error body, or the body itself.
func message(body string) string {
	var e struct {
		Message string `json:"message"`
		Error   any    `json:"error"`
	}
	if json.Unmarshal([]byte(body), &e) == nil {
		if e.Message != "" {
			return e.Message
		}
		if m, ok := e.Error.(map[string]any); ok {
			if s, ok := m["message"].(string); ok {
				return s
			}
		}
		if s, ok := e.Error.(string); ok {
			return s
		}
	}
	return strings.TrimSpace(body)
}

// client speaks to the API with one connection pool, so that measured calls reuse
// their connection as a real client's would.
type client struct {
	url, key string
	http     *http.Client
}

func newClient(url, key string) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	return &client{url: strings.TrimRight(url, "/"), key: key, http: &http.Client{Transport: tr}}
}

func (c *client) request(ctx context.Context, method, path, body string) (*http.Response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w (is warren serve running at %s?)", method, path, err, c.url)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, &apiError{Method: method, Path: path, Status: resp.StatusCode, Body: string(b)}
	}
	return resp, nil
}

// call sends a JSON request and decodes the answer into out (nil: discard it).
func (c *client) call(ctx context.Context, method, path, body string, out any) error {
	resp, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: the answer is not the JSON expected: %w", method, path, err)
		}
	}
	return nil
}

// sandbox is what the bench reads of a sandbox the API answers.
type sandbox struct {
	ID     string `json:"id"`
	Limits struct {
		MemoryMB int `json:"memory_mb"`
	} `json:"limits"`
}

func (c *client) create(ctx context.Context, body string) (sandbox, error) {
	var sb sandbox
	err := c.call(ctx, "POST", "/v1/sandboxes", body, &sb)
	if err == nil && sb.ID == "" {
		err = errors.New("POST /v1/sandboxes answered no sandbox id")
	}
	return sb, err
}

// kill deletes a sandbox, whatever ctx's state, and waits no more than 30 s.
func (c *client) kill(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = c.call(ctx, "DELETE", "/v1/sandboxes/"+id, "", nil)
}

// firstOutput runs /bin/echo (directly, as the baseline does: no shell) in sandbox id
// with streaming and returns once its first output arrives.
func (c *client) firstOutput(ctx context.Context, id string) error {
	resp, err := c.request(ctx, "POST", "/v1/sandboxes/"+id+"/commands", `{"args":["/bin/echo","hello"],"stream":true}`)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == "event: stdout" {
			return nil
		}
	}
	return errors.New("the command's event stream ended without output")
}

// exec runs a shell line without streaming and checks that it succeeded.
func (c *client) exec(ctx context.Context, id, cmd string) error {
	_, err := c.output(ctx, id, cmd)
	return err
}

// output runs a shell line without streaming and returns its stdout once it has
// succeeded; a failure says how, with the end of its stderr.
func (c *client) output(ctx context.Context, id, cmd string) (string, error) {
	body, _ := json.Marshal(map[string]string{"cmd": cmd})
	var res struct {
		ExitCode int    `json:"exit_code"`
		Stdout   string `json:"stdout"`
		Stderr   string `json:"stderr"`
	}
	if err := c.call(ctx, "POST", "/v1/sandboxes/"+id+"/commands", string(body), &res); err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		stderr := strings.TrimSpace(res.Stderr)
		if len(stderr) > 300 {
			stderr = "..." + stderr[len(stderr)-300:]
		}
		return "", fmt.Errorf("%.60q exited with %d: %s", cmd, res.ExitCode, stderr)
	}
	return res.Stdout, nil
}

// execute runs a code cell and returns the text of its main result.
func (c *client) execute(ctx context.Context, id, code string) (string, error) {
	body, _ := json.Marshal(map[string]string{"code": code})
	var ex struct {
		Results []struct {
			IsMainResult bool   `json:"is_main_result"`
			Text         string `json:"text"`
		} `json:"results"`
		Error *struct{ Name, Value string } `json:"error"`
	}
	if err := c.call(ctx, "POST", "/v1/sandboxes/"+id+"/execute", string(body), &ex); err != nil {
		return "", err
	}
	if ex.Error != nil {
		return "", fmt.Errorf("cell raised %s: %s", ex.Error.Name, ex.Error.Value)
	}
	for _, r := range ex.Results {
		if r.IsMainResult {
			return r.Text, nil
		}
	}
	return "", nil
}
