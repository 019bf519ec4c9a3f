package cli

import (
	"bufio"
	"os"

	"golang.org/x/sys/unix"
)

// readNoEcho reads a line from the terminal f with echo turned off, restoring the
// terminal's settings afterwards.
func readNoEcho(f *os.File) (string, error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return bufio.NewReader(f).ReadString('\n')
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return bufio.NewReader(f).ReadString('\n')
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	return bufio.NewReader(f).ReadString('\n')
}
