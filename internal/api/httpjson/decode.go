// Package httpjson decodes JSON request bodies for the HTTP API edges (/v1 and the E2B
// API) and turns encoding/json's errors into domain.Invalid errors that name the field
// and say what was wrong.
package httpjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
)

// Decode reads one JSON object from r's body, capped at maxBytes, into dst. An empty
// body leaves dst as is. Unknown fields are rejected with unknownFormat (a format with
// one %q for the field's name). A body over the cap returns *http.MaxBytesError; every
// other error is KindInvalid.
func Decode(w http.ResponseWriter, r *http.Request, dst any, maxBytes int64, unknownFormat string) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if err == io.EOF {
			return nil
		}
		return jsonError(err, unknownFormat)
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return domain.Invalid("", "request body must hold a single JSON object and nothing after it")
	}
	return nil
}

// jsonError turns encoding/json's errors into messages for people.
func jsonError(err error, unknownFormat string) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.As(err, &se):
		return domain.Invalid("", "request body is not valid JSON at byte %d: %s", se.Offset, se.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return domain.Invalid("", "request body ends in the middle of a JSON value")
	case errors.As(err, &te):
		if te.Field == "" {
			return domain.Invalid("", "request body must be a JSON object, got %s", te.Value)
		}
		return domain.Invalid(te.Field, "field %q: expected %s, got %s", te.Field, typeName(te.Type), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return domain.Invalid(name, "%s", fmt.Sprintf(unknownFormat, name))
	}
	return domain.Invalid("", "cannot decode request body: %s", err.Error())
}

func typeName(t reflect.Type) string {
	if t == nil {
		return "a different type"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Pointer:
		return typeName(t.Elem())
	}
	return t.String()
}
