package executor_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/executor"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// These tests set variables of the test process, which is the executor's
// own environment (t.Setenv): they cannot run in parallel.

// writeFile writes content to path, making its directory.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// secretsExecutor runs executor node with secretsDir and passEnv and
// waits for it to register.
func secretsExecutor(t *testing.T, c *clustertest.Cluster, node, secretsDir string, passEnv ...string) {
	t.Helper()
	cfg := executor.DefaultConfig()
	cfg.NodeID, cfg.Slots = node, 8
	cfg.OutputDir = t.TempDir()
	cfg.Grace = time.Second
	cfg.SecretsDir, cfg.PassEnv = secretsDir, passEnv
	c.StartExecutorWith(t, cfg)
}

// TestEnvFrom_ValuesReachTheRun: a host run gets the KEY=VALUE lines of
// files in the executor's secrets_dir (comments and blank lines skipped,
// the value the rest of the line as written, '=' and spaces kept) and the
// variables named in its pass_env. env_from overrides the job's env,
// later entries override earlier ones, and a manual run's overrides beat
// them all.
func TestEnvFrom_ValuesReachTheRun(t *testing.T) {
	secrets := t.TempDir()
	writeFile(t, filepath.Join(secrets, "app.env"), `# the database
DB_URL=postgres://app:pw@db/app?sslmode=require&x=a=b
 
GREETING=hello  spaced   world  
SHARED=from-app.env
FROM_EXECUTOR=from-app.env
   # indented comment
`)
	writeFile(t, filepath.Join(secrets, "team", "override.env"), "SHARED=from-team/override.env\r\n")
	t.Setenv("FROM_EXECUTOR", "from the executor's environment")

	c := clustertest.Start(t)
	c.Apply(t, `
name: secrets
schedule: manual
env:
  DB_URL: from-job-env
  ONLY_ENV: from-job-env
env_from:
  - file: app.env
  - env: FROM_EXECUTOR
  - file: team/override.env
command: |
  printf '%s\n' "DB_URL=[$DB_URL]" "GREETING=[$GREETING]" "SHARED=[$SHARED]" "FROM_EXECUTOR=[$FROM_EXECUTOR]" "ONLY_ENV=[$ONLY_ENV]"
`)
	secretsExecutor(t, c, "a", secrets, "FROM_EXECUTOR")

	f := c.RunFire(t, "secrets", "a", nil)
	want := "DB_URL=[postgres://app:pw@db/app?sslmode=require&x=a=b]\n" + // env_from beats env
		"GREETING=[hello  spaced   world  ]\n" + // as written, trailing spaces too
		"SHARED=[from-team/override.env]\n" + // the later file beats the earlier ("\r\n" read as a line end)
		"FROM_EXECUTOR=[from the executor's environment]\n" + // the later env entry beats the file
		"ONLY_ENV=[from-job-env]\n"
	if f.State != store.FireSucceeded || f.OutputTail != want {
		t.Errorf("run: %s (%s), output:\n%s\nwant:\n%s", f.State, f.Reason, f.OutputTail, want)
	}

	// A manual run's overrides come last.
	id := store.ManualFireID("secrets", time.Now())
	c.PlanFire(t, store.Fire{ID: id, Node: "a", Env: map[string]string{"SHARED": "from-the-override"}})
	c.Dispatch(t, "a", store.Dispatch{Fire: id, Attempt: 1})
	f = c.WaitFinal(t, id, 10*time.Second)
	if f.State != store.FireSucceeded || !strings.Contains(f.OutputTail, "SHARED=[from-the-override]\n") {
		t.Errorf("run with an override: %s (%s), output:\n%s", f.State, f.Reason, f.OutputTail)
	}
}

