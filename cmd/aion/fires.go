package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aionsched/aion/scheduler/api"
)

// The commands on fires: history, kill and backfill.

func newHistoryCommand(a *app) *cobra.Command {
	var n int
	cmd := &cobra.Command{
		Use:   "history [NAME] [-n N]",
		Short: "List a job's recent fires, or those of all jobs, newest first",
		Args:  usageArgs(cobra.MaximumNArgs(1)),
	}
	format := outputFlag(cmd)
	cmd.Flags().IntVarP(&n, "count", "n", api.DefaultFireLimit, fmt.Sprintf("how many fires to list (1 to %d)", api.MaxFireLimit))
	cmd.RunE = a.clientRun(func(ctx context.Context, c *api.Client, args []string) error {
		if n < 1 || n > api.MaxFireLimit {
			return &exitError{code: exitUsage, err: fmt.Errorf("history: -n: want 1 to %d, got %d", api.MaxFireLimit, n)}
		}
		list, what, err := history(ctx, c, args, n)
		if err != nil {
			return err
		}
		return a.render(*format, list, func() error {
			if len(list.Fires) == 0 {
				_, err := fmt.Fprintf(a.stdout, "%s not run yet\n", what)
				return err
			}
			return a.printFires(list.Fires)
		})
	})
	return cmd
}

// history reads the fires `aion history` lists: a job's, or with no
// name those of all jobs; what names them for "... not run yet".
func history(ctx context.Context, c *api.Client, args []string, n int) (list api.FireList, what string, err error) {
	if len(args) == 0 {
		list, err = c.RecentFires(ctx, n)
		return list, "no job has", err
	}
	list, err = c.Fires(ctx, args[0], n)
	return list, args[0] + " has", err
}

func (a *app) printFires(fires []api.Fire) error {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FIRE\tTRIGGER\tATTEMPT\tSTATE\tNODE\tSTARTED\tDURATION\tEXIT\tREASON")
	row := func(id string, trigger api.Trigger, attempt int, state api.FireState, node string, started, ended time.Time, code *int, reason string) {
		took, exit := "-", "-"
		if !started.IsZero() && !ended.IsZero() {
			took = ended.Sub(started).Round(10 * time.Millisecond).String()
		}
		if code != nil {
			exit = strconv.Itoa(*code)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", id, trigger, attempt, state, orDash(node),
			formatLocal(started), took, exit, oneLine(reason))
	}
	for _, f := range fires {
		row(f.ID.String(), f.Trigger, f.Attempt, f.State, f.Node, f.StartedAt, f.EndedAt, f.ExitCode, f.Reason)
		for i := len(f.Attempts) - 1; i >= 0; i-- { // earlier attempts, newest first, under their fire
			at := f.Attempts[i]
			row("  ↳ earlier attempt", f.Trigger, at.Attempt, at.State, at.Node, at.StartedAt, at.EndedAt, at.ExitCode, at.Reason)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return a.printOutputWarnings(fires)
}

// printOutputWarnings prints, under a fire table, a line for each fire
// whose output was not kept, or not all of it.
func (a *app) printOutputWarnings(fires []api.Fire) error {
	for _, f := range fires {
		if warning := f.OutputWarning(); warning != "" {
			if _, err := fmt.Fprintf(a.stdout, "warning: %s: %s\n", f.ID, warning); err != nil {
				return err
			}
		}
	}
	return nil
}

func newKillCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kill FIRE-ID",
		Short: "Stop a planned or running run",
		Long: "Kill asks the cluster to stop a run: a planned one is cancelled, a running one gets SIGTERM,\n" +
			"then SIGKILL after the executor's grace period. It is recorded as cancelled and not retried.",
		Example: "  aion kill backup@2026-11-24T02:00:00Z",
		Args:    usageArgs(cobra.ExactArgs(1)),
	}
	format := outputFlag(cmd)
	cmd.RunE = a.clientRun(func(ctx context.Context, c *api.Client, args []string) error {
		id, err := parseFireID("", args[0])
		if err != nil {
			return err
		}
		res, err := c.Kill(ctx, id, api.KillRequest{})
		if err != nil {
			return err
		}
		return a.render(*format, res, func() error {
			_, err := fmt.Fprintf(a.stdout, "kill of %s requested\n", id)
			return err
		})
	})
	return cmd
}

func newBackfillCommand(a *app) *cobra.Command {
	var (
		from, to string
		req      api.BackfillRequest
	)
	cmd := &cobra.Command{
		Use:   "backfill NAME --from T --to T [--dry-run] [--parallel N]",
		Short: "Run every nominal time of a past (or future) range",
		Long: "Backfill plans every nominal time of the job in [--from, --to] with the fire IDs normal runs\n" +
			"have, so times that already ran are left alone and backfilling twice runs nothing twice.\n" +
			"A date alone (YYYY-MM-DD) is a whole day in the job's timezone: --from starts at its first\n" +
			"moment and --to includes it to its last. Other times are RFC 3339, or YYYY-MM-DDTHH:MM[:SS] in UTC.",
		Example: "  aion backfill report --from 2026-11-01 --to 2026-11-07 --parallel 2\n  aion backfill report --from 2026-11-01 --to 2026-11-07 --dry-run",
		Args:    usageArgs(cobra.ExactArgs(1)),
	}
	cmd.Flags().StringVar(&from, "from", "", "first time of the range (inclusive; a date: from the start of that day)")
	cmd.Flags().StringVar(&to, "to", "", "last time of the range (inclusive; a date: to the end of that day)")
	cmd.Flags().IntVar(&req.Parallel, "parallel", 0, "at most this many of its runs at once (0: no limit)")
	cmd.Flags().BoolVar(&req.DryRun, "dry-run", false, "list the times without planning them")
	format := outputFlag(cmd)
	cmd.RunE = a.clientRun(func(ctx context.Context, c *api.Client, args []string) error {
		if err := rangeEnd(from, &req.From, &req.FromDate); err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("backfill: --from: %w", err)}
		}
		if err := rangeEnd(to, &req.To, &req.ToDate); err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("backfill: --to: %w", err)}
		}
		res, err := c.Backfill(ctx, args[0], req)
		if err != nil {
			return err
		}
		return a.render(*format, res, func() error { return a.printBackfill(res, req.DryRun) })
	})
	return cmd
}

// rangeEnd reads one end of a backfill's range: a date alone is sent as
// a date, for the server to place in the job's zone; anything else as a
// time.
func rangeEnd(s string, t *time.Time, date *string) error {
	if _, err := time.Parse(time.DateOnly, s); err == nil {
		*date = s
		return nil
	}
	parsed, err := parseFrom(s, time.UTC)
	if err != nil || s == "" {
		return errors.New("want YYYY-MM-DD (a day of the job's zone), RFC 3339, or YYYY-MM-DDTHH:MM[:SS] (UTC)")
	}
	*t = parsed
	return nil
}

func (a *app) printBackfill(res api.BackfillResponse, dryRun bool) error {
	for _, t := range res.Times {
		mark := "new"
		if t.Exists {
			mark = "exists, left alone"
		}
		fmt.Fprintf(a.stdout, "%s  %s\n", t.Fire, mark)
	}
	verb := "planned"
	if dryRun {
		verb = "would be planned"
	}
	_, err := fmt.Fprintf(a.stdout, "%d of %d nominal times %s\n", res.New, len(res.Times), verb)
	return err
}
