package executor_test

import (
	"os"
	"os/user"
	"strings"
	"testing"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler/store"
)

// A host run starts with a minimal environment, as cron gives: PATH, HOME,
// USER, LOGNAME, SHELL, LANG, TZ, then the job's env and AION_*. Nothing
// else of the executor's environment, such as its secrets, reaches the job.
// The job's shell runs its command.
func TestExecutor_HostRunsGetAMinimalEnvironmentAndTheJobsShell(t *testing.T) {
	t.Setenv("AION_TEST_SECRET", "x")
	t.Setenv("EXECUTOR_ONLY", "y")
	t.Setenv("LANG", "C.UTF-8")
	c := clustertest.Start(t)
	c.Apply(t, `
jobs:
  - name: bash-env
    schedule: manual
    timezone: Europe/Berlin
    shell: /bin/bash
    env:
      GREETING: hello
    command: 'echo "bash=${BASH_VERSION:+yes}"; env | sort'
  - name: sh-env
    schedule: manual
    command: 'echo "bash=${BASH_VERSION:+yes}"; echo "SHELL=$SHELL"'
`)
	startExecutor(t, c, "a")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	f := c.RunFire(t, "bash-env", "a", nil)
	if f.State != store.FireSucceeded {
		t.Fatalf("bash-env: %s (%s)", f.State, f.Reason)
	}
	env := map[string]string{}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(f.OutputTail), "\n")[1:] {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
		names = append(names, k)
	}
	if first := strings.SplitN(f.OutputTail, "\n", 2)[0]; first != "bash=yes" {
		t.Errorf("first line %q: the command did not run in bash", first)
	}
	want := map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": me.HomeDir, "USER": me.Username, "LOGNAME": me.Username,
		"SHELL": "/bin/bash", "LANG": "C.UTF-8", "TZ": "Europe/Berlin", "GREETING": "hello",
		"AION_JOB": "bash-env", "AION_FIRE_ID": f.ID.String(), "AION_NODE": "a",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	for _, leaked := range []string{"AION_TEST_SECRET", "EXECUTOR_ONLY"} {
		if _, ok := env[leaked]; ok {
			t.Errorf("the executor's %s reached the job", leaked)
		}
	}
	// bash adds a few of its own (PWD, SHLVL, _); nothing else may appear.
	allowed := map[string]bool{"PWD": true, "SHLVL": true, "_": true, "OLDPWD": true,
		"AION_ATTEMPT": true, "AION_SCHEDULED_TIME": true, "AION_OUTPUT": true, "AION_FENCE": true}
	for _, k := range names {
		if _, ok := want[k]; !ok && !allowed[k] {
			t.Errorf("unexpected variable %s in the job's environment", k)
		}
	}

	f = c.RunFire(t, "sh-env", "a", nil)
	if f.State != store.FireSucceeded || f.OutputTail != "bash=\nSHELL=/bin/sh\n" {
		t.Errorf("sh-env: %s, output %q; want /bin/sh running it", f.State, f.OutputTail)
	}
}
