package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aionsched/aion/cmd/harness/clustertest"
)

// TestDev_RestartKeepsJobsAppliedByHand: `aion dev --jobs DIR` prunes only
// the jobs of DIR's apply set, so a job applied with `aion apply` while it
// ran is still there after a restart.
func TestDev_RestartKeepsJobsAppliedByHand(t *testing.T) {
	clustertest.SkipShort(t, "starts aion dev or waits for a server to go")
	jobs, other, data := t.TempDir(), t.TempDir(), t.TempDir()
	writeJobs(t, jobs, map[string]string{"jobs.yaml": "jobs:\n  - name: a\n    schedule: manual\n    command: echo a\n  - name: b\n    schedule: manual\n    command: echo b\n"})
	writeJobs(t, other, map[string]string{"extra.yaml": "name: extra\nschedule: manual\ncommand: echo extra\n"})
	args := []string{"--jobs", jobs, "--data-dir", data, "--docker", "off"}

	first := startDev(t, args...)
	if code, _, stderr := runAion(t, "apply", "-f", filepath.Join(other, "extra.yaml"), "--server", first.server, "--token-file", first.tokenFile); code != 0 {
		t.Fatalf("apply by hand: exit %d\nstderr:\n%s", code, stderr)
	}
	if code := first.stop(t); code != 0 {
		t.Fatalf("aion dev: exit %d\nstderr:\n%s", code, first.stderr)
	}

	token, err := os.ReadFile(first.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(first.tokenFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("dev's token file: %v, %v; want mode 0600", info.Mode(), err)
	}
	second := startDev(t, args...)
	url := second.server
	if again, err := os.ReadFile(second.tokenFile); err != nil || string(again) != string(token) {
		t.Errorf("the restarted dev wrote another token (%v): a restart on the same data directory keeps its token", err)
	}
	if want := "applied " + jobs + ": 0 created, 0 updated, 2 unchanged, 0 deleted"; !strings.Contains(second.stdout.String(), want) {
		t.Errorf("restarted dev printed:\n%s\nwant %q", second.stdout.String(), want)
	}
	code, stdout, stderr := runAion(t, "jobs", "--server", url, "--token-file", second.tokenFile)
	if code != 0 || !strings.Contains(stdout, "extra") {
		t.Errorf("jobs after the restart: exit %d\n%s\nstderr:\n%s\nwant extra listed", code, stdout, stderr)
	}
}
