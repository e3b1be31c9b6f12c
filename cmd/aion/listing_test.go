package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
)

// listingJobs carry labels, and one of them fails, for the filters.
const listingJobs = `jobs:
  - name: greet
    schedule: manual
    labels: {team: a}
    command: echo hello
  - name: fail
    schedule: manual
    labels: {team: b}
    command: exit 7
  - name: nightly
    schedule: "30 2 * * *"
    labels: {team: a}
    command: echo nightly
  - name: child
    parents: [nightly]
    command: echo child
`

// names returns the first column of the table rows of stdout.
func names(stdout string) []string {
	var out []string
	for _, r := range rows(stdout) {
		out = append(out, strings.Fields(r)[0])
	}
	return out
}

func TestClient_JobsFiltersPagesAndShowsPaused(t *testing.T) {
	c := startCluster(t, true)
	dir := t.TempDir()
	writeJobs(t, dir, map[string]string{"jobs.yaml": listingJobs})
	if code, _, stderr := c.aion(t, "apply", "-f", dir); code != 0 {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	if code, _, stderr := c.aion(t, "run", "fail", "--wait"); code != 7 {
		t.Fatalf("run fail --wait: exit %d: %s", code, stderr)
	}
	if code, _, stderr := c.aion(t, "pause", "nightly", "--note", "disk swap"); code != 0 {
		t.Fatalf("pause nightly: exit %d: %s", code, stderr)
	}
	clustertest.WaitFor(t, 10*time.Second, "the leader to pause nightly", func() bool {
		_, stdout, _ := c.aion(t, "job", "nightly")
		return strings.Contains(stdout, "Paused:")
	})

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"all", []string{"jobs"}, []string{"child", "fail", "greet", "nightly"}},
		{"by last result", []string{"jobs", "--state", "failed"}, []string{"fail"}},
		{"paused", []string{"jobs", "--state", "paused"}, []string{"nightly"}},
		{"by name glob", []string{"jobs", "--name", "gr*"}, []string{"greet"}},
		{"by label", []string{"jobs", "--label", "team=a"}, []string{"greet", "nightly"}},
		{"by label and name", []string{"jobs", "--label", "team=a", "--name", "n*"}, []string{"nightly"}},
		{"a page", []string{"jobs", "--limit", "2"}, []string{"child", "fail"}},
		{"the next page", []string{"jobs", "--limit", "2", "--after", "fail"}, []string{"greet", "nightly"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := c.aion(t, tt.args...)
			if got := names(stdout); code != 0 || !slices.Equal(got, tt.want) {
				t.Errorf("%v: exit %d, jobs %q; want %q\nstderr:\n%s", tt.args, code, got, tt.want, stderr)
			}
		})
	}
	if _, _, stderr := c.aion(t, "jobs", "--limit", "2"); !strings.Contains(stderr, "--after fail") {
		t.Errorf("a page that is not the last does not say how to get the next: stderr %q", stderr)
	}

	_, stdout, _ := c.aion(t, "jobs")
	for _, r := range rows(stdout) {
		if strings.HasPrefix(r, "nightly ") && !strings.Contains(r, " paused") {
			t.Errorf("a paused job's row: %q, want it shown paused", r)
		}
	}
	_, stdout, _ = c.aion(t, "job", "nightly")
	if !strings.Contains(stdout, "Next runs: none while paused") {
		t.Errorf("aion job of a paused job:\n%s\nwant no next runs while paused", stdout)
	}

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"jobs", "--state", "bogus"}, "state"},
		{[]string{"jobs", "--state", "running"}, "state"}, // not a last result: no job would match
		{[]string{"jobs", "--name", "["}, "name"},
		{[]string{"jobs", "--label", "team"}, "label"},
	} {
		if code, _, stderr := c.aion(t, bad.args...); code != exitAion || !strings.Contains(stderr, bad.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d naming %s", bad.args, code, stderr, exitAion, bad.want)
		}
	}
}

func TestClient_HistoryWithoutANameListsEveryJobsRecentFires(t *testing.T) {
	c := startCluster(t, true)
	dir := t.TempDir()
	writeJobs(t, dir, map[string]string{"jobs.yaml": listingJobs})
	if code, _, stderr := c.aion(t, "apply", "-f", dir); code != 0 {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	c.aion(t, "run", "greet", "--wait")
	c.aion(t, "run", "fail", "--wait")
	code, stdout, stderr := c.aion(t, "history")
	got := names(stdout)
	if code != 0 || len(got) != 2 || !strings.HasPrefix(got[0], "fail@") || !strings.HasPrefix(got[1], "greet@") {
		t.Errorf("history: exit %d, fires %q; want fail's then greet's\nstderr:\n%s", code, got, stderr)
	}
	code, stdout, _ = c.aion(t, "history", "-n", "1")
	if got := names(stdout); code != 0 || len(got) != 1 || !strings.HasPrefix(got[0], "fail@") {
		t.Errorf("history -n 1: exit %d, fires %q; want fail's alone", code, got)
	}
}

func TestClient_CompletesJobNamesAndFireIDs(t *testing.T) {
	c := startCluster(t, true)
	dir := t.TempDir()
	writeJobs(t, dir, map[string]string{"jobs.yaml": listingJobs})
	if code, _, stderr := c.aion(t, "apply", "-f", dir); code != 0 {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	_, stdout, _ := c.aion(t, "run", "greet")
	fire := strings.TrimSpace(stdout)
	clustertest.WaitFor(t, 10*time.Second, "the leader to plan "+fire, func() bool {
		_, stdout, _ := c.aion(t, "history", "greet")
		return strings.Contains(stdout, fire)
	})

	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "job", "g"}, []string{"greet"}},
		{[]string{"__complete", "run", ""}, []string{"child", "fail", "greet", "nightly"}},
		{[]string{"__complete", "history", "n"}, []string{"nightly"}},
		{[]string{"__complete", "kill", "greet@"}, []string{fire}},
		{[]string{"__complete", "logs", "gr"}, []string{"greet", fire}},
	}
	// The last argument is the one completed: the server and the token
	// come from the environment.
	t.Setenv("AION_SERVER", c.url)
	t.Setenv("AION_TOKEN", c.token)
	for _, tt := range tests {
		code, stdout, stderr := runAion(t, tt.args...)
		got := lines(stdout)
		if code != 0 || len(got) == 0 || !strings.HasPrefix(got[len(got)-1], ":") || !slices.Equal(got[:len(got)-1], tt.want) {
			t.Errorf("%v: exit %d, got %q; want %q and the directive\nstderr:\n%s", tt.args, code, got, tt.want, stderr)
		}
	}
	t.Setenv("AION_SERVER", "http://127.0.0.1:1")
	code, stdout, _ := runAion(t, "__complete", "job", "g")
	if got := lines(stdout); code != 0 || len(got) != 1 {
		t.Errorf("completion with no API: exit %d, got %q; want no names, silently", code, got)
	}
}
