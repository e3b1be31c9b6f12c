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

// An env value whose name looks secret is kept (and hidden by the API)
// but warned about: env_from keeps it out of etcd.
func TestParse_SecretLookingEnvWarnsAndIsHidden(t *testing.T) {
	text := "name: db\n" +
		"schedule: manual\n" +
		"command: psql\n" +
		"env: {DB_PASSWORD: hunter2, HOST: db1, PLAIN_NAME: marked}\n" +
		"secret_env: [PLAIN_NAME]\n" +
		"env_from:\n" +
		"  - file: db.env\n" +
		"  - env: PGPASSFILE\n"
	jobs, errs := Parse("f.yaml", []byte(text))
	if len(errs) > 0 || len(jobs) != 1 {
		t.Fatalf("Parse: %d jobs, errors %v; want 1 job and no error", len(jobs), errs)
	}
	j := jobs[0]
	want := "f.yaml:4:20: env.DB_PASSWORD: warning: DB_PASSWORD looks like a secret: the API hides its value, but it is stored in etcd with the job; take it from the executor with env_from instead"
	if w := j.Warnings(); len(w) != 1 || w[0].Error() != want {
		t.Errorf("warnings = %v, want\n  %s", w, want)
	}
	if got := j.EnvFrom; len(got) != 2 || got[0].File != "db.env" || got[1].Env != "PGPASSFILE" {
		t.Errorf("env_from = %+v", got)
	}
	r := j.Redacted()
	if r.Env["DB_PASSWORD"] != SecretPlaceholder || r.Env["PLAIN_NAME"] != SecretPlaceholder || r.Env["HOST"] != "db1" {
		t.Errorf("redacted env = %v, want DB_PASSWORD and PLAIN_NAME hidden, HOST shown", r.Env)
	}
	if j.Env["DB_PASSWORD"] != "hunter2" {
		t.Errorf("Redacted changed the job itself: %v", j.Env)
	}
}
