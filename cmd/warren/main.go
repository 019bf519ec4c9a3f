// Command warren is Warren's single binary: the server (serve), host checks (doctor),
// benchmarks (bench) and the CLI verbs for the API.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/warren-sh/warren/internal/cmds"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmds.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
