package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/api/edge/edgetest"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/fake"
)

func TestClassify(t *testing.T) {
	cases := append(edgetest.ErrorCases(), edgetest.LeakyErrors()...)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			got := Classify(c.Err)
			want := Class{Status: c.Status, Code: c.Code, Message: c.Message, Field: c.Field, RetryAfter: c.RetryAfter}
			if c.Status == 500 {
				want.Message, want.Internal = "internal error", true
			}
			quota := ""
			if got.Quota != nil {
				quota = got.Quota.Quota
			}
			got.Quota = nil
			if got != want || quota != c.Quota {
				t.Errorf("Classify(%v)\n got %+v, quota %q\nwant %+v, quota %q", c.Err, got, quota, want, c.Quota)
			}
			edgetest.NoSecrets(t, []byte(got.Message))
		})
	}
	t.Run("HTTP errors", func(t *testing.T) {
		r := httptest.NewRequest("PATCH", "/v1/x", nil)
		for err, want := range map[error]Class{
			NoRoute(r, "no route for", "see the docs"):                            {Status: 404, Code: "not_found", Message: "no route for PATCH /v1/x; see the docs"},
			MethodNotAllowed(r, "GET, HEAD"):                                      {Status: 405, Code: "method_not_allowed", Message: "method PATCH is not allowed on /v1/x; allowed: GET, HEAD"},
			fmt.Errorf("wrapped: %w", NotImplemented("pausing is not supported")): {Status: 501, Code: "not_implemented", Message: "pausing is not supported"},
			&http.MaxBytesError{Limit: 10}:                                        {Status: 413, Code: "invalid", Message: "request body is larger than 10 bytes"},
			fmt.Errorf("storing: %w", &domain.Error{Kind: domain.KindInvalid, Message: "the build context is too large", Err: &domain.TooLargeError{Limit: 5}}): {
				Status: 413, Code: "invalid", Message: "the build context is too large"},
		} {
			if got := Classify(err); got != want {
				t.Errorf("Classify(%v) = %+v, want %+v", err, got, want)
			}
		}
	})
}

// testEdge is an Edge whose renderer writes the Class itself as the body.
func testEdge(t *testing.T, quiet ...string) (*Edge, *edgetest.LogBuffer) {
	t.Helper()
	log, logs := edgetest.NewLogger()
	var e *Edge
	e = New(log, func(w http.ResponseWriter, r *http.Request, c Class) { e.WriteJSON(w, r, c.Status, c) }, quiet...)
	return e, logs
}

// serve runs h inside e.Serve.
func serve(t *testing.T, e *Edge, r *http.Request, h http.HandlerFunc) edgetest.Result {
	t.Helper()
	return edgetest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.Serve(w, r, h) }), r)
}

func class(t *testing.T, res edgetest.Result) Class {
	t.Helper()
	var c Class
	if err := json.Unmarshal(res.Body, &c); err != nil {
		t.Fatalf("body is not a Class: %v\n%s", err, res.Body)
	}
	return c
}

func TestServe(t *testing.T) {
	e, logs := testEdge(t, "/healthz")
	r := httptest.NewRequest("GET", "/x", nil)
	r.RemoteAddr = "[2001:db8::7]:50123"
	r.Header.Set("X-Request-Id", "from-proxy-42")
	var meta domain.RequestMeta
	res := serve(t, e, r, func(w http.ResponseWriter, r *http.Request) {
		meta = domain.RequestMetaFrom(r.Context())
		w.WriteHeader(http.StatusTeapot)
	})
	if res.Header.Get("X-Request-Id") != "from-proxy-42" || meta != (domain.RequestMeta{RemoteAddr: "2001:db8::7", RequestID: "from-proxy-42"}) {
		t.Errorf("request id %q, meta %+v", res.Header.Get("X-Request-Id"), meta)
	}
	if !strings.Contains(logs.String(), `"msg":"request","method":"GET","path":"/x","status":418`) ||
		!strings.Contains(logs.String(), `"request_id":"from-proxy-42"`) {
		t.Errorf("access log:\n%s", logs)
	}

	for _, junk := range []string{"bad id\nwith junk", strings.Repeat("a", 65)} {
		r = httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("X-Request-Id", junk)
		if got := serve(t, e, r, func(http.ResponseWriter, *http.Request) {}).Header.Get("X-Request-Id"); !strings.HasPrefix(got, "req_") {
			t.Errorf("junk id %q was not replaced: %q", junk, got)
		}
	}

	serve(t, e, httptest.NewRequest("GET", "/healthz", nil), func(http.ResponseWriter, *http.Request) {})
	if !strings.Contains(logs.String(), `"level":"DEBUG","msg":"request","method":"GET","path":"/healthz"`) {
		t.Errorf("health check not logged at debug:\n%s", logs)
	}
}

