//go:build !linux

package cli

import (
	"bufio"
	"os"
)

// readNoEcho reads a line from the terminal f; this platform's build does not turn
// echo off.
func readNoEcho(f *os.File) (string, error) {
	return bufio.NewReader(f).ReadString('\n')
}
