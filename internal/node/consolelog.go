package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warren-sh/warren/internal/logkey"
)

// Console logs. A sandbox's console (console.log in its directory) is its agent's stdout
// and stderr: a host file the runtime hands to the sandbox. On gVisor the sandbox's root
// can reopen it through /proc/1/fd/1 and write to it at disk speed; it is outside the
// sandbox's disk_mb, and GET logs reads it whole. So the node keeps each console log
// under a bound, dropping its oldest part.

// DefaultConsoleLogMax is the console log bound RunConsoleTrimmer is usually given.
const DefaultConsoleLogMax = 16 << 20

// RunConsoleTrimmer trims every sandbox's console log to max bytes every interval
// until ctx ends. At the disk speeds a flooding sandbox reaches (~200 MB/s measured),
// a log can pass max by at most that rate times interval before it is cut back.
func (n *Node) RunConsoleTrimmer(ctx context.Context, interval time.Duration, max int64) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if k := n.TrimConsoleLogs(max); k > 0 {
			n.log.Info("trimmed console logs over the bound", "count", k, "max_bytes", max)
		}
	}
}

// TrimConsoleLogs cuts every console log longer than max down to about max/2 bytes,
// keeping its newest part, and returns how many it cut.
func (n *Node) TrimConsoleLogs(max int64) int {
	ents, err := os.ReadDir(n.cfg.Dir)
	if err != nil {
		return 0
	}
	k := 0
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		cut, err := trimConsoleLog(filepath.Join(n.cfg.Dir, e.Name(), "console.log"), max)
		if err != nil {
			n.log.Warn("trimming a console log", logkey.SandboxID, e.Name(), logkey.Err, err)
		}
		if cut > 0 {
			k++
		}
	}
	return k
}

// trimConsoleLog drops the oldest part of the file at path when it is longer than max,
// and returns the bytes dropped. The writer (the sandbox, through a descriptor opened
// with O_APPEND) goes on appending at the end. On file systems that can collapse a
// range (ext4, xfs) the head is removed in place, keeping the newest ~max/2 bytes and
// losing nothing written meanwhile; elsewhere the file starts over.
func trimConsoleLog(path string, max int64) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() <= max {
		return 0, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	size := fi.Size()
	cut := size - max/2
	cut -= cut % 65536 // a multiple of the file system's block size
	if cut <= 0 {
		return 0, nil
	}
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_COLLAPSE_RANGE, 0, cut); err != nil {
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) {
			return 0, fmt.Errorf("collapsing %s: %w", path, err)
		}
		if err := f.Truncate(0); err != nil {
			return 0, err
		}
		cut = size
	}
	fmt.Fprintf(f, "{\"time\":%q,\"level\":\"WARN\",\"msg\":\"warren: console log over %d bytes; its oldest %d bytes were dropped\"}\n",
		time.Now().UTC().Format(time.RFC3339Nano), max, cut)
	return cut, nil
}
