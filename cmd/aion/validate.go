package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aionsched/aion/jobspec"
)

func newValidateCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "validate PATH...",
		Short: "Check job files and directories without applying them",
		Long: "Validate reads job files (and directories, recursively: *.yaml, *.yml), checks the whole set\n" +
			"and prints every problem as file:line:col: field: message. It exits 1 if there is any problem,\n" +
			"and otherwise prints one line per job with its next run.",
		Example: "  aion validate testdata/jobs\n  aion validate /etc/aion/jobs/backup.yaml",
		Args:    usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(_ *cobra.Command, paths []string) error {
			jobs, err := jobspec.Load(paths...)
			var list jobspec.ErrorList
			if errors.As(err, &list) {
				fmt.Fprintln(a.stderr, list.Error())
				noun := "problems"
				if len(list) == 1 {
					noun = "problem"
				}
				return &exitError{code: 1, err: fmt.Errorf("%d %s, nothing is valid until all are fixed", len(list), noun)}
			}
			if err != nil {
				return err
			}
			return printJobSummary(a, jobs, time.Now(), "valid")
		},
	}
}

func printJobSummary(a *app, jobs []*jobspec.Job, now time.Time, verb string) error {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "JOB\tRUNS\tZONE\tNEXT RUN")
	for _, j := range jobs {
		runs, next := j.Schedule, "-"
		switch {
		case len(j.Parents) > 0:
			runs = "after " + strings.Join(j.Parents, ", ")
		case j.IsManual():
			runs = "manual"
		default:
			s, err := j.ParsedSchedule(now)
			if err != nil {
				return fmt.Errorf("job %s: %w", j.Name, err) // Load checked it; cannot happen
			}
			next = "never"
			if t := s.Next(now); !t.IsZero() {
				next = t.Format("2006-01-02 15:04:05 MST")
			}
		}
		if j.Disabled {
			next = "disabled"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", j.Name, runs, j.Timezone, next)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	noun := "jobs"
	if len(jobs) == 1 {
		noun = "job"
	}
	_, err := fmt.Fprintf(a.stdout, "%d %s %s\n", len(jobs), noun, verb)
	return err
}
