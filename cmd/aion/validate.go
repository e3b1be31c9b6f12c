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

// validateOutput is what `aion validate -o json` prints.
type validateOutput struct {
	Valid bool `json:"valid"`
	// Jobs are the jobs defined, when all are valid.
	Jobs []jobLine `json:"jobs"`
	// Problems are file:line:col: field: message, as the table prints them.
	Problems []string `json:"problems"`
	// Warnings are file:line:col: field: warning: message; they do not make
	// the set invalid.
	Warnings []string `json:"warnings"`
}

// jobLine is one job of a job set and when it runs next.
type jobLine struct {
	Name     string `json:"name"`
	Runs     string `json:"runs"` // the schedule, "manual" or "after a, b"
	Timezone string `json:"timezone"`
	Disabled bool   `json:"disabled,omitempty"`
	// Next is the next fire time; absent for manual, dependent and
	// disabled jobs, and for schedules that have ended (Never).
	Next  time.Time `json:"next,omitzero"`
	Never bool      `json:"never,omitempty"`
}

func newValidateCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate PATH...",
		Short: "Check job files and directories without applying them",
		Long: "Validate reads job files (and directories, recursively: *.yaml, *.yml), checks the whole set\n" +
			"and prints every problem as file:line:col: field: message. It exits 1 if there is any problem,\n" +
			"and otherwise prints one line per job with its next run. Warnings (habits that still load, such as\n" +
			"crontab's \\% in a command) go to stderr and do not fail. With -o json it prints\n" +
			"{\"valid\": ..., \"jobs\": [...], \"problems\": [...], \"warnings\": [...]} on stdout instead, and still\n" +
			"exits 1 on a problem.",
		Example: "  aion validate testdata/jobs\n  aion validate /etc/aion/jobs/backup.yaml\n  aion validate -o json testdata/jobs",
		Args:    usageArgs(cobra.MinimumNArgs(1)),
	}
	format := outputFlag(cmd)
	cmd.RunE = func(_ *cobra.Command, paths []string) error {
		jobs, err := jobspec.Load(paths...)
		var list jobspec.ErrorList
		if errors.As(err, &list) {
			return a.validateProblems(*format, list)
		}
		if err != nil {
			return err
		}
		now := time.Now()
		summary, err := summarizeJobs(jobs, now)
		if err != nil {
			return err
		}
		warnings := jobspec.Warnings(jobs)
		out := validateOutput{Valid: true, Jobs: summary, Problems: []string{}, Warnings: errorLines(warnings)}
		return a.render(*format, out, func() error {
			a.printWarnings(warnings)
			return printJobSummary(a, jobs, now, "valid")
		})
	}
	return cmd
}

// validateProblems reports the problems of a job set (exit 1).
func (a *app) validateProblems(format string, list jobspec.ErrorList) error {
	exit := &exitError{code: exitFailure, err: fmt.Errorf("%s, nothing is valid until all are fixed", countNoun(len(list), "problem"))}
	if format != formatJSON {
		fmt.Fprintln(a.stderr, list.Error())
		return exit
	}
	out := validateOutput{Jobs: []jobLine{}, Problems: errorLines(list), Warnings: []string{}}
	if err := a.printJSON(out); err != nil {
		return err
	}
	return exit
}

// errorLines formats each problem or warning as file:line:col: field: message.
func errorLines(list jobspec.ErrorList) []string {
	out := make([]string, 0, len(list))
	for _, p := range list {
		out = append(out, p.Error())
	}
	return out
}

// printWarnings prints the warnings of a job set on stderr, one per line.
// They never stop a command: validate, apply and dev go on.
func (a *app) printWarnings(warnings jobspec.ErrorList) {
	if len(warnings) > 0 {
		fmt.Fprintln(a.stderr, warnings.Error())
	}
}

// summarizeJobs says how each job runs and when it runs next after now.
func summarizeJobs(jobs []*jobspec.Job, now time.Time) ([]jobLine, error) {
	out := make([]jobLine, 0, len(jobs))
	for _, j := range jobs {
		line := jobLine{Name: j.Name, Runs: j.Schedule, Timezone: j.Timezone, Disabled: j.Disabled}
		switch {
		case len(j.Parents) > 0:
			line.Runs = "after " + strings.Join(j.Parents, ", ")
		case j.IsManual():
			line.Runs = "manual"
		default:
			s, err := j.ParsedSchedule(now)
			if err != nil {
				return nil, fmt.Errorf("job %s: %w", j.Name, err) // Load checked it; cannot happen
			}
			// An empty ISO 8601 start stands for now: its first run is now.
			occ, ok := jobspec.FirstOccurrence(s, now)
			line.Next, line.Never = occ.Time, !ok
		}
		if j.Disabled {
			line.Next, line.Never = time.Time{}, false
		}
		out = append(out, line)
	}
	return out, nil
}

// printJobSummary prints one line per job with its next run, then how
// many jobs there are and verb ("valid", "loaded").
func printJobSummary(a *app, jobs []*jobspec.Job, now time.Time, verb string) error {
	summary, err := summarizeJobs(jobs, now)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "JOB\tRUNS\tZONE\tNEXT RUN")
	for _, j := range summary {
		next := "-"
		switch {
		case j.Disabled:
			next = "disabled"
		case j.Never:
			next = "never"
		case !j.Next.IsZero():
			next = j.Next.Format("2006-01-02 15:04:05 MST")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", j.Name, j.Runs, j.Timezone, next)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "%s %s\n", countNoun(len(jobs), "job"), verb)
	return err
}
