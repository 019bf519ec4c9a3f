package edge

import (
	"net/http"

	"github.com/warren-sh/warren/internal/domain"
)

// IdempotencyKey returns the request's Idempotency-Key header ("" when it has none);
// a header that is present but empty, or given twice, is KindInvalid. The service
// checks the key's form (domain.CheckIdempotencyKey).
func IdempotencyKey(r *http.Request) (string, error) {
	vs := r.Header.Values("Idempotency-Key")
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", domain.Invalid("Idempotency-Key", "the Idempotency-Key header was given %d times; send it once", len(vs))
	case vs[0] == "":
		return "", domain.Invalid("Idempotency-Key", "the Idempotency-Key header is empty; send 1 to %d printable ASCII characters, or leave the header out", domain.MaxIdempotencyKeyLen)
	}
	return vs[0], nil
}
