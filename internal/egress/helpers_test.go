package egress

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
)

func readResponse(c net.Conn, req *http.Request) (int, string, error) {
	resp, err := http.ReadResponse(bufio.NewReader(io.LimitReader(c, 1<<20)), req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// counter is a Recorder that counts decisions by "action/kind".
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) Decision(action, kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[action+"/"+kind]++
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
