package agent

import "os"

// shellFor is the program that runs cmd. Clients run shell lines with /bin/bash (the
// E2B SDKs and Warren's own API do); a sandbox of an image without bash (busybox,
// Alpine) runs them with its /bin/sh instead, which understands the -l and -c they pass,
// rather than failing every command. argv[0] is the shell actually run: busybox picks
// its applet by that name.
func shellFor(cmd string, exists func(string) bool) string {
	if cmd == "/bin/bash" && !exists(cmd) && exists("/bin/sh") {
		return "/bin/sh"
	}
	return cmd
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
