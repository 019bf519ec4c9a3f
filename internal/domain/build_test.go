package domain

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestReadyCheckValidate(t *testing.T) {
	cases := []struct {
		name  string
		rc    ReadyCheck
		field string // "" = valid
	}{
		{"none", ReadyCheck{}, ""},
		{"port", ReadyCheck{Port: 8080, Timeout: time.Minute}, ""},
		{"url", ReadyCheck{URL: "http://localhost:8080/health"}, ""},
		{"https url", ReadyCheck{URL: "https://127.0.0.1/"}, ""},
		{"process", ReadyCheck{Process: "nginx"}, ""},
		{"file", ReadyCheck{File: "/tmp/ready"}, ""},
		{"multi-line cmd", ReadyCheck{Cmd: "test -f /a &&\ntest -f /b"}, ""},
		{"two kinds", ReadyCheck{Port: 80, File: "/x"}, "ready"},
		{"port too big", ReadyCheck{Port: 70000}, "ready.port"},
		{"negative port", ReadyCheck{Port: -1}, "ready.port"},
		{"ftp url", ReadyCheck{URL: "ftp://localhost/"}, "ready.url"},
		{"relative url", ReadyCheck{URL: "/health"}, "ready.url"},
		{"blank process", ReadyCheck{Process: "  "}, "ready.process"},
		{"file with newline", ReadyCheck{File: "/a\n/b"}, "ready.file"},
		{"cmd with NUL", ReadyCheck{Cmd: "true\x00"}, "ready.cmd"},
		{"huge cmd", ReadyCheck{Cmd: strings.Repeat("x", 5000)}, "ready.cmd"},
		{"negative timeout", ReadyCheck{Port: 80, Timeout: -time.Second}, "ready.timeout"},
		{"timeout too long", ReadyCheck{Port: 80, Timeout: 2 * time.Hour}, "ready.timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.rc.Validate()
			if c.field == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalid || e.Field != c.field {
				t.Errorf("Validate() = %v, want KindInvalid on %s", err, c.field)
			}
		})
	}
	if !(ReadyCheck{}).IsZero() || (ReadyCheck{Timeout: time.Second}).IsZero() != true || (ReadyCheck{File: "/x"}).IsZero() {
		t.Error("IsZero wrong")
	}
}
