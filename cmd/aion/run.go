package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aionsched/aion/scheduler/api"
)

func newRunCommand(a *app) *cobra.Command {
	var (
		env  []string
		req  api.RunRequest
		wait bool
	)
	cmd := &cobra.Command{
		Use:   "run NAME [--env K=V...] [--arg A...] [--downstream] [--wait]",
		Short: "Run a job now",
		Long: "Run asks the cluster to run a job now, whatever its schedule, and prints the fire ID. --env\n" +
			"overrides the job's environment for this run only; --arg replaces an args job's arguments, or\n" +
			"passes $1, $2, ... to a command job. The job runs alone unless --downstream, which also runs the\n" +
			"jobs that depend on it once it succeeds. With --wait it follows the run (and its retries),\n" +
			"streaming its output to stdout (the fire ID goes to stderr), and exits with the job's exit code.",
		Example: "  aion run reindex --env FULL=1\n  aion run backup --wait\n  aion run extract --downstream\n  aion run report --arg 2026-11-24",
		Args:    usageArgs(cobra.ExactArgs(1)),
	}
	format := outputFlag(cmd)
	cmd.Flags().StringArrayVarP(&env, "env", "e", nil, "NAME=VALUE to set for this run (repeatable)")
	cmd.Flags().BoolVarP(&wait, "wait", "w", false, "follow the run and exit with its exit code")
	cmd.Flags().StringArrayVar(&req.Args, "arg", nil, "an argument for this run (repeatable)")
	cmd.Flags().BoolVar(&req.Downstream, "downstream", false, "also run the dependent jobs afterwards")
	cmd.RunE = a.clientRun(func(ctx context.Context, c *api.Client, args []string) error {
		var err error
		if req.Env, err = parseEnv(env); err != nil {
			return err
		}
		res, err := c.Run(ctx, args[0], req)
		if err != nil {
			return err
		}
		if !wait {
			return a.render(*format, res, func() error {
				_, err := fmt.Fprintln(a.stdout, res.Fire)
				return err
			})
		}
		return a.waitRun(ctx, c, res.Fire, *format)
	})
	return cmd
}

// parseEnv reads --env NAME=VALUE flags; nil when there are none.
func parseEnv(env []string) (map[string]string, error) {
	var m map[string]string
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, &exitError{code: exitUsage, err: fmt.Errorf("run: --env %q: want NAME=VALUE", kv)}
		}
		if m == nil {
			m = make(map[string]string)
		}
		m[k] = v
	}
	return m, nil
}

// waitRun follows a requested run to its end, streaming the output of
// each attempt to stdout, after a header line per attempt when the job
// retries (with -o json, printing the final record instead), and exits as
// the run did.
func (a *app) waitRun(ctx context.Context, c *api.Client, fire, format string) error {
	id, err := api.ParseFireID(fire)
	if err != nil {
		return fmt.Errorf("the API answered with a bad fire ID: %w", err)
	}
	fmt.Fprintf(a.stderr, "aion: %s requested\n", id)
	out := a.stdout
	if format == formatJSON {
		out = io.Discard // the final record is printed instead
	}
	headers, err := retries(ctx, c, id.Job)
	if err != nil {
		return err
	}
	f, err := a.followAttempts(ctx, c, id, out, headers)
	var gone *api.ServerGoneError
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("stopped waiting; %s goes on (aion logs -f %s)", id, id)
	case errors.As(err, &gone):
		return &exitError{code: exitAion, err: fmt.Errorf("%w; once the API is back, aion logs -f %s shows how it ends", gone, id)}
	case err != nil:
		return err
	}
	if format == formatJSON {
		if err := a.printJSON(f); err != nil {
			return err
		}
	}
	return runExit(f)
}

// retries reports whether a job is retried when it fails.
func retries(ctx context.Context, c *api.Client, job string) (bool, error) {
	d, err := c.GetJob(ctx, job)
	if err != nil {
		return false, err
	}
	return d.Job != nil && d.Job.Retries.Count > 0, nil
}

// followAttempts streams the output of each attempt of a fire in turn,
// the first to the last, and returns the fire once it has ended.
func (a *app) followAttempts(ctx context.Context, c *api.Client, id api.FireID, out io.Writer, headers bool) (api.Fire, error) {
	for attempt := 1; ; attempt++ {
		if headers {
			if _, err := fmt.Fprintf(out, "==> attempt %d <==\n", attempt); err != nil {
				return api.Fire{}, fmt.Errorf("write the output of %s: %w", id, err)
			}
		}
		res, err := c.StreamLog(ctx, id, out, api.StreamOptions{Follow: true, Attempt: attempt, Note: a.note})
		if err != nil {
			return res.Fire, err
		}
		if res.Fire.Attempt <= attempt {
			return res.Fire, nil
		}
		a.note(fmt.Sprintf("%s: attempt %d ended; attempt %d follows", id, attempt, attempt+1))
	}
}

// note reports on stderr what following a run waits for.
func (a *app) note(msg string) { fmt.Fprintf(a.stderr, "aion: %s\n", msg) }

// runExit maps a final fire to the exit code of `aion run --wait`: 0 on
// success, the job's own exit code when it exited, 124 when it timed out,
// 126 or 127 when its program could not be invoked or was not found (as
// the shell), else exitAion (lost, skipped, cancelled, no code).
func runExit(f api.Fire) error {
	if f.State == api.FireSucceeded {
		return nil
	}
	msg := fmt.Sprintf("%s %s", f.ID, f.State)
	if f.Reason != "" {
		msg += ": " + f.Reason
	}
	return &exitError{code: fireExitCode(f), err: errors.New(msg)}
}

// fireExitCode is the exit code of a fire that did not succeed.
func fireExitCode(f api.Fire) int {
	switch {
	case f.State == api.FireTimedOut:
		return exitTimedOut
	case f.State == api.FireFailed && f.ExitCode != nil && *f.ExitCode > 0 && *f.ExitCode < 256:
		return *f.ExitCode
	case f.State == api.FireFailed && strings.HasPrefix(f.Reason, "start: "):
		return startFailureCode(f.Reason)
	}
	return exitAion
}

// startFailureCode maps why a job's process could not start to the
// shell's codes: 127 for a program not found, 126 for one that could not
// be run.
func startFailureCode(reason string) int {
	if strings.Contains(reason, "no such file or directory") || strings.Contains(reason, "executable file not found") {
		return exitNotFound
	}
	return exitCannotInvoke
}
