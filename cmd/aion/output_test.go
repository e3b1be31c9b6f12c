package main

import (
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// decodeOutput decodes a command's stdout as exactly one JSON value.
func decodeOutput[T any](t *testing.T, stdout string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", stdout, err)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value in %q", stdout)
	}
	return v
}

func TestOutput_ValidateJSONListsTheJobsOrTheProblems(t *testing.T) {
	t.Chdir("../..")
	code, stdout, stderr := runAion(t, "validate", "-o", "json", "testdata/jobs")
	if code != 0 || stderr != "" {
		t.Fatalf("validate -o json: exit %d, stderr %q", code, stderr)
	}
	out := decodeOutput[validateOutput](t, stdout)
	var names []string
	for _, j := range out.Jobs {
		names = append(names, j.Name)
	}
	slices.Sort(names)
	want := slices.Sorted(slices.Values(exampleJobs))
	if !out.Valid || !slices.Equal(names, want) || out.Problems == nil || len(out.Problems) != 0 {
		t.Errorf("validate -o json: valid %v, jobs %q, problems %q; want valid, %q and no problems", out.Valid, names, out.Problems, want)
	}
	for _, j := range out.Jobs {
		switch {
		case j.Name == "reindex" && (j.Runs != "manual" || !j.Next.IsZero()):
			t.Errorf("reindex: runs %q next %v; want manual and no next run", j.Runs, j.Next)
		case j.Name == "clean-orders" && j.Runs != "after extract":
			t.Errorf("clean-orders: runs %q, want after extract", j.Runs)
		case j.Name == "heartbeat" && (j.Next.IsZero() || j.Never):
			t.Errorf("heartbeat: next %v never %v; want a next run", j.Next, j.Never)
		}
	}

	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.yaml", "name: Bad\nschedule: manual\ncommand: x\n")
	code, stdout, stderr = runAion(t, "validate", "-o", "json", bad)
	if code != 1 || !strings.Contains(stderr, "aion: 1 problem, nothing is valid until all are fixed") {
		t.Fatalf("validate -o json of a bad file: exit %d, stderr %q; want 1 and the count", code, stderr)
	}
	out = decodeOutput[validateOutput](t, stdout)
	if out.Valid || len(out.Jobs) != 0 || len(out.Problems) != 1 || !strings.HasPrefix(out.Problems[0], bad+":1:") {
		t.Errorf("validate -o json of a bad file: %+v; want invalid with the one problem at %s:1", out, bad)
	}
}

func TestOutput_ExplainJSONHasTheTimesTheTableShows(t *testing.T) {
	t.Chdir(t.TempDir())
	code, stdout, stderr := runAion(t, "explain", "30 2 * * *", "--tz", "Europe/Berlin", "--from", "2026-03-27", "-n", "3", "-o", "json")
	if code != 0 || stderr != "" {
		t.Fatalf("explain -o json: exit %d, stderr %q", code, stderr)
	}
	e := decodeOutput[explanation](t, stdout)
	if e.Schedule != "30 2 * * *" || e.Timezone != "Europe/Berlin" || !strings.HasPrefix(e.Description, "cron at fixed times") || e.End {
		t.Errorf("explain -o json: %+v", e)
	}
	wantUTC := []string{"2026-03-27T01:30:00Z", "2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z"}
	if len(e.Times) != len(wantUTC) {
		t.Fatalf("explain -o json: %d times, want %d", len(e.Times), len(wantUTC))
	}
	for i, at := range e.Times {
		if got := at.Time.UTC().Format(time.RFC3339); got != wantUTC[i] {
			t.Errorf("time %d: %s, want %s", i+1, got, wantUTC[i])
		}
	}
	if gap := e.Times[2]; gap.Shift != "gap" || gap.Wall != "2026-03-29T02:30:00" || gap.Note != "skipped by DST jump, runs right after it" {
		t.Errorf("the DST gap: %+v", gap)
	}
	if first := e.Times[0]; first.Shift != "" || first.Note != "" {
		t.Errorf("an ordinary time is marked: %+v", first)
	}

	code, stdout, _ = runAion(t, "explain", "R1/2026-01-31T09:00:00/P1M", "--from", "2026-01-01", "-n", "5", "-o", "json")
	if e := decodeOutput[explanation](t, stdout); code != 0 || len(e.Times) != 1 || !e.End {
		t.Errorf("explain -o json of an ending schedule: exit %d, %+v; want one time and the end", code, e)
	}
}

func TestOutput_VersionJSON(t *testing.T) {
	t.Chdir(t.TempDir())
	code, stdout, stderr := runAion(t, "version", "-o", "json")
	if code != 0 || stderr != "" || decodeOutput[versionOutput](t, stdout).Version != "dev" {
		t.Errorf("version -o json: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestOutput_EveryCommandThatPrintsDataRefusesAnUnknownFormat(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, args := range [][]string{
		{"validate", "x.yaml"}, {"explain", "* * * * *"}, {"version"}, {"logs", "a@b"},
		{"jobs"}, {"job", "a"}, {"history", "a"}, {"nodes"}, {"run", "a"}, {"apply", "-f", "x"},
		{"enable", "a"}, {"disable", "a"}, {"delete", "a"}, {"kill", "a@b"}, {"pause", "a"}, {"resume", "a"},
		{"backfill", "a", "--from", "2026-01-01", "--to", "2026-01-02"}, {"bench"},
		{"token", "create", "ci", "--role", "viewer"}, {"token", "list"}, {"token", "revoke", "ci"},
	} {
		code, stdout, stderr := runAion(t, append(args, "-o", "yaml", "--server", "http://127.0.0.1:1")...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, `-o "yaml": want table or json`) {
			t.Errorf("%v -o yaml: exit %d, stdout %q, stderr %q; want a usage error", args, code, stdout, stderr)
		}
	}
}

// Every command takes -o but those that run servers (their output is a
// log) and cobra's own; the whole tree is walked, so subcommands (aion
// token create) are checked too, and a group (aion token) by its
// subcommands.
func TestOutput_EveryCommandHasTheOutputFlag(t *testing.T) {
	servers := map[string]bool{"dev": true, "scheduler": true, "executor": true, "completion": true, "help": true}
	root := newRootCommand(io.Discard, io.Discard)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	checked := 0
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		if servers[cmd.Name()] {
			return
		}
		if cmd.HasSubCommands() {
			for _, sub := range cmd.Commands() {
				walk(sub)
			}
			return
		}
		checked++
		if f := cmd.Flags().ShorthandLookup("o"); f == nil || f.Name != "output" {
			t.Errorf("%s has no -o/--output", cmd.CommandPath())
		}
	}
	walk(root)
	if checked < 20 {
		t.Errorf("walked %d commands; the tree has more", checked)
	}
}
