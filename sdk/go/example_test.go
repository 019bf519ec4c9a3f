package warren_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	warren "github.com/warren-sh/warren/sdk/go"
)

// Create a sandbox, run a command in it, and kill it.
func Example() {
	ctx := context.Background()
	c, err := warren.New() // WARREN_API_URL, WARREN_API_KEY
	if err != nil {
		log.Fatal(err)
	}
	sbx, err := c.CreateSandbox(ctx, warren.SandboxOptions{Template: "base", Timeout: 10 * time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	defer sbx.Kill(context.WithoutCancel(ctx))
	res, err := sbx.Commands().Run(ctx, "python3 -c 'print(6*7)'", warren.RunOptions{})
	var exit *warren.CommandExitError
	switch {
	case errors.As(err, &exit):
		log.Fatalf("exit code %d: %s", exit.ExitCode, exit.Stderr)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Print(res.Stdout)
}

// Stream a long command's output as it comes, in the background.
func ExampleCommands_Start() {
	ctx := context.Background()
	c, _ := warren.New()
	sbx, err := c.ConnectSandbox(ctx, os.Getenv("SANDBOX_ID")) // its info has the proxy domain
	if err != nil {
		log.Fatal(err)
	}
	h, err := sbx.Commands().Start(ctx, "npm run dev", warren.RunOptions{
		OnStdout: func(b []byte) { os.Stdout.Write(b) },
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("dev server at", sbx.GetHost(3000))
	time.Sleep(time.Minute)
	if err := h.Kill(ctx); err != nil {
		log.Fatal(err)
	}
}

// Talk to a program over its standard input.
func ExampleCommandHandle_SendStdin() {
	ctx := context.Background()
	c, _ := warren.New()
	cmds := c.Sandbox(os.Getenv("SANDBOX_ID")).Commands()
	h, err := cmds.Start(ctx, "python3 -u -c 'import sys\nfor l in sys.stdin: print(l.upper(), end=\"\")'",
		warren.RunOptions{StdinOpen: true})
	if err != nil {
		log.Fatal(err)
	}
	_ = h.SendStdin(ctx, []byte("hello\n"))
	_ = h.CloseStdin(ctx)
	res, err := h.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(res.Stdout) // HELLO
}

// A command killed at its timeout still returns what it printed.
func ExampleCommandTimeoutError() {
	ctx := context.Background()
	c, _ := warren.New()
	cmds := c.Sandbox(os.Getenv("SANDBOX_ID")).Commands()
	res, err := cmds.Run(ctx, "echo working; sleep 60", warren.RunOptions{Timeout: 5 * time.Second})
	var timedOut *warren.CommandTimeoutError
	if errors.As(err, &timedOut) {
		fmt.Printf("timed out after printing %q\n", res.Stdout)
	}
}

// Run a cell in the code interpreter and save its plot.
func ExampleSandbox_RunCode() {
	ctx := context.Background()
	c, _ := warren.New()
	sbx, err := c.CreateSandbox(ctx, warren.SandboxOptions{Template: "code-interpreter"})
	if err != nil {
		log.Fatal(err)
	}
	defer sbx.Kill(context.WithoutCancel(ctx))
	ex, err := sbx.RunCode(ctx, "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.show()", warren.RunCodeOptions{
		OnStdout: func(s string) { fmt.Print(s) },
	})
	if err != nil {
		log.Fatal(err)
	}
	if ex.Error != nil {
		log.Fatal(ex.Error.Traceback)
	}
	for _, r := range ex.Results {
		if len(r.PNG) > 0 {
			_ = os.WriteFile("plot.png", r.PNG, 0o644)
		}
	}
}

// Copy a local file into a sandbox; an *os.File is retried if the server is busy.
func ExampleFiles_Write() {
	ctx := context.Background()
	c, _ := warren.New()
	f, err := os.Open("data.csv")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	fi, err := c.Sandbox(os.Getenv("SANDBOX_ID")).Files().Write(ctx, "/home/user/data.csv", f)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrote", fi.Size, "bytes")
}

// Tell error classes apart.
func ExampleAPIError() {
	ctx := context.Background()
	c, _ := warren.New()
	_, err := c.CreateSandbox(ctx, warren.SandboxOptions{})
	var quota *warren.QuotaExceededError
	switch {
	case errors.As(err, &quota):
		fmt.Printf("quota %s reached: %g of %g\n", quota.Quota, quota.Used, quota.Limit)
	case errors.Is(err, warren.ErrAuthentication):
		fmt.Println("check WARREN_API_KEY")
	case err != nil:
		var ae *warren.APIError
		if errors.As(err, &ae) {
			fmt.Println(ae.Message, "- quote", ae.RequestID)
		}
	}
}

// Iterate over every running sandbox labelled owner=ann.
func ExampleClient_AllSandboxes() {
	ctx := context.Background()
	c, _ := warren.New()
	for s, err := range c.AllSandboxes(ctx, warren.ListOptions{States: []string{"running"}, Metadata: map[string]string{"owner": "ann"}}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(s.ID, s.EndsAt.Format(time.RFC3339))
	}
}

// Create a team with a quota and a key for it (platform admin).
func ExampleClient_CreateTeam() {
	ctx := context.Background()
	c, _ := warren.New()
	team, err := c.CreateTeam(ctx, warren.TeamOptions{Name: "acme", Quota: &warren.QuotaPatch{MaxSandboxes: warren.Ptr[int64](20), RequestsPerMinute: warren.Ptr[int64](600)}})
	if err != nil {
		log.Fatal(err)
	}
	key, err := c.CreateKey(ctx, warren.KeyOptions{Name: "acme-ci", TeamID: team.ID,
		Scopes: []string{warren.ScopeSandboxesRead, warren.ScopeSandboxesWrite}, ExpiresIn: 90 * 24 * time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Repeat("*", len(key.Secret)))
}
