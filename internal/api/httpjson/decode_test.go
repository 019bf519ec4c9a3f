package httpjson

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

func TestDecode(t *testing.T) {
	type body struct {
		Timeout int    `json:"timeout"`
		Name    string `json:"name"`
	}
	cases := []struct {
		in, field, msg string
		ok             bool
	}{
		{``, "", "", true},
		{`{"timeout": 3, "name": "x"}`, "", "", true},
		{`{"timeout": "long"}`, "timeout", `field "timeout": expected integer, got string`, false},
		{`{"bogus": 1}`, "bogus", `nope "bogus"`, false},
		{`{"timeout": 3`, "", "ends in the middle", false},
		{`{"timeout": 3} {}`, "", "single JSON object", false},
		{`[1]`, "", "must be a JSON object", false},
		{`{x}`, "", "not valid JSON", false},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/", strings.NewReader(c.in))
		var b body
		err := Decode(httptest.NewRecorder(), r, &b, 1<<20, "nope %q")
		if c.ok {
			if err != nil {
				t.Errorf("%q: %v", c.in, err)
			}
			continue
		}
		if !domain.IsKind(err, domain.KindInvalid) || domain.FieldOf(err) != c.field || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: err %v (field %q), want field %q mentioning %q", c.in, err, domain.FieldOf(err), c.field, c.msg)
		}
	}
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"name": "`+strings.Repeat("x", 100)+`"}`))
	var b body
	if err := Decode(httptest.NewRecorder(), r, &b, 16, "%q"); err == nil || domain.IsKind(err, domain.KindInvalid) {
		t.Errorf("over the cap: %v, want a MaxBytesError", err)
	}
}
