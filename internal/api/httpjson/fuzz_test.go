package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

// fuzzBody has the field types request bodies use.
type fuzzBody struct {
	Template string            `json:"template"`
	Timeout  int               `json:"timeout"`
	Internet *bool             `json:"internet"`
	Env      map[string]string `json:"env"`
	Args     []string          `json:"args"`
	CPU      float64           `json:"cpu"`
	Nested   *struct {
		A int `json:"a"`
	} `json:"nested"`
}

// FuzzDecode feeds Decode arbitrary bodies: it must never panic, every refusal is a
// KindInvalid error with a message or a *http.MaxBytesError (for bodies past the cap
// only), and whatever it accepts encoding/json accepts too with the same result.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"template":"base","timeout":60,"env":{"A":"b"},"args":["x"]}`,
		`{"timeout":"60"}`, `{"nope":1}`, `[]`, `{}{}`, `{"cpu":1e400}`, `{"nested":{"a":1.5}}`,
		`{"env":{"a":1}}`, `{"internet":null}`, "", " ", `{"template":"\u0000"}`, `{"args":[`,
	} {
		f.Add([]byte(s))
	}
	const maxBytes = 256
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		var got fuzzBody
		err := Decode(httptest.NewRecorder(), r, &got, maxBytes, "unknown field %q")
		if err != nil {
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &mbe):
				if len(body) <= maxBytes {
					t.Fatalf("a %d-byte body was refused as too large", len(body))
				}
			case !domain.IsKind(err, domain.KindInvalid):
				t.Fatalf("refusal of kind %v, want invalid: %v", domain.KindOf(err), err)
			case err.Error() == "":
				t.Fatal("refusal with an empty message")
			}
			return
		}
		if len(bytes.TrimSpace(body)) == 0 {
			return
		}
		var want fuzzBody
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if jerr := dec.Decode(&want); jerr != nil {
			t.Fatalf("Decode accepted %q, which encoding/json refuses: %v", body, jerr)
		}
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(want)
		if !bytes.Equal(a, b) {
			t.Fatalf("Decode gave %s, encoding/json %s", a, b)
		}
	})
}
