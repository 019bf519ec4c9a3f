package edgetest

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// FuzzInput is one input of a route fuzz target: which route, the value for its path
// wildcards, a raw query string and a body.
type FuzzInput struct {
	Route uint8
	Seg   string
	Query string
	Body  []byte
}

var wildcard = regexp.MustCompile(`\{[A-Za-z]+\}`)

// SeedRoutes adds a plain seed for each route ("METHOD /pattern") and the extra ones.
func SeedRoutes(f *testing.F, routes []string, extra ...FuzzInput) {
	for i := range routes {
		f.Add(uint8(i), "abcdefghij0123456789", "", []byte(`{}`))
	}
	for _, in := range extra {
		f.Add(in.Route, in.Seg, in.Query, in.Body)
	}
}

// FuzzRoute runs one fuzz input against routes ("METHOD /pattern"): the pattern's
// wildcards become the escaped segment, the query is sent raw, and send serves the
// request (adding the API's credentials) within 5 s. It fails t when serving panicked
// (logs holds the server's log); ok is false for an input that makes no URL.
func FuzzRoute(t *testing.T, routes []string, in FuzzInput, logs *LogBuffer, send func(*http.Request) Result) (what string, res Result, ok bool) {
	t.Helper()
	method, pattern, _ := strings.Cut(routes[int(in.Route)%len(routes)], " ")
	u, err := url.Parse(wildcard.ReplaceAllLiteralString(pattern, url.PathEscape(in.Seg)))
	if err != nil {
		return "", Result{}, false
	}
	u.RawQuery = in.Query
	r := NewRequest(t, method, "/", in.Body)
	r.URL, r.RequestURI = u, ""
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	res = send(r.WithContext(ctx))
	what = method + " " + u.String()
	if strings.Contains(logs.String(), "panic") {
		t.Fatalf("%s panicked:\n%s", what, logs.String())
	}
	return what, res, true
}