func TestPanic(t *testing.T) {
	e, logs := testEdge(t)
	res := serve(t, e, httptest.NewRequest("GET", "/x", nil), func(http.ResponseWriter, *http.Request) {
		panic("runsc stderr at 10.211.0.2")
	})
	c := class(t, res)
	id := res.Header.Get("X-Request-Id")
	if res.Status != 500 || !c.Internal || !strings.Contains(c.Message, id) {
		t.Errorf("panic answered %d %+v", res.Status, c)
	}
	edgetest.NoSecrets(t, res.Body)
	if l := logs.String(); !strings.Contains(l, "panic serving request") || !strings.Contains(l, "10.211.0.2") || !strings.Contains(l, `"status":500`) {
		t.Errorf("panic not logged:\n%s", l)
	}

	// http.ErrAbortHandler still aborts the connection.
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler", v)
		}
	}()
	e.Serve(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler)
	}))
}

// TestClassLogs checks what the operator log learns of an error, and the client not.
func TestClassLogs(t *testing.T) {
	cause := errors.New("dial tcp 10.211.0.2:49983: connection refused")
	cases := []struct {
		name  string
		err   error
		level string // "" for no log line
	}{
		{"internal", fmt.Errorf("exec: %w", cause), "ERROR"},
		{"unavailable with a cause", &domain.Error{Kind: domain.KindUnavailable, Message: "the agent did not answer", Err: cause}, "WARN"},
		{"unavailable, all said", domain.Errorf(domain.KindUnavailable, "node draining"), ""},
		{"not implemented", NotImplemented("no"), ""},
		{"client error with a cause", &domain.Error{Kind: domain.KindInvalid, Message: "bad", Err: cause}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, logs := testEdge(t)
			res := serve(t, e, httptest.NewRequest("GET", "/x", nil), func(w http.ResponseWriter, r *http.Request) {
				e.WriteError(w, r, c.err)
			})
			edgetest.NoSecrets(t, res.Body)
			l := logs.String()
			logged := strings.Contains(l, `"msg":"request failed"`)
			if logged != (c.level != "") {
				t.Fatalf("logged = %v, want %v:\n%s", logged, c.level != "", l)
			}
			if logged && (!strings.Contains(l, `"level":"`+c.level+`","msg":"request failed"`) ||
				!strings.Contains(l, `"request_id":"`+res.Header.Get("X-Request-Id")+`"`) || !strings.Contains(l, "10.211.0.2")) {
				t.Errorf("want a %s line with the request id and the cause:\n%s", c.level, l)
			}
		})
	}

	t.Run("client went away", func(t *testing.T) {
		e, logs := testEdge(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := httptest.NewRequest("GET", "/x", nil).WithContext(ctx)
		res := serve(t, e, r, func(w http.ResponseWriter, r *http.Request) {
			e.WriteError(w, r, fmt.Errorf("exec: %w", context.Canceled))
		})
		if !strings.Contains(logs.String(), `"level":"INFO","msg":"request failed"`) || !strings.Contains(logs.String(), `"status":499`) {
			t.Errorf("a canceled request is not an error:\n%s", logs)
		}
		if res.Status != StatusClientClosed || strings.Contains(string(res.Body), "internal") {
			t.Errorf("a canceled request answered %d %s, want 499 and no internal error", res.Status, res.Body)
		}
	})

	t.Run("an agent call cut short by the client going away", func(t *testing.T) {
		e, logs := testEdge(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := httptest.NewRequest("POST", "/v1/sandboxes/x/commands", nil).WithContext(ctx)
		err := &domain.Error{Kind: domain.KindUnavailable, Message: "the sandbox's agent did not answer", Err: fmt.Errorf("canceled: %w", context.Canceled)}
		res := serve(t, e, r, func(w http.ResponseWriter, r *http.Request) { e.WriteError(w, r, err) })
		if res.Status != StatusClientClosed || !strings.Contains(logs.String(), `"status":499`) || strings.Contains(logs.String(), `"level":"WARN"`) {
			t.Errorf("answered %d, want 499 logged at info:\n%s", res.Status, logs)
		}
	})

	t.Run("unavailable while the client is still there", func(t *testing.T) {
		e, _ := testEdge(t)
		err := &domain.Error{Kind: domain.KindUnavailable, Message: "the sandbox's agent did not answer", Err: fmt.Errorf("canceled: %w", context.Canceled)}
		res := serve(t, e, httptest.NewRequest("GET", "/x", nil), func(w http.ResponseWriter, r *http.Request) { e.WriteError(w, r, err) })
		if res.Status != 503 {
			t.Errorf("answered %d, want 503", res.Status)
		}
	})

	t.Run("canceled while the client is still there", func(t *testing.T) {
		e, logs := testEdge(t)
		res := serve(t, e, httptest.NewRequest("GET", "/x", nil), func(w http.ResponseWriter, r *http.Request) {
			e.WriteError(w, r, fmt.Errorf("exec: %w", context.Canceled))
		})
		if res.Status != 500 || !strings.Contains(logs.String(), `"level":"ERROR","msg":"request failed"`) {
			t.Errorf("a cancellation of the server's own is an internal error: %d\n%s", res.Status, logs)
		}
	})
}

func TestAdapt(t *testing.T) {
	e, logs := testEdge(t)
	h := e.Adapt(func(w http.ResponseWriter, r *http.Request) error {
		if r.URL.Query().Has("started") {
			_, _ = w.Write([]byte("partial"))
		}
		return domain.Errorf(domain.KindConflict, "busy")
	})
	if res := serve(t, e, httptest.NewRequest("GET", "/x", nil), h.ServeHTTP); res.Status != 409 || class(t, res).Message != "busy" {
		t.Errorf("error before the response: %d %s", res.Status, res.Body)
	}
	res := serve(t, e, httptest.NewRequest("GET", "/x?started", nil), h.ServeHTTP)
	if res.Status != 200 || string(res.Body) != "partial" || !strings.Contains(logs.String(), "request failed after the response started") {
		t.Errorf("error after the response started: %d %s\n%s", res.Status, res.Body, logs)
	}
}

func TestBearerToken(t *testing.T) {
	for header, want := range map[string]string{
		"": "missing", "Bearer sk_1": "sk_1", "bearer  sk_1 ": "sk_1",
		"Bearer ": "malformed", "Basic dXNlcjpwYXNz": "malformed", "sk_1": "malformed",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		got, err := BearerToken(r, "missing", "; or else")
		switch msg := domain.PublicMessage(err); {
		case err == nil:
		case domain.KindOf(err) != domain.KindUnauthorized:
			t.Errorf("%q: error %v", header, err)
		case msg == "missing":
			got = msg
		case strings.HasPrefix(msg, "malformed Authorization header") && strings.HasSuffix(msg, "; or else"):
			got = "malformed"
		}
		if got != want {
			t.Errorf("BearerToken(%q) = %q, %v; want %q", header, got, err, want)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	team := domain.Principal{TeamID: "team_a", KeyID: "key_a", RequestsPerMinute: 60}
	keys := &fake.Keys{AuthenticateFn: func(_ context.Context, secret string) (domain.Principal, error) {
		switch secret {
		case "sk_good":
			return team, nil
		case "sk_broken":
			return domain.Principal{}, errors.New("db is down at 10.211.0.2")
		}
		return domain.Principal{}, domain.NotFound("API key", secret)
	}}
	var limited []string
	limit := func(_ context.Context, key string, perMinute int64) (bool, time.Duration) {
		limited = append(limited, fmt.Sprint(key, "/", perMinute))
		return len(limited) < 2, 1500 * time.Millisecond
	}
	credentials := func(r *http.Request) (string, error) {
		if k := r.Header.Get("Key"); k != "" {
			return k, nil
		}
		return "", domain.Errorf(domain.KindUnauthorized, "missing API key")
	}
	e, logs := testEdge(t)
	var got domain.Principal
	h := e.Authenticate(keys, credentials, limit, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = PrincipalFrom(r.Context())
	}))
	do := func(key string) (edgetest.Result, Class) {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Key", key)
		res := serve(t, e, r, h.ServeHTTP)
		if res.Status == 200 {
			return res, Class{Status: 200}
		}
		return res, class(t, res)
	}

	if _, c := do("sk_good"); c.Status != 200 || !reflect.DeepEqual(got, team) || !strings.Contains(logs.String(), `"team_id":"team_a"`) {
		t.Errorf("good key: %+v, principal %+v\n%s", c, got, logs)
	}
	if _, c := do("sk_good"); c.Status != 429 || c.Code != "rate_limited" || c.RetryAfter != 2 ||
		c.Message != "rate limit reached: 60 requests per minute for this team; retry after 2s (see the Retry-After header)" {
		t.Errorf("over the limit: %+v", c)
	}
	if !reflect.DeepEqual(limited, []string{"team:team_a/60", "team:team_a/60"}) {
		t.Errorf("limiter calls %v", limited)
	}
	if _, c := do(""); c.Status != 401 || c.Message != "missing API key" {
		t.Errorf("no key: %+v", c)
	}
	if _, c := do("sk_unknown"); c.Status != 401 || c.Message != "invalid API key" {
		t.Errorf("unknown key: %+v", c)
	}
	res, c := do("sk_broken")
	if c.Status != 500 {
		t.Errorf("broken key store: %+v", c)
	}
	edgetest.NoSecrets(t, res.Body)
}

func TestLimit(t *testing.T) {
	for wait, want := range map[time.Duration]int{0: 1, -time.Second: 1, time.Nanosecond: 1, time.Second: 1,
		time.Second + time.Millisecond: 2, 59500 * time.Millisecond: 60} {
		err := Limit(context.Background(), func(context.Context, string, int64) (bool, time.Duration) { return false, wait },
			"k", 10, "logins from this address")
		if c := Classify(err); c.RetryAfter != want || c.Quota == nil || c.Quota.Limit != 10 ||
			!strings.Contains(c.Message, "10 requests per minute for logins from this address") {
			t.Errorf("wait %v: %+v", wait, c)
		}
	}
	admit := func(context.Context, string, int64) (bool, time.Duration) { return true, 0 }
	if Limit(context.Background(), admit, "k", 10, "") != nil || Limit(context.Background(), nil, "k", 10, "") != nil ||
		Limit(context.Background(), admit, "k", 0, "") != nil {
		t.Error("an admitted, unlimited or unbudgeted request was refused")
	}
}

func TestAudit(t *testing.T) {
	var got []domain.AuditEntry
	record := func(_ context.Context, e *domain.AuditEntry) { got = append(got, *e) }
	keys := &fake.Keys{AuthenticateFn: func(context.Context, string) (domain.Principal, error) {
		return domain.Principal{TeamID: "team_a", KeyID: "key_a"}, nil
	}}
	e, _ := testEdge(t)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /things", func(w http.ResponseWriter, r *http.Request) {
		SetTarget(r, "thing_1")
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("DELETE /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		e.WriteError(w, r, domain.NotFound("thing", r.PathValue("id")))
	})
	details := func(r *http.Request) map[string]string { return map[string]string{"api": "test"} }
	authed := e.Authenticate(keys, func(*http.Request) (string, error) { return "sk", nil }, nil, Audit(record, "thing.change", details, mux))

	for _, c := range []struct {
		method, path string
		target       string
		status       int
	}{{"POST", "/things", "thing_1", 201}, {"DELETE", "/things/thing_2", "thing_2", 404}} {
		got = nil
		r := httptest.NewRequest(c.method, c.path, nil)
		r.RemoteAddr = "192.0.2.1:4000"
		res := serve(t, e, r, authed.ServeHTTP)
		want := domain.AuditEntry{TeamID: "team_a", ActorType: "key", ActorID: "key_a", Action: "thing.change", Target: c.target,
			Status: c.status, RemoteAddr: "192.0.2.1", RequestID: res.Header.Get("X-Request-Id"), Details: map[string]string{"api": "test"}}
		if len(got) == 1 {
			want.At = got[0].At
		}
		if len(got) != 1 || !reflect.DeepEqual(got[0], want) || time.Since(want.At) > time.Minute || want.At.Location() != time.UTC {
			t.Errorf("%s %s recorded\n %+v\nwant [%+v]", c.method, c.path, got, want)
		}
	}

	// Without a principal (outside Authenticate) nothing is recorded; a nil record is no audit.
	got = nil
	serve(t, e, httptest.NewRequest("POST", "/things", nil), Audit(record, "thing.change", nil, mux).ServeHTTP)
	if len(got) != 0 {
		t.Errorf("recorded %+v without a principal", got)
	}
	if h := Audit(nil, "thing.change", nil, mux); h != http.Handler(mux) {
		t.Error("Audit(nil, ...) is not next")
	}
}

// TestUncleanPath: a path with empty, "." or ".." segments gets a JSON 404 naming the
// clean path, not ServeMux's redirect (which turns a PATCH into a GET on the way).
func TestUncleanPath(t *testing.T) {
	e, _ := testEdge(t)
	reached := false
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true })
	for _, p := range []string{"/v1/teams/.", "/v1//sandboxes", "/v1/sandboxes/../keys", "/v1/a/./b/"} {
		rec := httptest.NewRecorder()
		e.Serve(rec, httptest.NewRequest("PATCH", "http://x"+p, nil), h)
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "send it as") {
			t.Errorf("%s: %d %s", p, rec.Code, rec.Body)
		}
	}
	for _, p := range []string{"/v1/teams/", "/v1/sandboxes", "/"} {
		reached = false
		e.Serve(httptest.NewRecorder(), httptest.NewRequest("GET", "http://x"+p, nil), h)
		if !reached {
			t.Errorf("%s: a clean path did not reach the handler", p)
		}
	}
}
