package agentclient

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"

	"connectrpc.com/connect"

	"github.com/warren-sh/warren/internal/envdpb/filesystem/filesystemconnect"
	"github.com/warren-sh/warren/internal/envdpb/process/processconnect"
)

// Identity is what POST /init gives a sandbox's agent: a sandbox restored from a
// snapshot, forked from another or taken from a pool starts with the identity it was
// saved with, and takes its own this way before it is handed out. Empty fields change
// nothing; EnvVars are added to the sandbox-wide env.
type Identity struct {
	AccessToken string            `json:"accessToken,omitempty"`
	Hostname    string            `json:"hostname,omitempty"`
	EnvVars     map[string]string `json:"envVars,omitempty"`
	DefaultUser string            `json:"defaultUser,omitempty"`
}

// Init sends POST /init with the client's token (the agent's current one, which it
// requires once it has one). After a new AccessToken, make a new Client with it: this
// one keeps sending the old token.
func (c *Client) Init(ctx context.Context, id Identity) error {
	body, err := json.Marshal(id)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/init", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Access-Token", c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return unreachable("initialising the agent", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return httpErr(resp, "/init")
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxReply) // lets the connection be reused
	return nil
}

// WithToken returns a client of the same agent that sends token, sharing this one's
// connection pool (so a request right after Init needs no new connection into the
// sandbox). Close either one only when both are done with.
func (c *Client) WithToken(token string) *Client {
	opts := []connect.ClientOption{connect.WithInterceptors(tokenInterceptor(token)), connect.WithReadMaxBytes(maxMessage)}
	return &Client{
		base: c.base, token: token, tr: c.tr, http: c.http,
		proc: processconnect.NewProcessClient(c.http, c.base, opts...),
		fs:   filesystemconnect.NewFilesystemClient(c.http, c.base, opts...),
	}
}
