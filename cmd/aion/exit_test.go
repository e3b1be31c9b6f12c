package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// exitJobs end in each way `aion run --wait` maps to an exit code; noexec
// names a file that exists but is not executable (written by the test).
const exitJobs = `jobs:
  - name: greet
    schedule: manual
    command: echo hello
  - name: greeting-card
    schedule: manual
    command: echo card
  - name: fail
    schedule: manual
    command: echo failing; exit 7
  - name: missing
    schedule: manual
    args: ["/no/such/program", "x"]
  - name: noexec
    schedule: manual
    args: ["NOEXEC"]
  - name: slow
    schedule: manual
    timeout: 1s
    command: sleep 30
`

func TestClient_ExitCodes(t *testing.T) {
	c := startCluster(t, true)
	dir := t.TempDir()
	noexec := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\necho hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	jobsDir := filepath.Join(dir, "jobs")
	writeJobs(t, jobsDir, map[string]string{"jobs.yaml": strings.Replace(exitJobs, "NOEXEC", noexec, 1)})
	if code, _, stderr := c.aion(t, "apply", "-f", jobsDir); code != 0 {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"success", []string{"run", "greet", "--wait"}, exitOK, ""},
		{"the job's own code", []string{"run", "fail", "--wait"}, 7, "failed: exit status 7"},
		{"program not found", []string{"run", "missing", "--wait"}, exitNotFound, "/no/such/program"},
		{"program not executable", []string{"run", "noexec", "--wait"}, exitCannotInvoke, "permission denied"},
		{"timed out", []string{"run", "slow", "--wait"}, exitTimedOut, "timed_out"},
		{"unknown job, run", []string{"run", "gret", "--wait"}, exitAion, `no job named "gret"; did you mean "greet"?`},
		{"unknown job, job", []string{"job", "greting-card"}, exitAion, `did you mean "greeting-card"?`},
		{"unknown job, nothing near", []string{"history", "zzzzzzzz"}, exitAion, `no job named "zzzzzzzz"`},
		{"unreachable", []string{"jobs", "--server", "http://127.0.0.1:1"}, exitAion, "cannot reach the Aion API"},
		{"usage", []string{"run"}, exitUsage, "accepts 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if !slices.Contains(args, "--server") {
				args = append(args, "--server", c.url, "--token", c.token)
			}
			code, _, stderr := runAion(t, args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, tt.code, tt.want)
			}
		})
	}
	if _, _, stderr := c.aion(t, "history", "zzzzzzzz"); strings.Contains(stderr, "did you mean") {
		t.Errorf("a name near no job got a suggestion: %q", stderr)
	}
}

func TestHelp_ListsTheExitCodes(t *testing.T) {
	code, stdout, _ := runAion(t, "--help")
	for _, want := range []string{"Exit codes:", "125", "127"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("aion --help: exit %d, lacks %q:\n%s", code, want, stdout)
		}
	}
}
