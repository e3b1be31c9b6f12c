package jobspec

import (
	"testing"
)

// A crontab habit that still works, or works differently, is a warning: the
// job loads, and the warning names the file, line and field.
func TestParse_CrontabEscapedPercentWarns(t *testing.T) {
	text := "jobs:\n" +
		"  - name: backup\n" +
		"    schedule: \"0 2 * * *\"\n" +
		"    command: tar czf /tmp/backup-$(date +\\%F).tgz /etc\n" +
		"  - name: plain\n" +
		"    schedule: \"0 3 * * *\"\n" +
		"    command: date +%F\n"
	jobs, errs := Parse("f.yaml", []byte(text))
	if len(errs) > 0 || len(jobs) != 2 {
		t.Fatalf("Parse: %d jobs, errors %v; want 2 jobs and no error", len(jobs), errs)
	}
	want := `f.yaml:4:14: command: warning: \% is crontab's escape for %; Aion runs the command as written, where % needs no escape and the backslash stays inside quotes: write %`
	if w := jobs[0].Warnings(); len(w) != 1 || w[0].Error() != want {
		t.Errorf("backup warnings = %v, want\n  %s", w, want)
	}
	if w := jobs[1].Warnings(); len(w) != 0 {
		t.Errorf("plain warnings = %v, want none", w)
	}
	if got := Warnings(jobs); len(got) != 1 {
		t.Errorf("Warnings(jobs) = %v, want the one", got)
	}
}
