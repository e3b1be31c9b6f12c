package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

// Client settings.
const (
	// requestTimeout bounds one API call; the server answers within about
	// 10 s (its etcd timeout).
	requestTimeout = 30 * time.Second
	// maxAnswerBytes bounds an API answer the client reads.
	maxAnswerBytes = 64 << 20
	// pollEvery is how often run --wait and logs -f ask for more output.
	pollEvery = 300 * time.Millisecond
	// slowPlanNote is how long a requested run may go unplanned before the
	// client says it is waiting for the leader.
	slowPlanNote = 5 * time.Second
)

// clientCommands are the commands that talk to the API of a running
// scheduler (--server).
func clientCommands(a *app) []*cobra.Command {
	return []*cobra.Command{
		newApplyCommand(a),
		newJobsCommand(a),
		newJobCommand(a),
		newRunCommand(a),
		newHistoryCommand(a),
		newLogsCommand(a),
		newNodesCommand(a),
		newEnableCommand(a, "enable", false),
		newEnableCommand(a, "disable", true),
		newDeleteCommand(a),
		newKillCommand(a),
		newBackfillCommand(a),
		newPauseCommand(a, true),
		newPauseCommand(a, false),
	}
}

func newPauseCommand(a *app, pause bool) *cobra.Command {
	var (
		note    string
		catchup bool
	)
	cmd := &cobra.Command{
		Use:   "pause NAME --note TEXT",
		Short: "Pause a job: its nominal times are skipped and recorded until it is resumed",
		Args:  usageArgs(cobra.ExactArgs(1)),
	}
	verb := "pause"
	if pause {
		cmd.Flags().StringVar(&note, "note", "", "why, shown with the job and in each skipped record")
	} else {
		verb = "resume"
		cmd.Use = "resume NAME [--catchup]"
		cmd.Short = "Resume a paused job; with --catchup, run the times skipped while paused per its misfire policy"
		cmd.Flags().BoolVar(&catchup, "catchup", false, "run the times skipped while paused (misfire run-once: the latest; run-all: up to max_catchup)")
	}
	format := outputFlag(cmd)
	cmd.RunE = a.clientRun(format, func(ctx context.Context, c *apiClient, args []string) error {
		raw, err := c.do(ctx, http.MethodPost, jobPath(args[0])+"/"+verb, nil, api.PauseRequest{Note: note, Catchup: catchup, By: whoAmI()}, nil)
		if err != nil {
			return err
		}
		if *format == "json" {
			return a.printJSON(raw)
		}
		_, err = fmt.Fprintf(a.stdout, "%s of %s requested\n", verb, args[0])
		return err
	})
	return cmd
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
	cmd.RunE = a.clientRun(format, func(ctx context.Context, c *apiClient, args []string) error {
		id, err := store.ParseFireID(args[0])
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		raw, err := c.do(ctx, http.MethodPost, firePath(id)+"/kill", nil, api.KillRequest{By: whoAmI()}, nil)
		if err != nil {
			return err
		}
		if *format == "json" {
			return a.printJSON(raw)
		}
		_, err = fmt.Fprintf(a.stdout, "kill of %s requested\n", id)
		return err
	})
	return cmd
}

// apiClient calls the Aion API.
type apiClient struct {
	base string // the server URL without a trailing slash
	http *http.Client
}

// apiError is a 4xx or 5xx answer of the API.
type apiError struct {
	status   int
	msg      string
	problems []string
}

func (e *apiError) Error() string { return e.msg }

func newAPIClient(server string) (*apiClient, error) {
	base := strings.TrimRight(server, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &exitError{code: 2, err: fmt.Errorf("--server %q: want an http:// or https:// URL such as http://127.0.0.1:8080", server)}
	}
	return &apiClient{base: base, http: &http.Client{Timeout: requestTimeout}}, nil
}

