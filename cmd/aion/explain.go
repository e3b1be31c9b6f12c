package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aionsched/aion/jobspec"
)

func newExplainCommand(a *app) *cobra.Command {
	var (
		zone    string
		count   int
		from    string
		seconds bool
		format  *string
	)
	cmd := &cobra.Command{
		Use:   "explain SCHEDULE",
		Short: "Print the next fire times of a schedule",
		Long: "Explain prints the next fire times of a cron expression or ISO 8601 repeating interval\n" +
			"in a time zone, with their UTC offsets. Times moved or repeated by a DST change are marked.",
		Example: "  aion explain '30 2 * * *' --tz Europe/Berlin --from 2026-03-27\n" +
			"  aion explain 'R3/2026-01-31T09:00:00/P1M' --tz America/New_York\n" +
			"  aion explain '*/10 * * * * *' --seconds -n 5\n" +
			"  aion explain '30 2 * * *' --tz Europe/Berlin -o json",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			loc, err := time.LoadLocation(zone)
			if err != nil {
				return &exitError{code: exitUsage, err: fmt.Errorf("--tz: unknown time zone %q", zone)}
			}
			start := time.Now().In(loc)
			if from != "" {
				if start, err = parseFrom(from, loc); err != nil {
					return &exitError{code: exitUsage, err: fmt.Errorf("--from: %w", err)}
				}
			}
			if count < 1 || count > 10_000 {
				return &exitError{code: exitUsage, err: fmt.Errorf("-n: want 1 to 10000, got %d", count)}
			}
			s, err := jobspec.ParseSchedule(args[0], jobspec.Options{Location: loc, CronSeconds: seconds, Now: start})
			if err != nil {
				return err
			}
			e := explainSchedule(s, args[0], loc, start, count)
			return a.render(*format, e, func() error { return a.printExplain(e) })
		},
	}
	format = outputFlag(cmd)
	cmd.Flags().StringVar(&zone, "tz", "UTC", "IANA time zone the schedule runs in")
	cmd.Flags().IntVarP(&count, "count", "n", 10, "how many fire times to print")
	cmd.Flags().StringVar(&from, "from", "", "start after this time (RFC 3339, or YYYY-MM-DD[THH:MM[:SS]] in --tz); default now")
	cmd.Flags().BoolVar(&seconds, "seconds", false, "the cron expression has a leading seconds field (cron_seconds: true)")
	return cmd
}

func parseFrom(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.In(loc), nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not RFC 3339 or YYYY-MM-DD[THH:MM[:SS]]", s)
}

// explanation is what `aion explain` prints; -o json prints it as is.
type explanation struct {
	Schedule    string    `json:"schedule"`
	Timezone    string    `json:"timezone"`
	Description string    `json:"description"` // how the schedule treats DST
	From        time.Time `json:"from"`
	Times       []fireAt  `json:"times"`
	// End is true when the schedule has no more times after the last.
	End bool `json:"end,omitempty"`
}

// fireAt is one fire time of a schedule.
type fireAt struct {
	Time time.Time `json:"time"` // in the schedule's zone
	// Wall is the wall time the schedule asked for (2006-01-02T15:04:05);
	// it differs from Time's reading when a DST jump skipped it.
	Wall string `json:"wall"`
	// Shift is "", "gap" (skipped by a DST jump: runs right after it),
	// "repeated-first" or "repeated-second"; Note says it in words.
	Shift string `json:"shift,omitempty"`
	Note  string `json:"note,omitempty"`
}

// explainSchedule lists up to n fire times of s after from.
func explainSchedule(s jobspec.Schedule, expr string, loc *time.Location, from time.Time, n int) explanation {
	e := explanation{Schedule: expr, Timezone: loc.String(), Description: describe(s), From: from, Times: []fireAt{}}
	occ, ok := jobspec.FirstOccurrence(s, from)
	for ; len(e.Times) < n; occ, ok = jobspec.NextOccurrence(s, occ.Time) {
		if !ok {
			e.End = true
			break
		}
		at := fireAt{Time: occ.Time.In(loc), Wall: occ.Wall.Format("2006-01-02T15:04:05")}
		switch occ.Shift {
		case jobspec.ShiftedByGap:
			at.Shift, at.Note = "gap", occ.Shift.String()
		case jobspec.FirstOfRepeated:
			at.Shift, at.Note = "repeated-first", occ.Shift.String()
		case jobspec.SecondOfRepeated:
			at.Shift, at.Note = "repeated-second", occ.Shift.String()
		}
		e.Times = append(e.Times, at)
	}
	return e
}

func (a *app) printExplain(e explanation) error {
	fmt.Fprintf(a.stdout, "%s in %s: %s\n", e.Schedule, e.Timezone, e.Description)
	since := "after"
	if len(e.Times) > 0 && e.Times[0].Time.Equal(e.From) {
		since = "from" // an empty ISO 8601 start: the first time is from itself
	}
	fmt.Fprintf(a.stdout, "fire times %s %s:\n", since, e.From.Format("2006-01-02 15:04:05 MST"))
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	for i, at := range e.Times {
		note := ""
		switch at.Shift {
		case "gap":
			_, wall, _ := strings.Cut(at.Wall, "T")
			note = fmt.Sprintf("* %s does not exist: %s", wall, at.Note)
		case "repeated-first", "repeated-second":
			note = "* " + at.Note
		}
		line := fmt.Sprintf("%3d\t%s\t%s\t%s\t%s", i+1, at.Time.Format("Mon 2006-01-02 15:04:05"),
			at.Time.Format("-07:00 MST"), at.Time.UTC().Format(time.RFC3339), note)
		fmt.Fprintln(w, strings.TrimRight(line, "\t"))
	}
	if e.End {
		fmt.Fprintln(w, "  (no more fire times)")
	}
	return w.Flush()
}

// describe says in words how the schedule treats DST.
func describe(s jobspec.Schedule) string {
	switch s := s.(type) {
	case *jobspec.CronSchedule:
		if s.KeepsElapsedSpacing() {
			return "cron with wildcard hours/minutes: fires at every matching wall time, so real spacing is kept across DST"
		}
		return "cron at fixed times: a time skipped by DST runs once right after the jump; a repeated time runs once"
	case *jobspec.EverySchedule:
		return fmt.Sprintf("every %s, anchored at the Unix epoch (DST does not apply)", s.Interval())
	case *jobspec.ISOSchedule:
		reps := "repeats forever"
		if r := s.Repetitions(); r >= 0 {
			reps = countNoun(r, "repetition") + " in all"
		}
		return fmt.Sprintf("ISO 8601 interval from %s, %s; day/month/year periods keep wall time", s.Start().Format(time.RFC3339), reps)
	}
	return "schedule"
}
