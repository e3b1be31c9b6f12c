package main

import (
	"strings"
	"testing"

	"github.com/aionsched/aion/cmd/harness/clustertest"
)

const percentJob = "name: backup\nschedule: \"0 2 * * *\"\ncommand: tar czf /tmp/b-$(date +\\%F).tgz /etc\n"

const percentWarning = `:3:10: command: warning: \% is crontab's escape for %`

// A warning is printed but does not fail validate; -o json lists it.
func TestValidate_WarningsArePrintedAndDoNotFail(t *testing.T) {
	file := writeFile(t, t.TempDir(), "backup.yaml", percentJob)
	code, stdout, stderr := runAion(t, "validate", file)
	if code != 0 {
		t.Fatalf("validate: exit %d, stderr %q; want 0", code, stderr)
	}
	if !strings.Contains(stderr, file+percentWarning) || !strings.Contains(stdout, "1 job valid") {
		t.Errorf("validate: stdout %q, stderr %q; want the job valid and the warning %q", stdout, stderr, percentWarning)
	}
	code, stdout, stderr = runAion(t, "validate", "-o", "json", file)
	if code != 0 {
		t.Fatalf("validate -o json: exit %d, stderr %q", code, stderr)
	}
	out := decodeOutput[validateOutput](t, stdout)
	if !out.Valid || len(out.Warnings) != 1 || !strings.Contains(out.Warnings[0], file+percentWarning) {
		t.Errorf("validate -o json: valid %v, warnings %q; want valid and the warning", out.Valid, out.Warnings)
	}
}

// apply prints the warnings too, and applies the job.
func TestClient_ApplyPrintsWarnings(t *testing.T) {
	c := startCluster(t, false)
	dir := t.TempDir()
	writeJobs(t, dir, map[string]string{"backup.yaml": percentJob})
	code, stdout, stderr := c.aion(t, "apply", "-f", dir)
	if code != 0 || !strings.Contains(stdout, "1 created") {
		t.Fatalf("apply: exit %d, stdout %q, stderr %q; want the job created", code, stdout, stderr)
	}
	if !strings.Contains(stderr, percentWarning) {
		t.Errorf("apply: stderr %q lacks the warning %q", stderr, percentWarning)
	}
}

// dev prints the warnings of its jobs and starts anyway.
func TestDev_PrintsWarningsAndStarts(t *testing.T) {
	clustertest.SkipShort(t, "starts aion dev")
	jobs := t.TempDir()
	writeJobs(t, jobs, map[string]string{"backup.yaml": percentJob})
	d := startDev(t, "--jobs", jobs)
	// Serving its API shows dev went on past the warning.
	if !strings.Contains(d.stdout.String(), "1 job loaded") {
		t.Errorf("dev: stdout %q does not list the job as loaded", d.stdout)
	}
	if code := d.stop(t); code != 0 {
		t.Errorf("dev exited %d\nstderr:\n%s", code, d.stderr)
	}
	stderr := d.stderr
	if !strings.Contains(stderr.String(), percentWarning) {
		t.Errorf("dev: stderr %q lacks the warning %q", stderr.String(), percentWarning)
	}
}