// do sends a request with body as JSON (none when nil), decodes a 2xx
// answer into out (when not nil) and returns the answer's raw body. A
// server it cannot reach is an error that says so; a 4xx or 5xx answer is
// an *apiError.
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body, out any) ([]byte, error) {
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, r)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, target, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach the Aion API at %s: %v (is `aion dev` or a scheduler running? set --server)", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("read the answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e api.ErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
		}
		return data, &apiError{status: resp.StatusCode, msg: e.Error, problems: e.Problems}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return data, fmt.Errorf("bad answer to %s %s from %s: %w", method, path, c.base, err)
		}
	}
	return data, nil
}

func jobPath(name string) string { return "/v1/jobs/" + url.PathEscape(name) }

func firePath(id store.FireID) string {
	return "/v1/fires/" + url.PathEscape(id.Job) + "/" + url.PathEscape(id.Suffix)
}

func (c *apiClient) fire(ctx context.Context, id store.FireID) (store.Fire, error) {
	var f store.Fire
	_, err := c.do(ctx, http.MethodGet, firePath(id), nil, nil, &f)
	return f, err
}

// clientRun builds a command's RunE: it checks the output format, makes
// the client, and reports an API error as the server gave it (problems on
// stderr, exit 1).
func (a *app) clientRun(format *string, run func(ctx context.Context, c *apiClient, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if format != nil && *format != "table" && *format != "json" {
			return &exitError{code: 2, err: fmt.Errorf("%s: -o %q: want table or json", cmd.CommandPath(), *format)}
		}
		c, err := newAPIClient(a.cfg.Server)
		if err != nil {
			return err
		}
		err = run(cmd.Context(), c, args)
		var ae *apiError
		if errors.As(err, &ae) {
			for _, p := range ae.problems {
				fmt.Fprintln(a.stderr, p)
			}
			return &exitError{code: 1, err: errors.New(ae.msg)}
		}
		return err
	}
}

func outputFlag(cmd *cobra.Command) *string {
	return cmd.Flags().StringP("output", "o", "table", "output format: table or json (the API's answer)")
}

// printJSON writes an API answer indented.
func (a *app) printJSON(raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("bad JSON from the API: %w", err)
	}
	buf.WriteByte('\n')
	_, err := a.stdout.Write(buf.Bytes())
	return err
}

func newApplyCommand(a *app) *cobra.Command {
	var (
		paths         []string
		prune, dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "apply -f PATH [-f PATH...]",
		Short: "Store job files in the cluster",
		Long: "Apply reads job files and directories (recursively: *.yaml, *.yml; dot-files and dot-directories\n" +
			"are skipped), checks them as `aion validate` does and sends them to the API, which stores the whole\n" +
			"set in one transaction: all of it or, on any problem, none of it. With --prune, stored jobs that are\n" +
			"in none of the files are deleted (their fire history stays). --dry-run shows what would change.",
		Example: "  aion apply -f jobs/\n  aion apply -f jobs/ --prune --dry-run",
		Args:    usageArgs(cobra.NoArgs),
	}
	format := outputFlag(cmd)
	cmd.Flags().StringArrayVarP(&paths, "filename", "f", nil, "job file or directory (repeatable)")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete stored jobs that are not in the files")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change; write nothing")
	cmd.RunE = a.clientRun(format, func(ctx context.Context, c *apiClient, _ []string) error {
		if len(paths) == 0 {
			return &exitError{code: 2, err: errors.New("apply: name the job files or directories with -f PATH")}
		}
		// The same checks the server makes, first here: fast, and before anything is sent.
		if _, err := jobspec.Load(paths...); err != nil {
			var list jobspec.ErrorList
			if errors.As(err, &list) {
				fmt.Fprintln(a.stderr, list.Error())
				return &exitError{code: 1, err: fmt.Errorf("%s, nothing applied", countNoun(len(list), "problem"))}
			}
			return err
		}
		files, err := readJobFiles(paths)
		if err != nil {
			return err
		}
		query := url.Values{}
		if prune {
			query.Set("prune", "true")
		}
		if dryRun {
			query.Set("dry_run", "true")
		}
		var res api.ApplyResponse
		raw, err := c.do(ctx, http.MethodPost, "/v1/apply", query, api.ApplyRequest{Files: files}, &res)
		if err != nil {
			return err
		}
		if *format == "json" {
			return a.printJSON(raw)
		}
		return a.printApply(res)
	})
	return cmd
}

