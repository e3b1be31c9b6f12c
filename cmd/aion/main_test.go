package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aionsched/aion/executor/supervisor"
	"github.com/aionsched/aion/jobspec"
)

// TestMain clears AION_* variables so a developer's environment cannot
// change the configuration the tests run with; tests that need one set it
// with t.Setenv.
func TestMain(m *testing.M) {
	supervisor.RunIfInvoked() // executors in these tests start supervisors from the test binary
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "AION_") {
			os.Unsetenv(name)
		}
	}
	os.Exit(m.Run())
}

// runAion runs the command line as main would and returns the exit code and
// what was written to stdout and stderr.
func runAion(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// lines splits output into lines without the trailing empty one.
func lines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// squash collapses runs of blanks, so table rows compare without column widths.
func squash(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// exampleJobs is every job defined in testdata/jobs.
var exampleJobs = []string{
	"heartbeat", "disk-usage", "backup", "rotate-logs", "weekday-report", // crontab.yaml
	"container-hello",        // docker.yaml
	"reindex", "sync-mirror", // manual.yaml
	"extract", "clean-orders", "clean-customers", "build-report", // nightly-dag.yaml
}

func TestValidate_ExampleJobsPass(t *testing.T) {
	t.Chdir("../..")
	// Keep exampleJobs in step with the files, so the count below is the real one.
	loaded, err := jobspec.Load("testdata/jobs")
	if err != nil {
		t.Fatalf("jobspec.Load(testdata/jobs): %v", err)
	}
	if got, want := len(loaded), len(exampleJobs); got != want {
		t.Fatalf("testdata/jobs holds %d jobs, exampleJobs lists %d; update exampleJobs", got, want)
	}

	tests := []struct {
		name  string
		paths []string
		jobs  []string
	}{
		{"directory", []string{"testdata/jobs"}, exampleJobs},
		{"two files", []string{"testdata/jobs/manual.yaml", "testdata/jobs/docker.yaml"}, []string{"reindex", "sync-mirror", "container-hello"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runAion(t, append([]string{"validate"}, tt.paths...)...)
			if got, want := code, 0; got != want {
				t.Errorf("exit code: got %d, want %d\nstderr:\n%s", got, want, stderr)
			}
			if stderr != "" {
				t.Errorf("stderr: got %q, want empty", stderr)
			}
			out := lines(stdout)
			// A header, one row per job, then the count.
			if got, want := len(out), len(tt.jobs)+2; got != want {
				t.Fatalf("stdout has %d lines, want %d:\n%s", got, want, stdout)
			}
			if got, want := strings.Fields(out[0]), []string{"JOB", "RUNS", "ZONE", "NEXT", "RUN"}; !slices.Equal(got, want) {
				t.Errorf("header: got %q, want %q", got, want)
			}
			var rows []string
			for _, row := range out[1 : len(out)-1] {
				rows = append(rows, strings.Fields(row)[0])
			}
			for _, name := range tt.jobs {
				if !slices.Contains(rows, name) {
					t.Errorf("job %q not listed; got jobs %q", name, rows)
				}
			}
			if got, want := out[len(out)-1], fmt.Sprintf("%d jobs valid", len(tt.jobs)); got != want {
				t.Errorf("last line: got %q, want %q", got, want)
			}
		})
	}
}

func TestValidate_ExampleJobRows(t *testing.T) {
	t.Chdir("../..")
	code, stdout, stderr := runAion(t, "validate", "testdata/jobs")
	if code != 0 {
		t.Fatalf("exit code: got %d, want 0\nstderr:\n%s", code, stderr)
	}
	// The NEXT RUN column depends on the clock, so rows with a schedule are
	// checked up to it (and that it is there); the others are compared whole.
	tests := []struct {
		job     string
		want    string
		nextRun bool // want is followed by the next run
	}{
		{"backup", "backup 30 2 * * * Europe/Berlin", true},
		{"weekday-report", "weekday-report 0 7 * * 1-5 America/New_York", true},
		{"heartbeat", "heartbeat */10 * * * * * UTC", true},
		{"sync-mirror", "sync-mirror R/2026-01-01T00:00:00Z/PT6H UTC", true},
		{"reindex", "reindex manual UTC -", false},
		{"clean-orders", "clean-orders after extract UTC -", false},
		{"build-report", "build-report after clean-orders, clean-customers UTC -", false},
	}
	for _, tt := range tests {
		t.Run(tt.job, func(t *testing.T) {
			var row string
			for _, l := range lines(stdout) {
				if strings.HasPrefix(l, tt.job+" ") {
					row = squash(l)
				}
			}
			if tt.nextRun {
				if next, ok := strings.CutPrefix(row, tt.want+" "); !ok || next == "" || next == "-" {
					t.Errorf("row: got %q, want %q followed by the next run", row, tt.want)
				}
			} else if got, want := row, tt.want; got != want {
				t.Errorf("row: got %q, want %q", got, want)
			}
		})
	}
}

// TestValidate_InvalidCasesFail runs validate on every case of
// testdata/invalid (a file, or a directory loaded as one set) and expects
// exactly the problems of its .golden file, then the count.
func TestValidate_InvalidCasesFail(t *testing.T) {
	t.Chdir("../..") // paths in the golden files are relative to the repository root
	entries, err := os.ReadDir("testdata/invalid")
	if err != nil {
		t.Fatal(err)
	}
	cases := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".golden") {
			continue
		}
		cases++
		name := strings.TrimSuffix(e.Name(), ".yaml")
		t.Run(name, func(t *testing.T) {
			golden, err := os.ReadFile(filepath.Join("testdata/invalid", name+".golden"))
			if err != nil {
				t.Fatalf("read golden file: %v", err)
			}
			want := lines(string(golden))

			code, stdout, stderr := runAion(t, "validate", filepath.Join("testdata/invalid", e.Name()))
			if got, want := code, 1; got != want {
				t.Errorf("exit code: got %d, want %d", got, want)
			}
			if stdout != "" {
				t.Errorf("stdout: got %q, want empty: nothing is valid when there is a problem", stdout)
			}
			got := lines(stderr)
			for _, line := range want {
				if !slices.Contains(got, line) {
					t.Errorf("stderr lacks golden line\n  %s\ngot stderr:\n%s", line, stderr)
				}
			}
			noun := "problems"
			if len(want) == 1 {
				noun = "problem"
			}
			summary := fmt.Sprintf("aion: %d %s, nothing is valid until all are fixed", len(want), noun)
			if last := got[len(got)-1]; last != summary {
				t.Errorf("last stderr line: got %q, want %q", last, summary)
			}
			if got, want := len(got), len(want)+1; got != want {
				t.Errorf("stderr has %d lines, want %d (the golden lines and the count):\n%s", got, want, stderr)
			}
		})
	}
	if cases == 0 {
		t.Fatal("no cases found in testdata/invalid")
	}
}

func TestValidate_MissingPathFails(t *testing.T) {
	t.Chdir("../..")
	missing := filepath.Join(t.TempDir(), "no-such-jobs.yaml")
	empty := t.TempDir()
	tests := []struct {
		name    string
		paths   []string
		inError string
	}{
		{"missing file", []string{missing}, missing},
		{"missing file with valid jobs", []string{"testdata/jobs", missing}, missing},
		{"missing relative directory", []string{"testdata/no-such-dir"}, "testdata/no-such-dir"},
		{"directory without job files", []string{empty}, empty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runAion(t, append([]string{"validate"}, tt.paths...)...)
			if got, want := code, 1; got != want {
				t.Errorf("exit code: got %d, want %d", got, want)
			}
			if stdout != "" {
				t.Errorf("stdout: got %q, want empty", stdout)
			}
			if !strings.Contains(stderr, tt.inError) {
				t.Errorf("stderr does not name %s; got:\n%s", tt.inError, stderr)
			}
			if want := "aion: 1 problem, nothing is valid until all are fixed\n"; !strings.HasSuffix(stderr, want) {
				t.Errorf("stderr: got %q, want it to end with %q", stderr, want)
			}
		})
	}
}
