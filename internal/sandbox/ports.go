package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/agentclient"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/runtime"
)

// Ports lists the TCP ports listening inside the sandbox, read from the kernel's socket
// tables (/proc/net/tcp and tcp6) by the agent; warren-agent's own port is left out.
// It implements domain.PortLister.
func (ps *Processes) Ports(ctx context.Context, p domain.Principal, id string) ([]int, error) {
	a, c, err := ps.agent(ctx, p, id, domain.ScopeSandboxesRead, agentCallTimeout)
	if err != nil {
		return nil, err
	}
	res, err := a.Exec(c.ctx, domain.ExecRequest{Args: []string{"/bin/cat", "/proc/net/tcp", "/proc/net/tcp6"},
		User: "root", Timeout: 10 * time.Second}, nil)
	if err = c.end(err); err != nil {
		return nil, err
	}
	if res.Truncated {
		// The tables were cut at the bound on buffered output; a partial list would
		// silently miss ports.
		return nil, domain.Errorf(domain.KindConflict, "the sandbox's socket tables are larger than the %d MiB the server reads, so its ports cannot be listed; close connections or read /proc/net/tcp with a command", agentclient.MaxBufferedOutput>>20)
	}
	return listeningPorts(res.Stdout), nil
}

// listeningPorts parses /proc/net/tcp{,6}: a socket in state 0A (LISTEN) has its port as
// the hex number after the colon of local_address.
func listeningPorts(table []byte) []int {
	var ports []int
	sc := bufio.NewScanner(bytes.NewReader(table))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil || port == 0 || port == runtime.AgentPort {
			continue
		}
		if !slices.Contains(ports, int(port)) {
			ports = append(ports, int(port))
		}
	}
	slices.Sort(ports)
	return ports
}
