package main

import (
	"strings"
	"testing"
	"time"
)

// An empty ISO 8601 start means now, and now is the first repetition:
// explain lists it first.
func TestExplain_EmptyISOStartFirstTimeIsFrom(t *testing.T) {
	t.Chdir(t.TempDir())
	code, stdout, stderr := runAion(t, "explain", "R1//P1D", "--from", "2026-11-24T10:00:00Z", "-n", "3")
	if code != 0 || stderr != "" {
		t.Fatalf("explain: exit %d, stderr %q", code, stderr)
	}
	out := lines(stdout)
	want := []string{
		"fire times from 2026-11-24 10:00:00 UTC:",
		"1 Tue 2026-11-24 10:00:00 +00:00 UTC 2026-11-24T10:00:00Z",
		"(no more fire times)",
	}
	if len(out) != 4 {
		t.Fatalf("stdout: got %d lines, want 4:\n%s", len(out), stdout)
	}
	for i, w := range want {
		if got := squash(out[i+1]); got != w {
			t.Errorf("line %d: got %q, want %q", i+2, got, w)
		}
	}

	code, stdout, stderr = runAion(t, "explain", "R2//PT0S")
	if code != 1 || !strings.Contains(stderr, "a zero period is only for R1 or R0") {
		t.Errorf("explain R2//PT0S: exit %d, stdout %q, stderr %q; want exit 1 naming R1", code, stdout, stderr)
	}
}

// validate shows the first time of an empty-start schedule as now, not
// never; a run-once zero period is valid.
func TestValidate_EmptyISOStartRunsNow(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "once.yaml", "jobs:\n  - name: once\n    schedule: R1//P1D\n    command: \"true\"\n  - name: zero\n    schedule: R1//PT0S\n    command: \"true\"\n")
	before := time.Now()
	code, stdout, stderr := runAion(t, "validate", "-o", "json", file)
	if code != 0 || stderr != "" {
		t.Fatalf("validate: exit %d, stderr %q", code, stderr)
	}
	out := decodeOutput[validateOutput](t, stdout)
	if len(out.Jobs) != 2 {
		t.Fatalf("validate: jobs %+v, want 2", out.Jobs)
	}
	for _, j := range out.Jobs {
		if j.Never || j.Next.Before(before) || j.Next.After(time.Now()) {
			t.Errorf("%s: next %v never %v; want the time validate ran", j.Name, j.Next, j.Never)
		}
	}
}