// readJobFiles reads the files jobspec.Load reads, named the same way, so
// that the server reports problems with the paths the user gave.
func readJobFiles(paths []string) ([]api.File, error) {
	var files []api.File
	for _, p := range paths {
		found, err := jobspec.Files(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		for _, name := range found {
			data, err := os.ReadFile(name)
			if err != nil {
				return nil, fmt.Errorf("read %w", err)
			}
			files = append(files, api.File{Name: name, Content: string(data)})
		}
	}
	return files, nil
}

func (a *app) printApply(res api.ApplyResponse) error {
	changes := make(map[string]string)
	for _, group := range []struct {
		what  string
		names []string
	}{{"created", res.Created}, {"updated", res.Updated}, {"unchanged", res.Unchanged}, {"deleted", res.Deleted}} {
		for _, name := range group.names {
			changes[name] = group.what
		}
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "JOB\tRESULT")
	for _, name := range slices.Sorted(maps.Keys(changes)) {
		fmt.Fprintf(w, "%s\t%s\n", name, changes[name])
	}
	if err := w.Flush(); err != nil {
		return err
	}
	summary := fmt.Sprintf("%d created, %d updated, %d unchanged, %d deleted",
		len(res.Created), len(res.Updated), len(res.Unchanged), len(res.Deleted))
	if res.DryRun {
		summary += " (dry run: nothing was written)"
	}
	_, err := fmt.Fprintln(a.stdout, summary)
	return err
}

func countNoun(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func newJobsCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List the stored jobs with their next run and last result",
		Args:  usageArgs(cobra.NoArgs),
	}
	format := outputFlag(cmd)
	cmd.RunE = a.clientRun(format, func(ctx context.Context, c *apiClient, _ []string) error {
		var list api.JobList
		raw, err := c.do(ctx, http.MethodGet, "/v1/jobs", nil, nil, &list)
		if err != nil {
			return err
		}
		if *format == "json" {
			return a.printJSON(raw)
		}
		w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tSCHEDULE\tZONE\tNEXT RUN\tLAST RESULT")
		for _, j := range list.Jobs {
			next := "-"
			switch {
			case j.Disabled:
				next = "disabled"
			case !j.Next.IsZero():
				next = formatIn(j.Next, j.Timezone)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", j.Name, j.Schedule, j.Timezone, next, orDash(string(j.LastResult)))
		}
		return w.Flush()
	})
	return cmd
}

// formatIn formats t in the named zone (the API sends times with their
// offset only).
func formatIn(t time.Time, zone string) string {
	if loc, err := time.LoadLocation(zone); err == nil {
		t = t.In(loc)
	}
	return t.Format("2006-01-02 15:04:05 MST")
}

func formatLocal(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newJobCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job NAME",
		Short: "Show a job: its definition, state, next runs and recent fires",
		Args:  usageArgs(cobra.ExactArgs(1)),
	}
	format := outputFlag(cmd)
	cmd.RunE = a.clientRun(format, func(ctx context.Context, c *apiClient, args []string) error {
		var d api.JobDetail
		raw, err := c.do(ctx, http.MethodGet, jobPath(args[0]), nil, nil, &d)
		if err != nil {
			return err
		}
		if *format == "json" {
			return a.printJSON(raw)
		}
		return a.printJobDetail(d)
	})
	return cmd
}

