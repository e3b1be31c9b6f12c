// Command aion is the single binary of the Aion distributed cron scheduler:
// it validates job files, explains schedules, and (as the cluster work
// lands) runs schedulers, executors and the all-in-one dev mode.
//
// main is thin: it wires signals to a context, runs the command tree and
// maps the result to an exit code.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/aionsched/aion/executor/supervisor"
)

func main() {
	// An executor starts the supervisor of each host run from this
	// binary, as aion-supervise.
	supervisor.RunIfInvoked()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries an exit code other than 1 or a failure already reported
// to the user (silent: nothing more to print).
type exitError struct {
	code   int
	silent bool
	err    error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// run executes the command line and returns the process exit code: 0 on
// success, 1 on failure, 2 on a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := newRootCommand(stdout, stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var exit *exitError
	if errors.As(err, &exit) {
		if !exit.silent {
			fmt.Fprintln(stderr, "aion:", exit.err)
		}
		return exit.code
	}
	fmt.Fprintln(stderr, "aion:", err)
	if strings.HasPrefix(err.Error(), "unknown command") {
		return 2 // cobra reports unknown subcommands as plain errors
	}
	return 1
}
