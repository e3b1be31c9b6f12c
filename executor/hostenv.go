package executor

import (
	"cmp"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// defaultPath is a host run's PATH when the executor has none.
const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// envFor builds a host run's environment as cron does, from a minimal base
// rather than the executor's own environment (so none of the executor's
// settings or secrets reach jobs, but those env_from takes): hostBaseEnv,
// then the job's env, its env_from (from), the fire's overrides and the
// AION_* variables, with AION_OUTPUT, the file
// the run's output goes to (which also marks the run as this executor's
// for killOrphans).
func envFor(job *jobspec.Job, from map[string]string, f store.Fire, fence int64, outPath string) []string {
	env := runEnv(hostBaseEnv(job), job, from, f, fence)
	if abs, err := filepath.Abs(outPath); err == nil {
		outPath = abs
	}
	env["AION_OUTPUT"] = outPath
	return envList(env)
}

// hostBaseEnv is what every host run starts with: PATH (the executor's, or
// defaultPath), HOME, USER and LOGNAME of the user the run runs as, SHELL
// (the job's shell), LANG (the executor's, if set) and TZ (the job's time
// zone, so that date and friends read the time the schedule is written in,
// on every node alike).
func hostBaseEnv(job *jobspec.Job) map[string]string {
	env := map[string]string{
		"PATH":  cmp.Or(os.Getenv("PATH"), defaultPath),
		"SHELL": job.ShellPath(),
		"TZ":    cmp.Or(job.Timezone, jobspec.DefaultTimezone),
	}
	if lang := os.Getenv("LANG"); lang != "" {
		env["LANG"] = lang
	}
	home, name := runAccount(job)
	if home != "" {
		env["HOME"] = home
	}
	if name != "" {
		env["USER"], env["LOGNAME"] = name, name
	}
	return env
}

// runAccount returns the home directory and user name of the account a
// host run runs as: the job's user, or the executor's own. What cannot be
// looked up is taken from the executor's environment for its own account,
// and left out for another (credential then fails the run).
func runAccount(job *jobspec.Job) (home, name string) {
	if job.User == "" {
		if u, err := user.Current(); err == nil {
			return u.HomeDir, u.Username
		}
		return os.Getenv("HOME"), cmp.Or(os.Getenv("USER"), os.Getenv("LOGNAME"))
	}
	spec, _, _ := strings.Cut(job.User, ":")
	u, err := user.Lookup(spec)
	if err != nil {
		if u, err = user.LookupId(spec); err != nil {
			return "", ""
		}
	}
	return u.HomeDir, u.Username
}
