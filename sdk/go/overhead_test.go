package warren

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"
)

// rawRun runs "true" with a bare net/http POST to the same endpoint and in the same
// mode as Commands().Run (an event stream), reading the stream to its end.
func rawRun(ctx context.Context, hc *http.Client, url, key string) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader([]byte(`{"cmd":"true","stream":true}`)))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("event: end")) {
		return fmt.Errorf("raw POST: %s %s", resp.Status, body)
	}
	return nil
}

func p50(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestOverhead measures the SDK's cost per command: the median of 200 runs of
// Commands().Run(ctx, "true") against 200 bare net/http POSTs of the same request,
// alternating so both see the same server conditions. It prints both medians and
// their ratio, and fails only if the SDK is grossly slower (a lost connection reuse,
// an extra request).
func TestOverhead(t *testing.T) {
	c := integrationClient(t)
	sbx := newSandbox(t, c, "base")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	hc := &http.Client{}
	url := c.APIURL() + routeExecCommand.url(sbx.ID)
	key := os.Getenv("WARREN_API_KEY")
	for range 10 { // warm up both paths' connections
		if _, err := sbx.Commands().Run(ctx, "true", RunOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := rawRun(ctx, hc, url, key); err != nil {
			t.Fatal(err)
		}
	}
	const n = 200
	var sdk, raw []time.Duration
	for i := range 2 * n {
		start := time.Now()
		var err error
		if i%2 == 0 {
			_, err = sbx.Commands().Run(ctx, "true", RunOptions{})
		} else {
			err = rawRun(ctx, hc, url, key)
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			sdk = append(sdk, time.Since(start))
		} else {
			raw = append(raw, time.Since(start))
		}
	}
	ps, pr := p50(sdk), p50(raw)
	ratio := float64(ps) / float64(pr)
	msg := fmt.Sprintf("Commands().Run(\"true\") p50 %v, raw net/http POST p50 %v, ratio %.3f (n=%d each)", ps.Round(10*time.Microsecond), pr.Round(10*time.Microsecond), ratio, n)
	t.Log(msg)
	fmt.Println("overhead:", msg)
	if ps > pr*3/2+2*time.Millisecond {
		t.Errorf("the SDK is much slower than a bare POST: %s", msg)
	}
}

// BenchmarkRunTrue measures Commands().Run(ctx, "true") against a real server.
func BenchmarkRunTrue(b *testing.B) {
	c := integrationClient(b)
	sbx := newSandbox(b, c, "base")
	ctx := context.Background()
	for b.Loop() {
		if _, err := sbx.Commands().Run(ctx, "true", RunOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawTrue is BenchmarkRunTrue with a bare net/http POST, for comparison.
func BenchmarkRawTrue(b *testing.B) {
	c := integrationClient(b)
	sbx := newSandbox(b, c, "base")
	hc, url, key := &http.Client{}, c.APIURL()+routeExecCommand.url(sbx.ID), os.Getenv("WARREN_API_KEY")
	ctx := context.Background()
	for b.Loop() {
		if err := rawRun(ctx, hc, url, key); err != nil {
			b.Fatal(err)
		}
	}
}
