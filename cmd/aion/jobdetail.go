package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/api"
)

// printJobDetail prints `aion job NAME`: the definition and state as
// "Field: value" lines, then the next runs and the recent fires.
func (a *app) printJobDetail(d api.JobDetail) error {
	j := d.Job
	if j == nil {
		return errors.New("the API sent a job detail without the job")
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	f := fields{w: w}
	f.definition(j)
	f.policies(j)
	f.state(j.Name, d.State)
	if err := w.Flush(); err != nil {
		return err
	}
	if d.State.Paused {
		fmt.Fprintf(a.stdout, "\nNext runs: none while paused (aion resume %s)\n", j.Name)
	} else if err := a.printNextRuns(w, j.Location(), d.Next); err != nil {
		return err
	}
	if len(d.Fires) > 0 {
		fmt.Fprintln(a.stdout, "\nRecent fires:")
		return a.printFires(d.Fires)
	}
	return nil
}

// fields writes "Name:\tvalue" lines, leaving out empty values.
type fields struct{ w io.Writer }

func (f fields) add(name, value string) {
	if value != "" {
		fmt.Fprintf(f.w, "%s:\t%s\n", name, value)
	}
}

// definition writes what the job is and when it runs.
func (f fields) definition(j *jobspec.Job) {
	f.add("Name", j.Name)
	f.add("Description", j.Description)
	f.add("Owner", j.Owner)
	switch {
	case len(j.Parents) > 0:
		f.add("Runs", "after "+strings.Join(j.Parents, ", ")+" (all succeeded)")
	case j.IsManual():
		f.add("Runs", "manual (aion run "+j.Name+")")
	default:
		f.add("Runs", j.Schedule+" in "+j.Timezone)
	}
	if j.Disabled {
		f.add("Disabled", "yes: scheduled times are skipped (aion enable "+j.Name+")")
	}
	if j.Command != "" {
		f.add("Command", j.Command)
	} else {
		f.add("Args", strings.Join(quoteAll(j.Args), " "))
	}
	if j.Container != nil {
		f.add("Container", j.Container.Image)
	}
	if len(j.Env) > 0 {
		f.add("Env", strings.Join(slices.Sorted(maps.Keys(j.Env)), ", "))
	}
	if j.Timeout > 0 {
		f.add("Timeout", j.Timeout.String())
	}
	if j.OutputLimit > 0 {
		f.add("Output limit", j.OutputLimit.String())
	}
	f.add("Constraints", strings.Join(j.Constraints, ", "))
}

// policies writes how the job handles overlap, lateness and failure.
func (f fields) policies(j *jobspec.Job) {
	f.add("Concurrency", string(j.Concurrency))
	misfire := fmt.Sprintf("%s (late beyond the scheduler's grace)", j.Misfire.Policy)
	if j.Misfire.Policy == jobspec.MisfireRunAll {
		misfire += fmt.Sprintf(", at most %d", j.Misfire.MaxCatchup)
	}
	if j.Misfire.StartingDeadline > 0 {
		misfire += fmt.Sprintf("; starting deadline %s", j.Misfire.StartingDeadline)
	}
	f.add("Misfire", misfire)
	if j.Retries.Count > 0 {
		onLost := "lost runs are not retried"
		if j.Retries.OnLost {
			onLost = "lost runs are retried too"
		}
		f.add("Retries", fmt.Sprintf("%d on failure or timeout (backoff %s doubling up to %s, jittered); %s", j.Retries.Count, j.Retries.Backoff.Initial, j.Retries.Backoff.Max, onLost))
	} else {
		f.add("Retries", "none")
	}
	if j.SoftFail {
		f.add("Soft fail", "yes: its children run even when it fails")
	}
}

// state writes the job's scheduling state.
func (f fields) state(name string, st api.JobState) {
	if st.Paused {
		f.add("Paused", fmt.Sprintf("since %s by %s: %s (aion resume %s)", formatLocal(st.PausedAt), orDash(st.PausedBy), orDash(st.PauseNote), name))
	}
	f.add("Last fire", st.LastFire)
	f.add("Last result", string(st.LastResult))
	if !st.LastSuccess.IsZero() {
		f.add("Last success", formatLocal(st.LastSuccess))
	}
	if st.Skipped > 0 {
		f.add("Skipped", strconv.Itoa(st.Skipped)+" nominal times")
	}
}

// printNextRuns prints the coming times, marking those DST moves, through
// w (flushed after).
func (a *app) printNextRuns(w *tabwriter.Writer, loc *time.Location, next []api.NextRun) error {
	if len(next) == 0 {
		return nil
	}
	fmt.Fprintln(a.stdout, "\nNext runs:")
	for i, n := range next {
		local := n.Time.In(loc)
		note := ""
		switch n.Shift {
		case "gap":
			_, wall, _ := strings.Cut(n.Wall, "T")
			note = fmt.Sprintf("* %s does not exist: %s", wall, n.Note)
		case "":
		default:
			note = "* " + n.Note
		}
		line := fmt.Sprintf("%3d\t%s\t%s\t%s\t%s", i+1, local.Format("Mon 2006-01-02 15:04:05"),
			local.Format("-07:00 MST"), n.Time.UTC().Format(time.RFC3339), note)
		fmt.Fprintln(w, strings.TrimRight(line, "\t"))
	}
	return w.Flush()
}
