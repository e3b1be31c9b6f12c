package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aionsched/aion/jobspec"
)

// TestMain clears AION_* variables so a developer's environment cannot
// change the configuration the tests run with; tests that need one set it
// with t.Setenv.
func TestMain(m *testing.M) {
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

// TestRun_UsageErrors checks that a command line that is wrong in itself
// exits 2, as run documents, and says what is wrong.
func TestRun_UsageErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	tests := []struct {
		name    string
		args    []string
		inError string
	}{
		{"validate without paths", []string{"validate"}, "requires at least 1 arg"},
		{"explain without schedule", []string{"explain"}, "accepts 1 arg"},
		{"explain with two schedules", []string{"explain", "* * * * *", "0 * * * *"}, "accepts 1 arg"},
		{"version with an argument", []string{"version", "extra"}, "unknown command"},
		{"unknown command", []string{"nosuch"}, `unknown command "nosuch"`},
		{"unknown flag", []string{"validate", "--bogus", "x"}, "unknown flag: --bogus"},
		{"explain -n not a number", []string{"explain", "* * * * *", "-n", "many"}, `invalid argument "many"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runAion(t, tt.args...)
			if got, want := code, 2; got != want {
				t.Errorf("exit code: got %d, want %d (usage error)\nstderr: %s", got, want, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout: got %q, want empty", stdout)
			}
			if !strings.Contains(stderr, tt.inError) {
				t.Errorf("stderr: got %q, want it to contain %q", stderr, tt.inError)
			}
		})
	}
}

func TestExplain_FireTimes(t *testing.T) {
	t.Chdir(t.TempDir())
	tests := []struct {
		name string
		args []string
		// first is the start of the first output line; rows are the fire
		// time lines with runs of blanks collapsed, and then nothing more.
		first string
		rows  []string
	}{
		{
			name:  "spring forward gap runs right after the jump",
			args:  []string{"30 2 * * *", "--tz", "Europe/Berlin", "--from", "2026-03-27", "-n", "3"},
			first: "30 2 * * * in Europe/Berlin: cron at fixed times",
			rows: []string{
				"1 Fri 2026-03-27 02:30:00 +01:00 CET 2026-03-27T01:30:00Z",
				"2 Sat 2026-03-28 02:30:00 +01:00 CET 2026-03-28T01:30:00Z",
				"3 Sun 2026-03-29 03:00:00 +02:00 CEST 2026-03-29T01:00:00Z * 02:30:00 does not exist: skipped by DST jump, runs right after it",
			},
		},
		{
			name:  "fall back repeats wildcard minutes",
			args:  []string{"*/30 2 * * *", "--tz", "Europe/Berlin", "--from", "2026-10-25T01:50", "-n", "5"},
			first: "*/30 2 * * * in Europe/Berlin: cron with wildcard hours/minutes",
			rows: []string{
				"1 Sun 2026-10-25 02:00:00 +02:00 CEST 2026-10-25T00:00:00Z * repeated by DST, first occurrence",
				"2 Sun 2026-10-25 02:30:00 +02:00 CEST 2026-10-25T00:30:00Z * repeated by DST, first occurrence",
				"3 Sun 2026-10-25 02:00:00 +01:00 CET 2026-10-25T01:00:00Z * repeated by DST, second occurrence",
				"4 Sun 2026-10-25 02:30:00 +01:00 CET 2026-10-25T01:30:00Z * repeated by DST, second occurrence",
				"5 Mon 2026-10-26 02:00:00 +01:00 CET 2026-10-26T01:00:00Z",
			},
		},
		{
			name:  "ISO 8601 months clamp to month end and stop after three",
			args:  []string{"R3/2026-01-31T09:00:00/P1M", "--tz", "America/New_York", "--from", "2026-01-01", "-n", "5"},
			first: "R3/2026-01-31T09:00:00/P1M in America/New_York: ISO 8601 interval from 2026-01-31T09:00:00-05:00, 3 repetitions",
			rows: []string{
				"1 Sat 2026-01-31 09:00:00 -05:00 EST 2026-01-31T14:00:00Z",
				"2 Sat 2026-02-28 09:00:00 -05:00 EST 2026-02-28T14:00:00Z",
				"3 Tue 2026-03-31 09:00:00 -04:00 EDT 2026-03-31T13:00:00Z",
				"(no more fire times)",
			},
		},
		{
			name:  "seconds field",
			args:  []string{"*/10 * * * * *", "--seconds", "-n", "3", "--from", "2026-11-24T10:00:05Z"},
			first: "*/10 * * * * * in UTC:",
			rows: []string{
				"1 Tue 2026-11-24 10:00:10 +00:00 UTC 2026-11-24T10:00:10Z",
				"2 Tue 2026-11-24 10:00:20 +00:00 UTC 2026-11-24T10:00:20Z",
				"3 Tue 2026-11-24 10:00:30 +00:00 UTC 2026-11-24T10:00:30Z",
			},
		},
		{
			name:  "from is exclusive",
			args:  []string{"*/10 * * * * *", "--seconds", "-n", "1", "--from", "2026-11-24T10:00:10Z"},
			first: "*/10 * * * * * in UTC:",
			rows:  []string{"1 Tue 2026-11-24 10:00:20 +00:00 UTC 2026-11-24T10:00:20Z"},
		},
		{
			name:  "RFC 3339 from is shown in the zone",
			args:  []string{"0 * * * *", "--tz", "Asia/Tokyo", "-n", "1", "--from", "2026-11-24T10:30:00Z"},
			first: "0 * * * * in Asia/Tokyo:",
			rows:  []string{"1 Tue 2026-11-24 20:00:00 +09:00 JST 2026-11-24T11:00:00Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runAion(t, append([]string{"explain"}, tt.args...)...)
			if got, want := code, 0; got != want {
				t.Fatalf("exit code: got %d, want %d\nstderr:\n%s", got, want, stderr)
			}
			if stderr != "" {
				t.Errorf("stderr: got %q, want empty", stderr)
			}
			out := lines(stdout)
			if len(out) < 2 {
				t.Fatalf("stdout too short:\n%s", stdout)
			}
			if got := out[0]; !strings.HasPrefix(got, tt.first) {
				t.Errorf("first line: got %q, want it to start with %q", got, tt.first)
			}
			var rows []string
			for _, l := range out[2:] {
				rows = append(rows, squash(l))
			}
			if !slices.Equal(rows, tt.rows) {
				t.Errorf("fire times:\ngot\n  %s\nwant\n  %s", strings.Join(rows, "\n  "), strings.Join(tt.rows, "\n  "))
			}
		})
	}
}

func TestExplain_Errors(t *testing.T) {
	t.Chdir(t.TempDir())
	tests := []struct {
		name     string
		args     []string
		wantCode int
		inError  string
	}{
		{"bad schedule", []string{"61 * * * *"}, 1, `cron "61 * * * *": minute: end of range (61) above maximum (59)`},
		{"six fields without --seconds", []string{"0 0 2 * * *"}, 1, "6 fields is ambiguous"},
		{"unknown zone", []string{"* * * * *", "--tz", "Nowhere/City"}, 2, `--tz: unknown time zone "Nowhere/City"`},
		{"zero count", []string{"* * * * *", "-n", "0"}, 2, "-n: want 1 to 10000, got 0"},
		{"count too large", []string{"* * * * *", "-n", "10001"}, 2, "-n: want 1 to 10000, got 10001"},
		{"bad from", []string{"* * * * *", "--from", "yesterday"}, 2, `--from: "yesterday" is not RFC 3339`},
		{"from with offset lacking colon", []string{"* * * * *", "--from", "2026-11-24T10:00:00+0100"}, 2, "--from:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runAion(t, append([]string{"explain"}, tt.args...)...)
			if got, want := code, tt.wantCode; got != want {
				t.Errorf("exit code: got %d, want %d\nstderr: %s", got, want, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout: got %q, want empty", stdout)
			}
			if want := "aion: "; !strings.HasPrefix(stderr, want) {
				t.Errorf("stderr: got %q, want it to start with %q", stderr, want)
			}
			if !strings.Contains(stderr, tt.inError) {
				t.Errorf("stderr: got %q, want it to contain %q", stderr, tt.inError)
			}
		})
	}
}

func TestVersion_PrintsDev(t *testing.T) {
	t.Chdir(t.TempDir())
	code, stdout, stderr := runAion(t, "version")
	if got, want := code, 0; got != want {
		t.Errorf("exit code: got %d, want %d\nstderr: %s", got, want, stderr)
	}
	if got, want := stdout, "aion dev\n"; got != want {
		t.Errorf("stdout: got %q, want %q", got, want)
	}
	if stderr != "" {
		t.Errorf("stderr: got %q, want empty", stderr)
	}
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfig_InvalidIsUsageError(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	tests := []struct {
		name    string
		file    string // config file content; "" for no --config
		env     map[string]string
		flags   []string
		inError []string
	}{
		{
			name:    "bad level in file",
			file:    "log: {level: nope}\n",
			inError: []string{"log.level", `"nope"`},
		},
		{
			name:    "bad format in environment",
			env:     map[string]string{"AION_LOG_FORMAT": "xml"},
			inError: []string{"log.format", `"xml"`},
		},
		{
			name:    "bad level in environment",
			env:     map[string]string{"AION_LOG_LEVEL": "loud"},
			inError: []string{"log.level", `"loud"`},
		},
		{
			name:    "bad level flag",
			flags:   []string{"--log-level", "nope"},
			inError: []string{"log.level", `"nope"`},
		},
		{
			name:    "unknown key in file",
			file:    "log:\n  level: info\nsevrer: http://127.0.0.1:8080\n",
			inError: []string{"sevrer"},
		},
		{
			name:    "unknown nested key in file",
			file:    "log:\n  levle: debug\n",
			inError: []string{"levle"},
		},
		{
			name:    "YAML syntax error in file",
			file:    "log: [level: debug\n",
			inError: []string{"config.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := slices.Clone(tt.flags)
			if tt.file != "" {
				path := writeFile(t, t.TempDir(), "config.yaml", tt.file)
				args = append(args, "--config", path)
			}
			args = append(args, "version")
			code, stdout, stderr := runAion(t, args...)
			if got, want := code, 2; got != want {
				t.Errorf("exit code: got %d, want %d\nstderr: %s", got, want, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout: got %q, want empty: the command must not run", stdout)
			}
			for _, s := range tt.inError {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr: got %q, want it to contain %q", stderr, s)
				}
			}
		})
	}

	t.Run("missing config file", func(t *testing.T) {
		missing := filepath.Join(dir, "missing.yaml")
		code, stdout, stderr := runAion(t, "--config", missing, "version")
		if got, want := code, 2; got != want {
			t.Errorf("exit code: got %d, want %d\nstderr: %s", got, want, stderr)
		}
		if stdout != "" {
			t.Errorf("stdout: got %q, want empty", stdout)
		}
		if !strings.Contains(stderr, missing) {
			t.Errorf("stderr: got %q, want it to name %s", stderr, missing)
		}
	})
}

func TestConfig_ValidSources(t *testing.T) {
	shipped, err := filepath.Abs("../../configs/aion.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	tests := []struct {
		name string
		file string // written to --config when not ""
		env  map[string]string
		args []string
	}{
		{name: "shipped configs/aion.yaml", args: []string{"--config", shipped}},
		{name: "json debug file", file: "log:\n  level: debug\n  format: json\nserver: http://10.0.0.1:8080\n"},
		{name: "environment", env: map[string]string{"AION_LOG_LEVEL": "warn", "AION_LOG_FORMAT": "json", "AION_SERVER": "http://x:1"}},
		{name: "flag wins over environment", env: map[string]string{"AION_LOG_LEVEL": "nope"}, args: []string{"--log-level", "debug"}},
		{name: "environment wins over file", file: "log: {format: xml}\n", env: map[string]string{"AION_LOG_FORMAT": "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := slices.Clone(tt.args)
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, t.TempDir(), "config.yaml", tt.file))
			}
			args = append(args, "version")
			code, stdout, stderr := runAion(t, args...)
			if got, want := code, 0; got != want {
				t.Errorf("exit code: got %d, want %d\nstderr: %s", got, want, stderr)
			}
			if got, want := stdout, "aion dev\n"; got != want {
				t.Errorf("stdout: got %q, want %q", got, want)
			}
		})
	}
}

// TestConfig_DefaultSearch checks the default config locations: ./aion.yaml
// and configs/aion.yaml are read, and nothing else named aion is.
func TestConfig_DefaultSearch(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		wantCode int
	}{
		{"no config file", nil, 0},
		{"bad ./aion.yaml is read", map[string]string{"aion.yaml": "log: {level: nope}\n"}, 2},
		{"bad configs/aion.yaml is read", map[string]string{"configs/aion.yaml": "log: {level: nope}\n"}, 2},
		{"good ./aion.yaml is read", map[string]string{"aion.yaml": "log: {level: debug}\n"}, 0},
		// go build ./cmd/aion leaves the binary as ./aion in the repository
		// root (see .gitignore); it is not a config file.
		{"binary named aion is not a config file", map[string]string{"aion": "\x7fELF\x02\x01\x01\x00binary"}, 0},
		{"directory named configs/aion is not a config file", map[string]string{"configs/aion/x": "junk"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				path := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Dir(path), filepath.Base(path), content)
			}
			t.Chdir(dir)
			code, stdout, stderr := runAion(t, "version")
			if got, want := code, tt.wantCode; got != want {
				t.Errorf("exit code: got %d, want %d\nstderr: %s", got, want, stderr)
			}
			if tt.wantCode == 0 {
				if got, want := stdout, "aion dev\n"; got != want {
					t.Errorf("stdout: got %q, want %q", got, want)
				}
			}
		})
	}
}
