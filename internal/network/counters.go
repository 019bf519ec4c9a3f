package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
)

// sysClassNet is where the kernel lists network interfaces; tests point it at a fake
// tree.
var sysClassNet = "/sys/class/net"

// Counters returns the bytes a sandbox has received (rx) and sent (tx) over its link
// since the link was created, from the sandbox's point of view: what goes into the
// sandbox is what the host side of its veth pair transmits, so rx is the host
// interface's tx_bytes and tx its rx_bytes. Both are cumulative and count everything on
// the link (IP headers, ARP, traffic between the sandbox and the host). The counters
// disappear with the link: a sandbox without one (never attached, or already detached)
// gives KindNotFound.
func (m *Manager) Counters(id string) (rxBytes, txBytes int64, err error) {
	dir := filepath.Join(sysClassNet, m.hostIf(id), "statistics")
	hostTx, err := readCounter(filepath.Join(dir, "tx_bytes"))
	if err != nil {
		return 0, 0, counterErr(id, m.hostIf(id), err)
	}
	hostRx, err := readCounter(filepath.Join(dir, "rx_bytes"))
	if err != nil {
		return 0, 0, counterErr(id, m.hostIf(id), err)
	}
	return hostTx, hostRx, nil
}

func counterErr(id, ifname string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return domain.Errorf(domain.KindNotFound, "sandbox %q has no network link (%s is gone)", id, ifname)
	}
	return fmt.Errorf("reading the traffic counters of %s (sandbox %s): %w", ifname, id, err)
}

func readCounter(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