func (a *app) printJobDetail(d api.JobDetail) error {
	j := d.Job
	if j == nil {
		return errors.New("the API sent a job detail without the job")
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(w, "%s:\t%s\n", name, value)
		}
	}
	field("Name", j.Name)
	field("Description", j.Description)
	field("Owner", j.Owner)
	switch {
	case len(j.Parents) > 0:
		field("Runs", "after "+strings.Join(j.Parents, ", ")+" (all succeeded)")
	case j.IsManual():
		field("Runs", "manual (aion run "+j.Name+")")
	default:
		field("Runs", j.Schedule+" in "+j.Timezone)
	}
	if j.Disabled {
		field("Disabled", "yes: scheduled times are skipped (aion enable "+j.Name+")")
	}
	if j.Command != "" {
		field("Command", j.Command)
	} else {
		field("Args", strings.Join(quoteAll(j.Args), " "))
	}
	if j.Container != nil {
		field("Container", j.Container.Image)
	}
	if len(j.Env) > 0 {
		field("Env", strings.Join(slices.Sorted(maps.Keys(j.Env)), ", "))
	}
	if j.Timeout > 0 {
		field("Timeout", j.Timeout.String())
	}
	field("Constraints", strings.Join(j.Constraints, ", "))
	field("Concurrency", string(j.Concurrency))
	misfire := fmt.Sprintf("%s (late beyond the scheduler's grace)", j.Misfire.Policy)
	if j.Misfire.Policy == jobspec.MisfireRunAll {
		misfire += fmt.Sprintf(", at most %d", j.Misfire.MaxCatchup)
	}
	if j.Misfire.StartingDeadline > 0 {
		misfire += fmt.Sprintf("; starting deadline %s", j.Misfire.StartingDeadline)
	}
	field("Misfire", misfire)
	if j.Retries.Count > 0 {
		onLost := "lost runs are not retried"
		if j.Retries.OnLost {
			onLost = "lost runs are retried too"
		}
		field("Retries", fmt.Sprintf("%d on failure or timeout (backoff %s doubling up to %s, jittered); %s", j.Retries.Count, j.Retries.Backoff.Initial, j.Retries.Backoff.Max, onLost))
	} else {
		field("Retries", "none")
	}
	if j.SoftFail {
		field("Soft fail", "yes: its children run even when it fails")
	}
	st := d.State
	if st.Paused {
		field("Paused", fmt.Sprintf("since %s by %s: %s (aion resume %s)", formatLocal(st.PausedAt), orDash(st.PausedBy), orDash(st.PauseNote), j.Name))
	}
	field("Last fire", st.LastFire)
	field("Last result", string(st.LastResult))
	if !st.LastSuccess.IsZero() {
		field("Last success", formatLocal(st.LastSuccess))
	}
	if st.Skipped > 0 {
		field("Skipped", strconv.Itoa(st.Skipped)+" nominal times")
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(d.Next) > 0 {
		fmt.Fprintln(a.stdout, "\nNext runs:")
		loc := j.Location()
		for i, n := range d.Next {
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
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if len(d.Fires) > 0 {
		fmt.Fprintln(a.stdout, "\nRecent fires:")
		return a.printFires(d.Fires)
	}
	return nil
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, s := range args {
		out[i] = s
		if s == "" || strings.ContainsAny(s, " \t\n'\"\\$") {
			out[i] = strconv.Quote(s)
		}
	}
	return out
}

func (a *app) printFires(fires []store.Fire) error {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FIRE\tTRIGGER\tATTEMPT\tSTATE\tNODE\tSTARTED\tDURATION\tEXIT\tREASON")
	row := func(id string, trigger store.Trigger, attempt int, state store.FireState, node string, started, ended time.Time, code *int, reason string) {
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
	return w.Flush()
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func newRunCommand(a *app) *cobra.Command {
	var (
		env        []string
		runArgs    []string
		downstream bool
		wait       bool
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
	cmd.Flags().StringArrayVar(&runArgs, "arg", nil, "an argument for this run (repeatable)")
	cmd.Flags().BoolVar(&downstream, "downstream", false, "also run the dependent jobs afterwards")
	cmd.RunE = a.clientRun(format, func(ctx context.Context, c *apiClient, args []string) error {
		req := api.RunRequest{By: whoAmI(), Args: runArgs, Downstream: downstream}
		for _, kv := range env {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return &exitError{code: 2, err: fmt.Errorf("run: --env %q: want NAME=VALUE", kv)}
			}
			if req.Env == nil {
				req.Env = make(map[string]string)
			}
			req.Env[k] = v
		}
		var res api.RunResponse
		raw, err := c.do(ctx, http.MethodPost, jobPath(args[0])+"/run", nil, req, &res)
		if err != nil {
			return err
		}
		if !wait {
			if *format == "json" {
				return a.printJSON(raw)
			}
			_, err := fmt.Fprintln(a.stdout, res.Fire)
			return err
		}
		id, err := store.ParseFireID(res.Fire)
		if err != nil {
			return fmt.Errorf("the API answered with a bad fire ID: %w", err)
		}
		fmt.Fprintf(a.stderr, "aion: %s requested\n", id)
		out := a.stdout
		if *format == "json" {
			out = io.Discard // the final record is printed instead
		}
		f, err := c.streamOutput(ctx, id, out, a.stderr, true)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("stopped waiting; %s goes on (aion logs -f %s)", id, id)
			}
			return err
		}
		if *format == "json" {
			data, err := json.Marshal(f)
			if err != nil {
				return err
			}
			if err := a.printJSON(data); err != nil {
				return err
			}
		}
		return runExit(f)
	})
	return cmd
}

// runExit maps a final fire to the exit code of `aion run --wait`: 0 on
// success, the job's exit code when it has one, else 1.
func runExit(f store.Fire) error {
	if f.State == store.FireSucceeded {
		return nil
	}
	code := 1
	if f.ExitCode != nil && *f.ExitCode > 0 && *f.ExitCode < 256 {
		code = *f.ExitCode
	}
	msg := fmt.Sprintf("%s %s", f.ID, f.State)
	if f.Reason != "" {
		msg += ": " + f.Reason
	}
	return &exitError{code: code, err: errors.New(msg)}
}

// whoAmI names the person asking for a run, for the fire record.
func whoAmI() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if host, err := os.Hostname(); err == nil {
		return name + "@" + host
	}
	return name
}

// streamOutput writes a fire's output to w from its start. With follow it
// waits for the fire to be planned, to start and to end, and returns once
// all of its output is written; without, it writes what there is now. It
// returns the fire's record as it was last seen, and reports waits to notes.
func (c *apiClient) streamOutput(ctx context.Context, id store.FireID, w, notes io.Writer, follow bool) (store.Fire, error) {
	var offset int64
	attempt := 0
	noted := make(map[string]bool)
	note := func(key, format string, args ...any) {
		if !noted[key] {
			noted[key] = true
			fmt.Fprintf(notes, "aion: "+format+"\n", args...)
		}
	}
	start := time.Now()
	for {
		var chunk api.LogChunk
		_, err := c.do(ctx, http.MethodGet, firePath(id)+"/log", url.Values{"offset": {strconv.FormatInt(offset, 10)}}, nil, &chunk)
		var ae *apiError
		switch {
		case err == nil:
			if attempt != 0 && chunk.Attempt != attempt {
				// A retry: its output is new, from the start.
				fmt.Fprintf(notes, "aion: %s: attempt %d\n", id, chunk.Attempt)
				attempt, offset = chunk.Attempt, 0
				continue
			}
			attempt = chunk.Attempt
			if _, err := w.Write(chunk.Data); err != nil {
				return store.Fire{}, err
			}
			offset += int64(len(chunk.Data))
			more := offset < chunk.Size
			if more && len(chunk.Data) > 0 {
				continue // the rest is there already
			}
			if chunk.Final || !follow {
				if chunk.Note != "" && offset == 0 {
					note("final", "%s: %s", id, chunk.Note)
				}
				return c.fire(ctx, id)
			}
		case !errors.As(err, &ae):
			return store.Fire{}, err
		case ae.status == http.StatusNotFound && follow:
			// A requested run has no record until the leader plans it.
			if time.Since(start) > slowPlanNote {
				note("unplanned", "%s is not planned yet: waiting for the leader (is a scheduler running?)", id)
				if _, jerr := c.do(ctx, http.MethodGet, jobPath(id.Job), nil, nil, nil); jerr != nil {
					return store.Fire{}, fmt.Errorf("%s will not run: %w", id, jerr)
				}
			}
		case ae.status == http.StatusConflict && follow:
			note("unplaced", "%s waits: %s", id, ae.msg)
		case ae.status == http.StatusBadGateway:
			f, ferr := c.fire(ctx, id)
			if ferr != nil {
				return f, ferr
			}
			if f.State.Final() {
				// The executor that ran it is gone: what the record keeps is all there is.
				if offset == 0 {
					note("tail", "%s; printing the last %d bytes kept in the fire record", ae.msg, len(f.OutputTail))
					if _, err := io.WriteString(w, f.OutputTail); err != nil {
						return f, err
					}
				} else {
					note("tail", "%s; the output may be incomplete", ae.msg)
				}
				return f, nil
			}
			if !follow {
				return f, err
			}
			note("unreachable", "%s; still waiting", ae.msg)
		default:
			return store.Fire{}, err
		}
		select {
		case <-ctx.Done():
			return store.Fire{}, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

func newHistoryCommand(a *app) *cobra.Command {
	var n int
	cmd := &cobra.Command{
		Use:   "history NAME [-n N]",
		Short: "List a job's recent fires, newest first",
		Args:  usageArgs(cobra.ExactArgs(1)),
	}
	format := outputFlag(cmd)
	cmd.Flags().IntVarP(&n, "count", "n", api.DefaultFireLimit, fmt.Sprintf("how many fires to list (1 to %d)", api.MaxFireLimit))
	cmd.RunE = a.clientRun(format, func(ctx context.Context, c *apiClient, args []string) error {
		if n < 1 || n > api.MaxFireLimit {
			return &exitError{code: 2, err: fmt.Errorf("history: -n: want 1 to %d, got %d", api.MaxFireLimit, n)}
		}
		var list api.FireList
		raw, err := c.do(ctx, http.MethodGet, jobPath(args[0])+"/fires", url.Values{"limit": {strconv.Itoa(n)}}, nil, &list)
		if err != nil {
			return err
		}
		if *format == "json" {
			return a.printJSON(raw)
		}
		if len(list.Fires) == 0 {
			_, err := fmt.Fprintf(a.stdout, "%s has not run yet\n", args[0])
			return err
		}
		return a.printFires(list.Fires)
	})
	return cmd
}

func newLogsCommand(a *app) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs FIRE-ID [-f]",
		Short: "Print the output of a run",
		Long: "Logs prints the output of a run, fetched from the executor that ran it. With -f it follows a\n" +
			"running fire until it ends. Fire IDs are job@suffix, as `aion history` lists them.",
		Example: "  aion logs backup@2026-11-24T02:00:00Z\n  aion logs -f reindex@manual-2026-11-24T09:12:00.123Z",
		Args:    usageArgs(cobra.ExactArgs(1)),
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "wait for more output until the fire ends")
	cmd.RunE = a.clientRun(nil, func(ctx context.Context, c *apiClient, args []string) error {
		id, err := store.ParseFireID(args[0])
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("logs: %w", err)}
		}
		_, err = c.streamOutput(ctx, id, a.stdout, a.stderr, follow)
		return err
	})
	return cmd
}

func newNodesCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the live executors with their load",
		Args:  usageArgs(cobra.NoArgs),
	}
	format := outputFlag(cmd)
	cmd.RunE = a.clientRun(format, func(ctx context.Context, c *apiClient, _ []string) error {
		var list api.NodeList
		raw, err := c.do(ctx, http.MethodGet, "/v1/nodes", nil, nil, &list)
		if err != nil {
			return err
		}
		if *format == "json" {
			return a.printJSON(raw)
		}
		w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tLABELS\tSLOTS\tRUNNING\tLOAD")
		for _, n := range list.Nodes {
			labels := make([]string, 0, len(n.Labels))
			for _, k := range slices.Sorted(maps.Keys(n.Labels)) {
				labels = append(labels, k+"="+n.Labels[k])
			}
			running, load := "-", "-"
			if !n.LastReport.IsZero() {
				running, load = strconv.Itoa(n.Running), strconv.FormatFloat(n.Load1, 'f', 2, 64)
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", n.ID, orDash(strings.Join(labels, ",")), n.Slots, running, load)
		}
		return w.Flush()
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
	cmd.RunE = a.clientRun(format, func(ctx context.Context, c *apiClient, args []string) error {
		var res api.EnableResponse
		raw, err := c.do(ctx, http.MethodPost, jobPath(args[0])+"/"+verb, nil, nil, &res)
		if err != nil {
			return err
		}
		if *format == "json" {
			return a.printJSON(raw)
		}
		state := "enabled"
		if res.Disabled {
			state = "disabled"
		}
		if !res.Changed {
			_, err = fmt.Fprintf(a.stdout, "%s was already %s\n", res.Job, state)
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "%s %s\n", res.Job, state)
		return err
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
	cmd.RunE = a.clientRun(format, func(ctx context.Context, c *apiClient, args []string) error {
		var res api.DeleteResponse
		var query url.Values
		if *cascade {
			query = url.Values{"cascade": {"true"}}
		}
		raw, err := c.do(ctx, http.MethodDelete, jobPath(args[0]), query, nil, &res)
		if err != nil {
			return err
		}
		if *format == "json" {
			return a.printJSON(raw)
		}
		_, err = fmt.Fprintf(a.stdout, "%s deleted\n", res.Deleted)
		for _, c := range res.Cascaded {
			fmt.Fprintf(a.stdout, "%s deleted (depends on %s)\n", c, res.Deleted)
		}
		return err
	})
	return cmd
}

func newBackfillCommand(a *app) *cobra.Command {
	var (
		from, to string
		parallel int
		dryRun   bool
	)
	cmd := &cobra.Command{
		Use:   "backfill NAME --from T --to T [--dry-run] [--parallel N]",
		Short: "Run every nominal time of a past (or future) range",
		Long: "Backfill plans every nominal time of the job in [--from, --to] with the fire IDs normal runs\n" +
			"have, so times that already ran are left alone and backfilling twice runs nothing twice.\n" +
			"Times are RFC 3339, or YYYY-MM-DD[THH:MM[:SS]] in UTC.",
		Example: "  aion backfill report --from 2026-11-01 --to 2026-11-07 --parallel 2\n  aion backfill report --from 2026-11-01 --to 2026-11-07 --dry-run",
		Args:    usageArgs(cobra.ExactArgs(1)),
	}
	cmd.Flags().StringVar(&from, "from", "", "first time of the range (inclusive)")
	cmd.Flags().StringVar(&to, "to", "", "last time of the range (inclusive)")
	cmd.Flags().IntVar(&parallel, "parallel", 0, "at most this many of its runs at once (0: no limit)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list the times without planning them")
	format := outputFlag(cmd)
	cmd.RunE = a.clientRun(format, func(ctx context.Context, c *apiClient, args []string) error {
		var req api.BackfillRequest
		var err error
		if req.From, err = parseFrom(from, time.UTC); err != nil || from == "" {
			return &exitError{code: 2, err: fmt.Errorf("backfill: --from: want RFC 3339 or YYYY-MM-DD[THH:MM[:SS]] (UTC)")}
		}
		if req.To, err = parseFrom(to, time.UTC); err != nil || to == "" {
			return &exitError{code: 2, err: fmt.Errorf("backfill: --to: want RFC 3339 or YYYY-MM-DD[THH:MM[:SS]] (UTC)")}
		}
		req.Parallel, req.DryRun, req.By = parallel, dryRun, whoAmI()
		var res api.BackfillResponse
		raw, err := c.do(ctx, http.MethodPost, jobPath(args[0])+"/backfill", nil, req, &res)
		if err != nil {
			return err
		}
		if *format == "json" {
			return a.printJSON(raw)
		}
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
		_, err = fmt.Fprintf(a.stdout, "%d of %d nominal times %s\n", res.New, len(res.Times), verb)
		return err
	})
	return cmd
}
