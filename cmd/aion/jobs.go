package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aionsched/aion/scheduler/api"
)

// The commands on stored jobs: list, show, enable and disable, pause and
// resume, delete.

func newJobsCommand(a *app) *cobra.Command {
	var q api.JobQuery
	cmd := &cobra.Command{
		Use:   "jobs [--state S] [--name GLOB] [--label K=V...] [--limit N [--after NAME]]",
		Short: "List the stored jobs with their next run and last result",
		Long: "Jobs lists the stored jobs, sorted by name, with their next run (\"paused\" or \"disabled\" when\n" +
			"they have none for that reason) and last result. --state keeps the jobs whose last result is\n" +
			"that state (failed, succeeded, timed_out, ...) or those paused or disabled; --name keeps the\n" +
			"names matching a glob (*, ?, [a-z]); --label K=V those with that label (repeatable: all must\n" +
			"match). The list is read from the API page by page; --limit N prints one page of N, and says\n" +
			"the --after NAME of the next when there may be more.",
		Example: "  aion jobs --state failed\n  aion jobs --name 'nightly-*' --label team=data\n  aion jobs --limit 100 --after backup",
		Args:    usageArgs(cobra.NoArgs),
	}
	format := outputFlag(cmd)
	cmd.Flags().StringVar(&q.State, "state", "", "only jobs whose last result is this state, or paused or disabled")
	cmd.Flags().StringVar(&q.Name, "name", "", "only jobs whose name matches this glob")
	cmd.Flags().StringArrayVar(&q.Labels, "label", nil, "only jobs with this label, K=V (repeatable)")
	cmd.Flags().IntVar(&q.Limit, "limit", 0, fmt.Sprintf("print one page of at most this many jobs (1 to %d; default: all)", api.MaxJobLimit))
	cmd.Flags().StringVar(&q.After, "after", "", "start after this job name (the next page of --limit)")
	cmd.RunE = a.clientRun(func(ctx context.Context, c *api.Client, _ []string) error {
		if q.Limit < 0 || q.Limit > api.MaxJobLimit {
			return &exitError{code: exitUsage, err: fmt.Errorf("jobs: --limit: want 1 to %d, got %d", api.MaxJobLimit, q.Limit)}
		}
		list, err := listJobs(ctx, c, q)
		if err != nil {
			return err
		}
		if list.Next != "" {
			a.note(fmt.Sprintf("there may be more jobs: aion jobs --limit %d --after %s", q.Limit, list.Next))
		}
		return a.render(*format, list, func() error { return a.printJobs(list) })
	})
	return cmd
}

// listJobs reads the jobs of q: one page with q.Limit, else every page.
func listJobs(ctx context.Context, c *api.Client, q api.JobQuery) (api.JobList, error) {
	if q.Limit != 0 {
		return c.ListJobsPage(ctx, q)
	}
	return c.ListAllJobs(ctx, q)
}

func (a *app) printJobs(list api.JobList) error {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSCHEDULE\tZONE\tNEXT RUN\tLAST RESULT")
	for _, j := range list.Jobs {
		next := "-"
		switch {
		case j.Disabled:
			next = "disabled"
		case j.Paused:
			next = "paused"
		case !j.Next.IsZero():
			next = formatIn(j.Next, j.Timezone)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", j.Name, j.Schedule, j.Timezone, next, orDash(string(j.LastResult)))
	}
	return w.Flush()
}

func newJobCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job NAME",
		Short: "Show a job: its definition, state, next runs and recent fires",
		Args:  usageArgs(cobra.ExactArgs(1)),
	}
	format := outputFlag(cmd)
	cmd.RunE = a.clientRun(func(ctx context.Context, c *api.Client, args []string) error {
		d, err := c.GetJob(ctx, args[0])
		if err != nil {
			return err
		}
		return a.render(*format, d, func() error { return a.printJobDetail(d) })
	})
	return cmd
}

func newEnableCommand(a *app, verb string, disable bool) *cobra.Command {
	short := "Let a disabled job's schedule run again"
	if disable {
		short = "Stop a job's scheduled runs (manual runs still work) until it is enabled or applied again"
	}
	cmd := &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  usageArgs(cobra.ExactArgs(1)),
	}
	format := outputFlag(cmd)
	cmd.RunE = a.clientRun(func(ctx context.Context, c *api.Client, args []string) error {
		set := c.Enable
		if disable {
			set = c.Disable
		}
		res, err := set(ctx, args[0])
		if err != nil {
			return err
		}
		return a.render(*format, res, func() error {
			state := "enabled"
			if res.Disabled {
				state = "disabled"
			}
			if !res.Changed {
				_, err := fmt.Fprintf(a.stdout, "%s was already %s\n", res.Job, state)
				return err
			}
			_, err := fmt.Fprintf(a.stdout, "%s %s\n", res.Job, state)
			return err
		})
	})
	return cmd
}

func newPauseCommand(a *app, pause bool) *cobra.Command {
	var req api.PauseRequest
	cmd := &cobra.Command{
		Use:   "pause NAME --note TEXT",
		Short: "Pause a job: its nominal times are skipped and recorded until it is resumed",
		Args:  usageArgs(cobra.ExactArgs(1)),
	}
	verb := "pause"
	if pause {
		cmd.Flags().StringVar(&req.Note, "note", "", "why, shown with the job and in each skipped record")
	} else {
		verb = "resume"
		cmd.Use = "resume NAME [--catchup]"
		cmd.Short = "Resume a paused job; with --catchup, run the times skipped while paused per its misfire policy"
		cmd.Flags().BoolVar(&req.Catchup, "catchup", false, "run the times skipped while paused (misfire run-once: the latest; run-all: up to max_catchup)")
	}
	format := outputFlag(cmd)
	cmd.RunE = a.clientRun(func(ctx context.Context, c *api.Client, args []string) error {
		send := c.Resume
		if pause {
			send = c.Pause
		}
		res, err := send(ctx, args[0], req)
		if err != nil {
			return err
		}
		return a.render(*format, res, func() error {
			_, err := fmt.Fprintf(a.stdout, "%s of %s requested\n", verb, args[0])
			return err
		})
	})
	return cmd
}

func newDeleteCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delete NAME [--cascade]",
		Short: "Delete a stored job (its fire history is kept)",
		Long: "Delete removes a job's definition and scheduling state. It is refused while other jobs list the\n" +
			"job in their parents, unless --cascade, which deletes every job that depends on it too.\n" +
			"A job still in your job files comes back with the next `aion apply`.",
		Args: usageArgs(cobra.ExactArgs(1)),
	}
	cascade := cmd.Flags().Bool("cascade", false, "also delete the jobs that depend on it, recursively")
	format := outputFlag(cmd)
	cmd.RunE = a.clientRun(func(ctx context.Context, c *api.Client, args []string) error {
		res, err := c.DeleteJob(ctx, args[0], *cascade)
		if err != nil {
			return err
		}
		return a.render(*format, res, func() error {
			_, err := fmt.Fprintf(a.stdout, "%s deleted\n", res.Deleted)
			for _, c := range res.Cascaded {
				fmt.Fprintf(a.stdout, "%s deleted (depends on %s)\n", c, res.Deleted)
			}
			return err
		})
	})
	return cmd
}
