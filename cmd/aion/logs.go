package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aionsched/aion/scheduler/api"
)

// logsOutput is what `aion logs -o json` prints: one object, once the
// output has been read (with -f, once the fire has ended).
type logsOutput struct {
	// Fire is the fire's record as last seen.
	Fire api.Fire `json:"fire"`
	// Output is the whole output of the fire's latest attempt, as text
	// (bytes that are not UTF-8 become U+FFFD).
	Output string `json:"output"`
	// FromRecord is true when the executor that ran the fire was gone:
	// Output is then the tail the fire record keeps, or may be incomplete.
	FromRecord bool `json:"from_record"`
	// Notes say what there was to wait for or work around, and why there
	// is no output when there is none (e.g. "the run wrote no output").
	Notes []string `json:"notes"`
}

func newLogsCommand(a *app) *cobra.Command {
	var (
		follow  bool
		attempt int
	)
	cmd := &cobra.Command{
		Use:   "logs NAME|FIRE-ID [-f] [--attempt N] [-o json]",
		Short: "Print the output of a run",
		Long: "Logs prints the output of a run, fetched from the executor that ran it: of a fire (job@suffix,\n" +
			"as `aion history` lists them), or of a job's latest fire. It prints the fire's latest attempt;\n" +
			"--attempt N prints attempt N (1 is the first) of a retried fire. With -f it follows a running\n" +
			"fire until it ends.\n\n" +
			"With -o json it prints one JSON object once the output is read (with -f: once the fire has\n" +
			"ended): {\"fire\": the fire record, \"output\": the output as text, \"from_record\": true when\n" +
			"the executor was gone and the output is the tail the record keeps, \"notes\": [...]}. Notes\n" +
			"also go to stderr as they happen.",
		Example: "  aion logs backup\n  aion logs backup --attempt 1\n  aion logs backup@2026-11-24T02:00:00Z\n" +
			"  aion logs -f reindex@manual-2026-11-24T09:12:00.123Z\n  aion logs -f -o json reindex@manual-2026-11-24T09:12:00.123Z",
		Args: usageArgs(cobra.ExactArgs(1)),
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "wait for more output until the fire ends")
	cmd.Flags().IntVar(&attempt, "attempt", 0, "the attempt to print, 1 for the first (default: the latest)")
	format := outputFlag(cmd)
	cmd.RunE = a.clientRun(func(ctx context.Context, c *api.Client, args []string) error {
		if attempt < 0 {
			return &exitError{code: exitUsage, err: fmt.Errorf("logs: --attempt %d: want 1 or more", attempt)}
		}
		id, err := logsFire(ctx, c, args[0])
		if err != nil {
			return err
		}
		opt := api.StreamOptions{Follow: follow, Attempt: attempt, Note: a.note}
		if *format == formatTable {
			res, err := c.StreamLog(ctx, id, a.stdout, opt)
			if err == nil && res.Fire.OutputWarning() != "" {
				a.note("warning: " + res.Fire.OutputWarning())
			}
			return err
		}
		out := logsOutput{Notes: []string{}}
		var buf bytes.Buffer
		opt.Note = func(msg string) {
			a.note(msg)
			out.Notes = append(out.Notes, msg)
		}
		res, err := c.StreamLog(ctx, id, &buf, opt)
		if err != nil {
			return err
		}
		out.Fire, out.Output, out.FromRecord = res.Fire, buf.String(), res.FromRecord
		if warning := res.Fire.OutputWarning(); warning != "" {
			a.note("warning: " + warning)
			out.Notes = append(out.Notes, "warning: "+warning)
		}
		return a.printJSON(out)
	})
	return cmd
}

// logsFire reads the argument of `aion logs`: a fire ID (job@suffix), or
// a job name, which means the job's latest fire.
func logsFire(ctx context.Context, c *api.Client, arg string) (api.FireID, error) {
	if strings.Contains(arg, "@") {
		return parseFireID("logs", arg)
	}
	list, err := c.Fires(ctx, arg, 1)
	if err != nil {
		return api.FireID{}, err
	}
	if len(list.Fires) == 0 {
		return api.FireID{}, &exitError{code: exitAion, err: fmt.Errorf("job %s has not run yet", arg)}
	}
	return list.Fires[0].ID, nil
}
