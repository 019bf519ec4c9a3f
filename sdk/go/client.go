package warren

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// DefaultAPIURL is the API address used when neither WithAPIURL nor WARREN_API_URL
// gives one: a `warren serve` on the same machine.
const DefaultAPIURL = "http://127.0.0.1:3000"

// Version is the SDK's version, sent in the User-Agent header.
const Version = "0.1.0"

// Client calls one Warren server. Make it with New; it is safe for concurrent use.
type Client struct {
	base      string // scheme://host[/prefix], no trailing slash
	key       string
	domain    string
	hc        *http.Client
	retry     RetryPolicy
	userAgent string
}

// Option configures a Client.
type Option func(*settings) error

// settings collects the options before New fills in defaults; the *Set flags tell an
// explicit empty value from an absent one.
type settings struct {
	apiURL, apiKey, domain string
	urlSet, keySet         bool
	hc                     *http.Client
	retry                  RetryPolicy
	userAgent              string
	env                    func(string) string
}

// WithAPIURL sets the server's address, e.g. "https://warren.example.com" (default:
// WARREN_API_URL, else DefaultAPIURL). A path prefix is kept.
func WithAPIURL(u string) Option {
	return func(s *settings) error { s.apiURL, s.urlSet = u, u != ""; return nil }
}

// WithAPIKey sets the credentials: an API key (sk_...) or a console session token
// (ws_... from Client.Login). Default: WARREN_API_KEY. An explicit empty key sends no
// credentials (enough for Login).
func WithAPIKey(key string) Option {
	return func(s *settings) error { s.apiKey, s.keySet = key, true; return nil }
}

// WithHTTPClient sets the HTTP client. The default has no overall timeout, since
// streams and large files take as long as they take: bound calls with their context.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *settings) error {
		if hc == nil {
			return errors.New("warren: WithHTTPClient: nil client")
		}
		s.hc = hc
		return nil
	}
}

// WithRetry sets how 429 and 503 answers are retried; zero fields take
// DefaultRetryPolicy's values, and MaxAttempts 1 turns retries off.
func WithRetry(p RetryPolicy) Option {
	return func(s *settings) error {
		if p.MaxAttempts < 0 || p.BaseDelay < 0 || p.MaxDelay < 0 || p.MaxRetryAfter < 0 {
			return errors.New("warren: WithRetry: negative value in the retry policy")
		}
		s.retry = p
		return nil
	}
}

// WithSandboxDomain overrides the sandbox domain used by Sandbox.GetHost: port P of
// sandbox S is then taken to be reachable at "P-S.<domain>". Default: WARREN_DOMAIN,
// else none: GetHost uses the domain the server reports with each sandbox. Set it when
// clients reach the proxy under another name than the server knows.
func WithSandboxDomain(domain string) Option {
	return func(s *settings) error { s.domain = domain; return nil }
}

// WithUserAgent sets the User-Agent header (default "warren-go/<Version>").
func WithUserAgent(ua string) Option {
	return func(s *settings) error { s.userAgent = ua; return nil }
}

// WithEnv replaces os.Getenv as the source of the WARREN_* defaults; a nil function
// reads no environment at all.
func WithEnv(getenv func(string) string) Option {
	return func(s *settings) error {
		if getenv == nil {
			getenv = func(string) string { return "" }
		}
		s.env = getenv
		return nil
	}
}

// New returns a client configured by opts, then by the environment (WARREN_API_URL,
// WARREN_API_KEY, WARREN_DOMAIN), then by defaults.
func New(opts ...Option) (*Client, error) {
	s := settings{env: os.Getenv}
	for _, opt := range opts {
		if err := opt(&s); err != nil {
			return nil, err
		}
	}
	if !s.urlSet {
		s.apiURL = strings.TrimSpace(s.env("WARREN_API_URL"))
	}
	if s.apiURL == "" {
		s.apiURL = DefaultAPIURL
	}
	if !s.keySet {
		s.apiKey = strings.TrimSpace(s.env("WARREN_API_KEY"))
	}
	base, err := parseBaseURL(s.apiURL)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base, key: s.apiKey, hc: s.hc, retry: s.retry.withDefaults(), userAgent: s.userAgent}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.userAgent == "" {
		c.userAgent = "warren-go/" + Version
	}
	c.domain = s.domain
	if c.domain == "" {
		c.domain = strings.TrimSpace(s.env("WARREN_DOMAIN"))
	}
	return c, nil
}

// parseBaseURL checks an API URL and returns it without a trailing slash.
func parseBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("warren: API URL %q must look like http://host:port: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("warren: API URL %q must look like http://host:port", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("warren: API URL %q must not have a query or fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// APIURL returns the server address the client uses.
func (c *Client) APIURL() string { return c.base }

// SandboxDomain returns the sandbox domain override GetHost uses ("" for none: the
// server's, per sandbox).
func (c *Client) SandboxDomain() string { return c.domain }
