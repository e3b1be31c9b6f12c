package main

import (
	"strings"
	"testing"
)

// flakyJob fails its first attempt and succeeds on the retry.
const flakyJob = `name: flaky
schedule: manual
retries:
  count: 2
  backoff:
    initial: 100ms
    max: 100ms
command: echo "attempt $AION_ATTEMPT"; [ "$AION_ATTEMPT" -ge 2 ]
`

func TestClient_EveryAttemptsOutputThroughRunWaitAndLogs(t *testing.T) {
	c := startCluster(t, true)
	dir := t.TempDir()
	writeJobs(t, dir, map[string]string{"flaky.yaml": flakyJob})
	if code, _, stderr := c.aion(t, "apply", "-f", dir); code != 0 {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}

	code, stdout, stderr := c.aion(t, "run", "flaky", "--wait")
	if want := "==> attempt 1 <==\nattempt 1\n==> attempt 2 <==\nattempt 2\n"; code != 0 || stdout != want {
		t.Fatalf("run flaky --wait: exit %d, stdout %q; want 0 and %q\nstderr:\n%s", code, stdout, want, stderr)
	}
	_, out, _ := c.aion(t, "history", "flaky", "-n", "1")
	id := strings.Fields(rows(out)[0])[0]

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"the job's latest run", []string{"logs", "flaky"}, "attempt 2\n"},
		{"the job's latest run, first attempt", []string{"logs", "flaky", "--attempt", "1"}, "attempt 1\n"},
		{"a fire's first attempt", []string{"logs", id, "--attempt", "1"}, "attempt 1\n"},
		{"a fire's last attempt", []string{"logs", id, "--attempt", "2"}, "attempt 2\n"},
		{"a fire, followed", []string{"logs", id, "-f"}, "attempt 2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := c.aion(t, tt.args...)
			if code != 0 || stdout != tt.want {
				t.Errorf("%v: exit %d, stdout %q; want 0 and %q\nstderr:\n%s", tt.args, code, stdout, tt.want, stderr)
			}
		})
	}

	for _, follow := range [][]string{nil, {"-f"}} {
		code, _, stderr = c.aion(t, append([]string{"logs", id, "--attempt", "3"}, follow...)...)
		if code != exitAion || !strings.Contains(stderr, "no attempt 3") {
			t.Errorf("logs --attempt 3 %v: exit %d, stderr %q; want %d and that there is no attempt 3", follow, code, stderr, exitAion)
		}
	}
	code, _, stderr = c.aion(t, "logs", "nojob")
	if code != exitAion || !strings.Contains(stderr, `no job named "nojob"`) {
		t.Errorf("logs of an unknown job: exit %d, stderr %q", code, stderr)
	}
}