// TestEnvFrom_UnresolvableEntriesFailTheRunNamingTheEntry: an env_from
// entry that cannot be resolved (no such file, a path or symbolic link
// leading out of secrets_dir, a variable the executor does not pass or
// does not have, a file entry on an executor without secrets_dir) fails
// the run before any process starts, with a reason naming the entry and
// none of the values the executor holds.
func TestEnvFrom_UnresolvableEntriesFailTheRunNamingTheEntry(t *testing.T) {
	const (
		goodValue    = "good-value-5b1f0e"
		outsideValue = "outside-value-c93a27"
		notPassed    = "not-passed-value-71d4e8"
	)
	secrets, outside, markers := t.TempDir(), t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(secrets, "good.env"), "GOOD="+goodValue+"\n")
	writeFile(t, filepath.Join(outside, "secret.env"), "OUTSIDE="+outsideValue+"\n")
	if err := os.Symlink(filepath.Join(outside, "secret.env"), filepath.Join(secrets, "escape.env")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(secrets, "linkdir")); err != nil {
		t.Fatal(err)
	}
	// Relative too: os.Root refuses a link that climbs out by '..'.
	if err := os.Symlink(filepath.Join("..", filepath.Base(outside), "secret.env"), filepath.Join(secrets, "climb.env")); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{"escape.env", "linkdir/secret.env", "climb.env"} {
		// Each link leads to the outside file: only os.Root stops it.
		if data, err := os.ReadFile(filepath.Join(secrets, link)); err != nil || !strings.Contains(string(data), outsideValue) {
			t.Fatalf("%s does not lead to the outside file: %q, %v", link, data, err)
		}
	}
	t.Setenv("SECRETS_TEST_NOT_PASSED", notPassed)
	t.Setenv("SECRETS_TEST_UNSET", "")
	if err := os.Unsetenv("SECRETS_TEST_UNSET"); err != nil { // t.Setenv restores it at the end
		t.Fatal(err)
	}

	// '..' is refused when a job is applied; the executor refuses it all
	// the same when the stored job has it (written to etcd directly).
	if _, errs := jobspec.Parse("x.yaml", []byte("name: x\nschedule: manual\ncommand: 'true'\nenv_from: [{file: ../secret.env}]\n")); len(errs) == 0 {
		t.Fatal("a job with env_from file ../secret.env was accepted")
	}

	const escapes = "path escapes from parent" // os.Root's refusal
	cases := []struct {
		job, node, envFrom string
		want               string // the reason starts so
		wantToo            string // and has this
	}{
		{"missing-file", "a", "[{file: good.env}, {file: missing.env}]", "env_from[1]: file missing.env: ", "no such file in " + secrets},
		{"symlink-out", "a", "[{file: escape.env}]", "env_from[0]: file escape.env: ", escapes},
		{"symlink-dir-out", "a", "[{file: good.env}, {file: linkdir/secret.env}]", "env_from[1]: file linkdir/secret.env: ", escapes},
		{"symlink-climbs-out", "a", "[{file: climb.env}]", "env_from[0]: file climb.env: ", escapes},
		{"dotdot", "a", "[{file: good.env}]", "env_from[0]: file ../" + filepath.Base(outside) + "/secret.env: ", escapes},
		{"env-not-passed", "a", "[{file: good.env}, {env: SECRETS_TEST_NOT_PASSED}]", "env_from[1]: env SECRETS_TEST_NOT_PASSED: ", "not passed by executor a"},
		{"env-unset", "a", "[{env: SECRETS_TEST_UNSET}]", "env_from[0]: env SECRETS_TEST_UNSET: ", "not set in the environment of executor a"},
		{"no-secrets-dir", "b", "[{file: good.env}]", "env_from[0]: file good.env: ", "executor b has no executor.secrets_dir"},
	}
	var yaml strings.Builder
	yaml.WriteString("jobs:\n")
	for _, tc := range cases {
		yaml.WriteString("  - name: " + tc.job + "\n    schedule: manual\n    env_from: " + tc.envFrom +
			"\n    command: touch " + filepath.Join(markers, tc.job) + "\n")
	}
	c := clustertest.Start(t)
	c.Apply(t, yaml.String())
	storeEnvFrom(t, c, "dotdot", []jobspec.EnvSource{{File: "../" + filepath.Base(outside) + "/secret.env"}})
	secretsExecutor(t, c, "a", secrets, "SECRETS_TEST_UNSET")
	secretsExecutor(t, c, "b", "")

	ids := make([]store.FireID, len(cases))
	for i, tc := range cases {
		ids[i] = c.StartFire(t, tc.job, tc.node, nil)
	}
	for i, tc := range cases {
		f := c.WaitFinal(t, ids[i], 10*time.Second)
		if f.State != store.FireFailed || !strings.HasPrefix(f.Reason, tc.want) || !strings.Contains(f.Reason, tc.wantToo) {
			t.Errorf("%s: %s (%q), want failed with a reason starting %q and containing %q", tc.job, f.State, f.Reason, tc.want, tc.wantToo)
		}
		if f.PID != 0 || f.ExitCode != nil {
			t.Errorf("%s: pid %d, exit code %v: a process was started", tc.job, f.PID, f.ExitCode)
		}
		for _, v := range []string{goodValue, outsideValue, notPassed} {
			if strings.Contains(f.Reason, v) || strings.Contains(f.OutputTail, v) {
				t.Errorf("%s: the record shows the value %q: reason %q, output %q", tc.job, v, f.Reason, f.OutputTail)
			}
		}
		if _, err := os.Stat(filepath.Join(markers, tc.job)); err == nil {
			t.Errorf("%s: the command ran", tc.job)
		}
	}
}

// storeEnvFrom rewrites the stored definition of job with env_from
// replaced, past the validation of apply, as someone writing to etcd
// could.
func storeEnvFrom(t *testing.T, c *clustertest.Cluster, job string, envFrom []jobspec.EnvSource) {
	t.Helper()
	resp, err := c.Etcd.Get(t.Context(), c.Keys.Job(job))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read job %s: %d keys, %v", job, len(resp.Kvs), err)
	}
	var j jobspec.Job
	if err := json.Unmarshal(resp.Kvs[0].Value, &j); err != nil {
		t.Fatal(err)
	}
	j.EnvFrom = envFrom
	if _, err := c.Etcd.Put(t.Context(), c.Keys.Job(job), string(clustertest.JSON(t, j))); err != nil {
		t.Fatal(err)
	}
}
