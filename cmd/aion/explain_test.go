package main

import (
	"slices"
	"strings"
	"testing"
)

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
